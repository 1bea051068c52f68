//! The sample of the windowed selection ([`super::window`]): keys read from evenly spaced
//! 64-byte blocks, and the window of keys around the sample quantile that should hold the
//! threshold.

use super::keys::{FloatKey, Key, MaskElem};
use super::{Keep, Part};

/// Entries per sampled block: one 64-byte cache line of `f32`.
pub(super) const SAMPLE_BLOCK: usize = 16;
/// At most this many entries are sampled (`2^14`: the window then holds about 3% of the
/// entries at a 40% threshold, and sampling costs a few percent of the pass).
pub(super) const MAX_SAMPLE: usize = 1 << 14;
/// Half-width of the window, in standard deviations of the sample quantile.
const WINDOW_SIGMAS: f64 = 4.0;
/// Keys around the estimated threshold: `[lo, hi]` should hold the threshold, and `mid` (the
/// estimate itself) is where the pass cuts provisionally.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window<K> {
    pub(super) lo: K,
    pub(super) mid: K,
    pub(super) hi: K,
}

/// Keys of the competing entries in evenly spaced blocks of [`SAMPLE_BLOCK`] entries across
/// the concatenated parts, and how many entries were looked at.
pub(super) fn sample_keys<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    parts: &[Part<'_, F, T>],
    total: usize,
) -> (Vec<F::K>, usize) {
    // About one entry in 64, at least 2048 (all of them below that), at most MAX_SAMPLE.
    let blocks = (total / 64).clamp(2048, MAX_SAMPLE).min(total).div_ceil(SAMPLE_BLOCK).max(1);
    let mut keys = Vec::with_capacity(blocks * SAMPLE_BLOCK);
    let mut looked = 0;
    let mut part_start = 0;
    let mut parts = parts.iter();
    let mut current = parts.next();
    for b in 0..blocks {
        // Block `b` starts at the `b`-th of `blocks` equal steps through all entries.
        let start = (b as u128 * total as u128 / blocks as u128) as usize;
        while let Some(p) = current {
            if start < part_start + p.values.len() {
                break;
            }
            part_start += p.values.len();
            current = parts.next();
        }
        let Some(p) = current else { break };
        let from = start - part_start;
        let to = (from + SAMPLE_BLOCK).min(p.values.len());
        looked += to - from;
        let values = &p.values[from..to];
        match p.keep {
            Keep::All(_) => keys.extend(values.iter().map(|v| v.key::<LARGEST>())),
            Keep::Masked(m) => {
                for (v, &m) in values.iter().zip(&m[from..to]) {
                    if m == T::UNPRUNED {
                        keys.push(v.key::<LARGEST>());
                    }
                }
            }
        }
    }
    (keys, looked)
}

/// The window around the sample quantile `rank`, `WINDOW_SIGMAS` standard deviations of the
/// sample quantile wide on each side (with the finite-population correction for a sample that
/// is a `fraction` of the whole), and the share of the entries expected inside it; `None` when
/// it would span every key.
pub(super) fn window<K: Key>(
    sample: &mut [K],
    rank: f64,
    fraction: f64,
) -> Option<(Window<K>, f64)> {
    let n = sample.len() as f64;
    let rank = rank.clamp(0.0, 1.0);
    let sd = (n * rank * (1.0 - rank) * (1.0 - fraction).max(0.0)).sqrt();
    // A few sample keys of slack either side, for the discreteness of the ranks.
    let half = WINDOW_SIGMAS * sd + 2.0;
    let center = rank * n;
    let (lo_rank, hi_rank) = (center - half, center + half);
    if lo_rank < 0.0 && hi_rank >= n - 1.0 {
        return None;
    }
    // `mid` first; then `lo` among the keys before it and `hi` among those after it.
    let m = (center as usize).min(sample.len() - 1);
    let (before, &mut mid, after) = sample.select_nth_unstable(m);
    let lo = if lo_rank < 0.0 || before.is_empty() {
        K::default()
    } else {
        *before.select_nth_unstable((lo_rank as usize).min(before.len() - 1)).1
    };
    let hi = if hi_rank >= n - 1.0 || after.is_empty() {
        K::MAX
    } else {
        let i = (hi_rank.ceil() as usize).saturating_sub(m + 1).min(after.len() - 1);
        *after.select_nth_unstable(i).1
    };
    Some((Window { lo, mid, hi }, (2.0 * half / n).min(1.0)))
}
