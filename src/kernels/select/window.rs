//! The sampled selection, which decides almost every call in one pass over the tensors (see
//! the [module documentation](super)): a sample's quantiles give a window of keys that holds the
//! threshold ([`super::sample`]), one fused pass writes the mask cut provisionally at the
//! estimate and collects the entries inside the window, and the few between the estimate and
//! the true threshold are rewritten (under [`TieBreak::LowestIndex`], straddling ties too).
//! When the window misses, the caller runs the exact selection ([`super::radix`]).

use super::keys::{FloatKey, Key, MaskElem};
use super::sample::{sample_keys, window, Window};
use super::{straddles, tie_action, Keep, Outcome, Part, TieAction};
use crate::error::Result;
use crate::kernels::vectorized;
use crate::tie_break::TieBreak;

/// Entries processed per step of the pass: the window hits of one step are found from a
/// 64-bit flag word.
const STEP: usize = 64;

/// The competing entries whose keys lie in the window, with their positions, in index order.
struct Candidates<K> {
    positions: Vec<u32>,
    keys: Vec<K>,
    /// Where each part's candidates start (one more entry at the end).
    part_starts: Vec<usize>,
    /// The most candidates collected; past it the windowed selection gives up.
    cap: usize,
    overflow: bool,
    /// A histogram of the candidate keys over the window, `key - lo >> shift` (at most
    /// [`CANDIDATE_BUCKETS`] buckets), so that the threshold is found among a few of them.
    hist: Vec<u32>,
    lo: K,
    shift: u32,
}

/// Buckets of the candidates' histogram.
const CANDIDATE_BUCKETS: usize = 1 << 11;

impl<K: Key> Candidates<K> {
    fn new(window: Window<K>, cap: usize, parts: usize) -> Self {
        let width = window.hi.wrapping_sub(window.lo).to_u64();
        let bits = u64::BITS - width.leading_zeros();
        Candidates {
            positions: Vec::with_capacity(cap),
            keys: Vec::with_capacity(cap),
            part_starts: Vec::with_capacity(parts + 1),
            cap,
            overflow: false,
            hist: vec![0; CANDIDATE_BUCKETS],
            lo: window.lo,
            shift: bits.saturating_sub(CANDIDATE_BUCKETS.trailing_zeros()),
        }
    }

    #[inline(always)]
    fn bucket(&self, key: K) -> usize {
        (key.wrapping_sub(self.lo).to_u64() >> self.shift) as usize
    }

    /// The `m`-th smallest candidate key (`1 <= m <= len`), how many keys are below it and
    /// how many equal it.
    fn nth(&self, m: usize) -> (K, usize, usize) {
        let mut below = 0;
        let mut bucket = 0;
        for (b, &count) in self.hist.iter().enumerate() {
            if below + count as usize >= m {
                bucket = b;
                break;
            }
            below += count as usize;
        }
        let mut inside: Vec<K> =
            self.keys.iter().copied().filter(|&key| self.bucket(key) == bucket).collect();
        let (_, &mut nth, _) = inside.select_nth_unstable(m - below - 1);
        let less = inside.iter().filter(|&&key| key < nth).count();
        let equal = inside.iter().filter(|&&key| key == nth).count();
        (nth, below + less, equal)
    }
}

/// What one pass over a part counted.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// Competing entries with keys below the window.
    below: u64,
    /// Competing entries.
    available: u64,
}

