//! The timing decision: for each (shape, padded batch, dtype) a layer times the dense and the
//! sparse kernel once (the sparse one with the best cuSPARSELt algorithm for that shape), keeps
//! whichever was faster, and caches the decision, so converting never makes a layer slower.
//! The clock is a [`Timer`], so tests inject one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tch::{Device, Kind};

use crate::error::Result;

/// One way to run a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Candidate {
    /// `x.linear(weight, bias)` with the masked dense weight.
    Dense,
    /// `_cslt_sparse_mm` with the compressed weight and this cuSPARSELt algorithm.
    Sparse {
        /// The algorithm `_cslt_sparse_mm_search` found for the shape.
        alg_id: i64,
    },
}

/// What a decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChoiceKey {
    /// The weight's rows.
    pub out_features: i64,
    /// The weight's columns.
    pub in_features: i64,
    /// The input's rows after padding.
    pub batch: i64,
    /// The dtype.
    pub kind: Kind,
}

/// A decision and the times it was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The candidate kept: sparse only when strictly faster.
    pub choice: Candidate,
    /// The dense kernel's time.
    pub dense: Duration,
    /// The sparse kernel's time.
    pub sparse: Duration,
}

/// Times one candidate. `run` runs it once; a timer may call it several times.
pub trait Timer: Send {
    /// The time `candidate` takes (`run` runs it).
    ///
    /// # Errors
    /// Whatever `run` returns.
    fn time(
        &mut self,
        candidate: Candidate,
        run: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Duration>;
}

/// The wall clock: `warmup` untimed runs, then the mean of `iterations` runs, with the CUDA
/// device synchronized before and after so that asynchronous kernels are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// Untimed runs first.
    pub warmup: u32,
    /// Timed runs (at least 1 is made).
    pub iterations: u32,
    /// The device to synchronize.
    pub device: Device,
}

impl Timer for WallClock {
    fn time(&mut self, _: Candidate, run: &mut dyn FnMut() -> Result<()>) -> Result<Duration> {
        let sync = |d: Device| {
            if let Device::Cuda(i) = d {
                tch::Cuda::synchronize(i as i64);
            }
        };
        for _ in 0..self.warmup {
            run()?;
        }
        let n = self.iterations.max(1);
        sync(self.device);
        let start = Instant::now();
        for _ in 0..n {
            run()?;
        }
        sync(self.device);
        Ok(start.elapsed() / n)
    }
}

/// Decisions per [`ChoiceKey`]; one cache can be shared by every layer of a model
/// (`Arc<Mutex<ChoiceCache>>`), so layers of one shape are timed once.
///
/// ```
/// use std::time::Duration;
/// use tch::Kind;
/// use tch_prune::semi_sparse::{Candidate, ChoiceCache, ChoiceKey, Timer};
///
/// struct Fake;
/// impl Timer for Fake {
///     fn time(&mut self, c: Candidate, run: &mut dyn FnMut() -> tch_prune::Result<()>)
///         -> tch_prune::Result<Duration> {
///         run()?;
///         Ok(Duration::from_micros(if c == Candidate::Dense { 100 } else { 60 }))
///     }
/// }
/// let key = ChoiceKey { out_features: 3072, in_features: 768, batch: 64, kind: Kind::Half };
/// let mut cache = ChoiceCache::default();
/// let d = cache.decide(key, &mut Fake, || Ok(2), &mut |_| Ok(()))?;
/// assert_eq!(d.choice, Candidate::Sparse { alg_id: 2 });
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct ChoiceCache {
    decisions: HashMap<ChoiceKey, Decision>,
}

impl ChoiceCache {
    /// The cached decision for `key`, if any.
    pub fn get(&self, key: &ChoiceKey) -> Option<Decision> {
        self.decisions.get(key).copied()
    }

    /// The number of cached decisions.
    pub fn len(&self) -> usize {
        self.decisions.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
    }

    /// The cached decision for `key`, or a new one: `search` finds the sparse algorithm, then
    /// `timer` times `run(Dense)` and `run(Sparse { alg_id })` once each; sparse is kept only
    /// when strictly faster. Errors are not cached.
    ///
    /// # Errors
    /// Whatever `search`, `run` or the timer return.
    pub fn decide(
        &mut self,
        key: ChoiceKey,
        timer: &mut dyn Timer,
        search: impl FnOnce() -> Result<i64>,
        run: &mut dyn FnMut(Candidate) -> Result<()>,
    ) -> Result<Decision> {
        if let Some(d) = self.get(&key) {
            return Ok(d);
        }
        let sparse_candidate = Candidate::Sparse { alg_id: search()? };
        let dense = timer.time(Candidate::Dense, &mut || run(Candidate::Dense))?;
        let sparse = timer.time(sparse_candidate, &mut || run(sparse_candidate))?;
        let choice = if sparse < dense { sparse_candidate } else { Candidate::Dense };
        let decision = Decision { choice, dense, sparse };
        self.decisions.insert(key, decision);
        Ok(decision)
    }
}
