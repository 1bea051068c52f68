//! The exact selection, for when the sampled window misses ([`super::window`]): radix selection
//! of the threshold key, one histogram pass per 16-bit digit of the key (two for `f32`, four
//! for `f64`), then a write pass. Used far less often than the window, and never to decide which
//! of several tied entries go: where the tied entries straddle the threshold it reports so
//! ([`super::Outcome::TiesStraddle`]), and the replay of libtorch's `topk` decides
//! ([`super::replay`]).

use super::keys::{FloatKey, Key, MaskElem};
use super::{straddles, Keep, Part};
use crate::error::Result;

/// Radix digit of the exact selection: 16 bits, two passes for `f32` keys.
pub(super) const DIGIT_BITS: u32 = 16;
pub(super) const BUCKETS: usize = 1 << DIGIT_BITS;

/// Where the selection cuts: the competing keys up to `threshold` are selected (exactly `k`
/// of them unless `straddles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cut<K> {
    pub(super) threshold: K,
    /// Whether keys equal to the threshold (or NaNs, which `topk` treats as equal) would be
    /// selected only in part: then the cut is not `topk`'s choice.
    pub(super) straddles: bool,
    /// How many of the competing keys equal to the threshold are among the `k`, and how many
    /// there are.
    pub(super) needed: u64,
    pub(super) equal: u64,
}

/// Exact selection by radix: the number of entries to select and where the cut lies.
pub(super) fn exact_cut<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    parts: &[Part<'_, F, T>],
    k_of: &impl Fn(u64) -> Result<u64>,
) -> Result<(u64, Cut<F::K>)> {
    let bits = F::K::BITS;
    let mut shift = bits - DIGIT_BITS;
    let mut prefix = 0u64;
    let mut hist = vec![0u64; BUCKETS];
    let mut available = 0u64;
    for part in parts {
        available += histogram::<F, T, LARGEST>(part, prefix, shift, &mut hist);
    }
    let k = k_of(available)?;
    if k == 0 {
        let threshold = F::K::default();
        return Ok((0, Cut { threshold, straddles: false, needed: 0, equal: 0 }));
    }
    let mut rank = k;
    let mut below = 0u64;
    loop {
        let mut bucket = BUCKETS - 1;
        let mut cumulative = 0u64;
        for (b, &count) in hist.iter().enumerate() {
            if cumulative + count >= rank {
                bucket = b;
                break;
            }
            cumulative += count;
        }
        below += cumulative;
        rank -= cumulative;
        let equal = hist[bucket];
        prefix = (prefix << DIGIT_BITS) | bucket as u64;
        if shift == 0 {
            let threshold = F::K::from_bits(prefix);
            let needed = k - below;
            let straddles = straddles::<F, LARGEST>(threshold, needed, equal, k, available);
            return Ok((k, Cut { threshold, straddles, needed, equal }));
        }
        shift -= DIGIT_BITS;
        hist.fill(0);
        for part in parts {
            histogram::<F, T, LARGEST>(part, prefix, shift, &mut hist);
        }
    }
}

/// Adds to `hist` the histogram of digit `shift` over the competing keys of `part` whose bits
/// above `shift + DIGIT_BITS` equal `prefix`; returns how many entries compete.
fn histogram<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    part: &Part<'_, F, T>,
    prefix: u64,
    shift: u32,
    hist: &mut [u64],
) -> u64 {
    let upper = shift + DIGIT_BITS;
    let mut count = |key: F::K| {
        if upper >= F::K::BITS || key.high_bits(upper) == prefix {
            hist[key.digit(shift)] += 1;
        }
    };
    match part.keep {
        Keep::All(_) => {
            part.values.iter().for_each(|v| count(v.key::<LARGEST>()));
            part.values.len() as u64
        }
        Keep::Masked(m) => {
            let mut available = 0;
            for (v, &m) in part.values.iter().zip(m) {
                if m == T::UNPRUNED {
                    available += 1;
                    count(v.key::<LARGEST>());
                }
            }
            available
        }
    }
}

/// Writes the masks of `parts` for a cut that straddles ties under
/// [`TieBreak::LowestIndex`](crate::TieBreak::LowestIndex): every competing key below the
/// threshold is selected, then the first `needed` competing keys equal to it, in index order
/// (part after part).
pub(super) fn write_lowest_index<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    parts: &[Part<'_, F, T>],
    outs: &mut [&mut [T]],
    threshold: F::K,
    mut needed: u64,
) {
    for (part, out) in parts.iter().zip(outs.iter_mut()) {
        write_where(part, out, |v| v.key::<LARGEST>() < threshold);
    }
    for (part, out) in parts.iter().zip(outs.iter_mut()) {
        for (i, v) in part.values.iter().enumerate() {
            if needed == 0 {
                return;
            }
            let competes = match part.keep {
                Keep::All(_) => true,
                Keep::Masked(m) => m[i] == T::UNPRUNED,
            };
            if competes && v.key::<LARGEST>() == threshold {
                out[i] = T::PRUNED;
                needed -= 1;
            }
        }
    }
}

/// Writes the mask of `part` for a cut that does not straddle ties: every competing key up to
/// the threshold is selected.
pub(super) fn write_exact<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    part: &Part<'_, F, T>,
    threshold: F::K,
    out: &mut [T],
) {
    write_where(part, out, |v| v.key::<LARGEST>() <= threshold);
}

/// Writes the mask of `part`: the competing entries whose value is `selected` get 0, the others
/// what their [`Keep`] says. One straight zip per case, which the compiler vectorises (with
/// `selected` inlined).
#[inline(always)]
pub(super) fn write_where<F: FloatKey, T: MaskElem>(
    part: &Part<'_, F, T>,
    out: &mut [T],
    selected: impl Fn(&F) -> bool,
) {
    let (zero, one) = (T::PRUNED, T::UNPRUNED);
    match part.keep {
        Keep::All(None) => {
            for (o, v) in out.iter_mut().zip(part.values) {
                *o = if selected(v) { zero } else { one };
            }
        }
        Keep::All(Some(d)) => {
            for ((o, v), &d) in out.iter_mut().zip(part.values).zip(d) {
                *o = if selected(v) { zero } else { d };
            }
        }
        Keep::Masked(m) => {
            for ((o, v), &m) in out.iter_mut().zip(part.values).zip(m) {
                *o = if m == one && selected(v) { zero } else { m };
            }
        }
    }
}