/// The sampled pass (see the module documentation): `Ok(Some(outcome))` when it decided (the
/// outputs are written unless ties straddle the threshold), `Ok(None)` when the exact path must
/// run (it rewrites the outputs).
pub(super) fn select_windowed<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    parts: &[Part<'_, F, T>],
    outs: &mut [&mut [T]],
    k_of: &impl Fn(u64) -> Result<u64>,
    ties: TieBreak,
) -> Result<Option<Outcome>> {
    // Positions are stored as `u32`.
    if parts.iter().any(|p| p.values.len() > u32::MAX as usize) {
        return Ok(None);
    }
    let total: usize = parts.iter().map(|p| p.values.len()).sum();
    let (mut sample, sampled) = sample_keys::<F, T, LARGEST>(parts, total);
    if sample.is_empty() {
        return Ok(None);
    }
    // The number of competing entries and the threshold's rank among them, estimated from the
    // sample (a count larger than the estimate aims at the top).
    let available_estimate = (sample.len() as f64 * total as f64 / sampled as f64).round();
    let rank = match k_of(available_estimate as u64) {
        Ok(k) => k as f64 / available_estimate.max(1.0),
        Err(_) => 1.0,
    };
    let (window, share) = match window(&mut sample, rank, sampled as f64 / total as f64) {
        Some(found) => found,
        None => return Ok(None),
    };
    drop(sample);
    // Room for twice the expected candidates, plus slack for ties, before giving up.
    let cap = ((2.0 * share * available_estimate) as usize + 4096).min(total);
    let mut cands = Candidates::new(window, cap, parts.len());
    let mut counts = Counts::default();
    for (part, out) in parts.iter().zip(outs.iter_mut()) {
        cands.part_starts.push(cands.keys.len());
        let c = match part.keep {
            // Compiled for AVX2 where the CPU has it (`crate::kernels::vectorized`).
            Keep::All(d) => vectorized(
                #[inline(always)]
                || fused_pass::<F, T, LARGEST, false>(part.values, d, out, window, &mut cands),
            ),
            Keep::Masked(m) => vectorized(
                #[inline(always)]
                || fused_pass::<F, T, LARGEST, true>(part.values, Some(m), out, window, &mut cands),
            ),
        };
        counts.below += c.below;
        counts.available += c.available;
    }
    cands.part_starts.push(cands.keys.len());
    let k = k_of(counts.available)?;
    if k == 0 {
        for (part, out) in parts.iter().zip(outs.iter_mut()) {
            part.keep.write_unselected(out);
        }
        return Ok(Some(Outcome::Written));
    }
    let inside = cands.keys.len() as u64;
    if cands.overflow || counts.below >= k || k > counts.below + inside {
        return Ok(None);
    }
    // The threshold is the `m`-th smallest candidate key; every key equal to it lies in the
    // window, so the candidates tell whether all of them are among the `k`.
    let m = (k - counts.below) as usize;
    let (threshold, less, equal) = cands.nth(m);
    let (needed, equal) = ((m - less) as u64, equal as u64);
    // Under `TieBreak::LowestIndex`, the first `needed` tied candidates (in index order) go.
    let straddle = straddles::<F, LARGEST>(threshold, needed, equal, k, counts.available);
    let mut tie_budget = match tie_action(straddle, needed, equal, ties) {
        TieAction::ByKey => None,
        TieAction::LowestIndex(needed) => Some(needed),
        TieAction::Straddle => return Ok(Some(Outcome::TiesStraddle)),
    };
    for (i, (part, out)) in parts.iter().zip(outs.iter_mut()).enumerate() {
        let range = cands.part_starts[i]..cands.part_starts[i + 1];
        let (positions, keys) = (&cands.positions[range.clone()], &cands.keys[range]);
        fix_up(part, out, positions, keys, window.mid, threshold, tie_budget.as_mut());
    }
    Ok(Some(Outcome::Written))
}

/// Corrects the provisional cut at `mid` of one part's mask for the threshold: candidates up
/// to it are selected (ties do not straddle it). Only candidates between `mid` and the
/// threshold change; they are flagged 64 at a time in a vectorisable loop and handled one by
/// one. With a `tie_budget` (ties straddle, [`TieBreak::LowestIndex`]), candidates below the
/// threshold are selected, then tied ones in index order while the budget lasts.
fn fix_up<F: FloatKey, T: MaskElem>(
    part: &Part<'_, F, T>,
    out: &mut [T],
    positions: &[u32],
    keys: &[F::K],
    mid: F::K,
    threshold: F::K,
    tie_budget: Option<&mut u64>,
) {
    let strict = tie_budget.is_some();
    let selected = |key: F::K| if strict { key < threshold } else { key <= threshold };
    // The positions to write, found first so that the writes (scattered, mostly cache
    // misses) run in a tight loop of independent stores that overlap one another.
    let mut select = Vec::new();
    let mut unselect = Vec::new();
    let mut flags = [0u8; STEP];
    for (positions, keys) in positions.chunks(STEP).zip(keys.chunks(STEP)) {
        flags.fill(0);
        for (f, &key) in flags.iter_mut().zip(keys) {
            *f = u8::from(selected(key) != (key < mid));
        }
        for (w, word) in flags.chunks_exact(8).enumerate() {
            let mut bits = u64::from_le_bytes(word.try_into().unwrap_or_default());
            while bits != 0 {
                let j = w * 8 + (bits.trailing_zeros() / 8) as usize;
                bits &= bits - 1;
                if selected(keys[j]) { &mut select } else { &mut unselect }.push(positions[j]);
            }
        }
    }
    for &pos in &select {
        out[pos as usize] = T::PRUNED;
    }
    // A candidate competes, so under `Keep::Masked` its mask value is 1.
    match part.keep {
        Keep::All(Some(d)) => unselect.iter().for_each(|&p| out[p as usize] = d[p as usize]),
        Keep::All(None) | Keep::Masked(_) => {
            unselect.iter().for_each(|&p| out[p as usize] = T::UNPRUNED)
        }
    }
    if let Some(budget) = tie_budget {
        for (&pos, _) in positions.iter().zip(keys).filter(|&(_, &key)| key == threshold) {
            if *budget == 0 {
                break;
            }
            out[pos as usize] = T::PRUNED;
            *budget -= 1;
        }
    }
}

