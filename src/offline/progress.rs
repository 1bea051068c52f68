//! [`Progress`]: how long-running offline operations report the bytes they have processed.

/// Receives progress from offline operations: a phase starts with the bytes it will process,
/// then advances. The command-line program draws bars with bytes/s from it; the library's
/// default, [`NoProgress`], ignores it.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use tch_prune::offline::Progress;
///
/// #[derive(Default)]
/// struct Count(AtomicU64);
/// impl Progress for Count {
///     fn start(&self, _phase: &str, _total_bytes: u64) {}
///     fn advance(&self, bytes: u64) {
///         self.0.fetch_add(bytes, Ordering::Relaxed);
///     }
/// }
/// let c = Count::default();
/// c.advance(5);
/// assert_eq!(c.0.load(Ordering::Relaxed), 5);
/// ```
pub trait Progress {
    /// A phase begins (`"threshold"`, `"write"`, ...) that will process `total_bytes`.
    fn start(&self, phase: &str, total_bytes: u64);
    /// `bytes` more were processed.
    fn advance(&self, bytes: u64);
    /// The phase ended.
    fn finish(&self) {}
}

/// Progress that goes nowhere.
///
/// ```
/// use tch_prune::offline::{NoProgress, Progress};
/// NoProgress.advance(1);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _phase: &str, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
}