/// The pass of the windowed selection over one part: writes `out` cut provisionally at
/// `window.mid` (competing keys below it selected), appends the competing entries with keys
/// in `[lo, hi]` to `cands`, and counts. `kept` holds what unselected entries keep (`None`:
/// ones); with `MASKED`, only entries whose `kept` value is 1 compete.
#[inline(always)]
fn fused_pass<F: FloatKey, T: MaskElem, const LARGEST: bool, const MASKED: bool>(
    values: &[F],
    kept: Option<&[T]>,
    out: &mut [T],
    window: Window<F::K>,
    cands: &mut Candidates<F::K>,
) -> Counts {
    let ones = [T::UNPRUNED; STEP];
    let mut counts = Counts::default();
    let mut hits = [0u8; STEP];
    let full = values.len() / STEP * STEP;
    // Whole steps of exactly `STEP` entries (`chunks_exact`: once inlined, the step loop has a
    // constant trip count and no bounds checks, and vectorises); then the tail.
    let (values_full, values_tail) = values.split_at(full);
    let (out_full, out_tail) = out.split_at_mut(full);
    let steps = values_full.chunks_exact(STEP).zip(out_full.chunks_exact_mut(STEP));
    for (step, (v, o)) in steps.enumerate() {
        let base = step * STEP;
        let k = kept.map_or(&ones[..], |k| &k[base..base + STEP]);
        pass_step::<F, T, LARGEST, MASKED>(v, k, o, window, &mut hits, &mut counts);
        collect_hits::<F, LARGEST>(&hits, v, base, cands);
    }
    if !values_tail.is_empty() {
        let n = values_tail.len();
        let k = kept.map_or(&ones[..n], |k| &k[full..]);
        hits.fill(0);
        pass_step::<F, T, LARGEST, MASKED>(
            values_tail,
            k,
            out_tail,
            window,
            &mut hits[..n],
            &mut counts,
        );
        collect_hits::<F, LARGEST>(&hits, values_tail, full, cands);
    }
    counts
}

/// One step of [`fused_pass`] (all slices of the same length, at most [`STEP`]): the
/// provisional mask, the counts, and one flag byte per window hit, in one vectorisable loop.
#[inline(always)]
fn pass_step<F: FloatKey, T: MaskElem, const LARGEST: bool, const MASKED: bool>(
    values: &[F],
    kept: &[T],
    out: &mut [T],
    window: Window<F::K>,
    hits: &mut [u8],
    counts: &mut Counts,
) {
    let Window { lo, mid, hi } = window;
    let width = hi.wrapping_sub(lo);
    let mut below = 0u32;
    let mut available = 0u32;
    let n = values.len();
    let (kept, out, hits) = (&kept[..n], &mut out[..n], &mut hits[..n]);
    for j in 0..n {
        let key = values[j].key::<LARGEST>();
        let competes = !MASKED || kept[j] == T::UNPRUNED;
        out[j] = kept[j].unless(competes & (key < mid));
        below += u32::from(competes & (key < lo));
        available += u32::from(competes);
        hits[j] = u8::from(competes & (key.wrapping_sub(lo) <= width));
    }
    counts.below += u64::from(below);
    counts.available += u64::from(available);
}

/// Appends the flagged entries of one step (`hits[j] == 1`) to `cands`, reading the flags 8 at
/// a time: at a window of a few percent most words are zero.
#[inline(always)]
fn collect_hits<F: FloatKey, const LARGEST: bool>(
    hits: &[u8; STEP],
    values: &[F],
    base: usize,
    cands: &mut Candidates<F::K>,
) {
    for (w, word) in hits.chunks_exact(8).enumerate() {
        let mut bits = u64::from_le_bytes(word.try_into().unwrap_or_default());
        while bits != 0 {
            let j = w * 8 + (bits.trailing_zeros() / 8) as usize;
            // Each flag byte is 0 or 1, so this clears exactly the flag just read.
            bits &= bits - 1;
            if cands.keys.len() == cands.cap {
                cands.overflow = true;
                return;
            }
            let key = values[j].key::<LARGEST>();
            let bucket = cands.bucket(key);
            cands.hist[bucket] += 1;
            cands.positions.push((base + j) as u32);
            cands.keys.push(key);
        }
    }
}
