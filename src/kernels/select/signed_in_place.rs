//! The Top-K selection of movement pruning (`crate::movement`): masks that zero the `prune`
//! smallest scores across one or more `f32` tensors (signed order), written straight into the
//! caller's mask tensors, with the tie rule of the reference's stable descending sort (among
//! equal scores straddling the cut, the lower index is kept) decided here rather than by a sort.
//!
//! The rest of this module decides straddling ties as PyTorch's `topk` does (or lowest index
//! *pruned* first, `TieBreak::LowestIndex`) and writes fresh masks; movement pruning needs the
//! opposite tie rule and refreshes 85 M scores' masks in place every step, where a global cut
//! straddles ties often (a few `f32` values per ulp near the threshold: the stable sort of the
//! concatenation it replaced took 17–24 s). Here ties cost nothing extra:
//!
//! 1. **Sample** keys from evenly spaced 64-byte blocks; their quantiles give an estimate `mid`
//!    of the threshold key and a window `[lo, hi]` that holds it with overwhelming probability.
//! 2. **One pass** per tensor writes the mask cut at `mid`, counts the keys below `lo`, and
//!    collects the keys inside the window with their positions, in index order.
//! 3. The threshold `T` is selected among the candidates; every candidate is then rewritten:
//!    0 below `T`, 1 above, and for keys equal to `T` the first ones in index order (across the
//!    tensors, in order) are kept until the count is right.
//!
//! When the window misses (an unlucky sample, or a window crowded by ties, e.g. scores that
//! all start at 0), an exact radix selection (two histogram passes of 16-bit digits) finds `T`
//! and a write pass with the same tie rule follows. The sample decides the speed, never the
//! result.
//!
//! Keys: the signed order of `sort`, `-0.0` equal to `0.0`, and every NaN above `+inf` and
//! equal to the other NaNs (as `sort(descending=True)` ranks them).

use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::kernels::{vectorized, with_slices, with_slices_mut};

/// Sampled blocks of 16 entries (one cache line of `f32`): at most this many.
const SAMPLE_BLOCKS: usize = 4096;
const BLOCK: usize = 16;
/// Half-width of the window, in standard deviations of the sample quantile.
const SIGMAS: f64 = 4.0;
/// Entries per step of the pass (window hits are found from 64 flag bytes).
const STEP: usize = 64;

/// The key of a score: unsigned integers in the order of a stable sort of the values.
#[inline(always)]
fn key(x: f32) -> u32 {
    // `x + 0.0` turns `-0.0` into `0.0`; negative values get all bits flipped, the others the
    // sign bit set, so the keys order like the values.
    let bits = (x + 0.0).to_bits();
    let flip = (((bits as i32) >> 31) as u32) | 0x8000_0000;
    if x.is_nan() {
        u32::MAX
    } else {
        bits ^ flip
    }
}

/// Writes into `outs` (each shaped like its part, `f32`) the masks that zero the `prune`
/// smallest of all the scores of `parts`, in order, keeping the rest; among equal scores at the
/// cut, the lower index (in the order of `parts`, then row-major) is kept. `Ok(false)` when it
/// does not apply (a part or an output that is not a contiguous CPU `f32` tensor, outputs that
/// overlap each other or a part, a part of more than `u32::MAX` entries); nothing is written
/// then.
pub(crate) fn keep_all_but_smallest_into(
    parts: &[&Tensor],
    prune: u64,
    outs: &mut [Tensor],
) -> Result<bool> {
    let fits = |t: &Tensor| t.device() == Device::Cpu && t.kind() == Kind::Float;
    if parts.len() != outs.len()
        || !parts.iter().all(|t| fits(t))
        || parts.iter().zip(outs.iter()).any(|(p, o)| p.size() != o.size())
    {
        return Ok(false);
    }
    let parts: Vec<Tensor> =
        parts.iter().map(|t| t.f_contiguous()).collect::<std::result::Result<_, _>>()?;
    // The outputs are written through `&mut` slices while the parts are read: no overlap.
    let span = |t: &Tensor| (t.data_ptr() as usize, t.data_ptr() as usize + 4 * t.numel());
    let overlaps = outs.iter().filter(|o| o.numel() > 0).any(|o| {
        let (a, b) = span(o);
        parts.iter().filter(|p| p.numel() > 0).any(|p| span(p).0 < b && a < span(p).1)
    });
    if overlaps || parts.iter().any(|p| p.numel() > u32::MAX as usize) {
        return Ok(false);
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    let done = with_slices::<f32, _>(&refs, |values| {
        with_slices_mut::<f32, _>(outs, |outs| select(values, prune, outs))
    });
    Ok(done.flatten().is_some())
}

/// The selection on slices (see the module documentation).
fn select(values: &[&[f32]], prune: u64, outs: &mut [&mut [f32]]) {
    let total: u64 = values.iter().map(|v| v.len() as u64).sum();
    if prune == 0 || prune >= total {
        let fill = if prune == 0 { 1.0 } else { 0.0 };
        outs.iter_mut().for_each(|o| o.fill(fill));
        return;
    }
    if !windowed(values, prune, outs) {
        exact(values, prune, outs);
    }
}

/// The window around the sampled quantile of rank `prune / total`: `(lo, mid, hi, share)`,
/// with `share` the expected fraction of entries inside.
fn window(values: &[&[f32]], prune: u64, total: u64) -> (u32, u32, u32, f64) {
    let blocks = (total as usize).div_ceil(BLOCK).min(SAMPLE_BLOCKS);
    let mut sample = Vec::with_capacity(blocks * BLOCK);
    let (mut part, mut part_start) = (0, 0usize);
    for b in 0..blocks {
        let start = (b as u128 * total as u128 / blocks as u128) as usize;
        while start >= part_start + values[part].len() {
            part_start += values[part].len();
            part += 1;
        }
        let v = values[part];
        let from = start - part_start;
        sample.extend(v[from..(from + BLOCK).min(v.len())].iter().map(|&x| key(x)));
    }
    let n = sample.len() as f64;
    let fraction = n / total as f64;
    let rank = (prune - 1) as f64 / total as f64;
    let half = SIGMAS * (n * rank * (1.0 - rank) * (1.0 - fraction).max(0.0)).sqrt() + 2.0;
    let at = |r: f64, s: &mut [u32]| *s.select_nth_unstable(r as usize).1;
    let center = (rank * n).min(n - 1.0);
    let mid = at(center, &mut sample);
    let lo = if center - half < 0.0 { 0 } else { at(center - half, &mut sample) };
    let hi = if center + half > n - 1.0 { u32::MAX } else { at(center + half, &mut sample) };
    (lo, mid, hi, (2.0 * half / n).min(1.0))
}

/// The sampled pass and fix-up; `false` when the window missed (nothing useful written).
fn windowed(values: &[&[f32]], prune: u64, outs: &mut [&mut [f32]]) -> bool {
    let total: u64 = values.iter().map(|v| v.len() as u64).sum();
    let (lo, mid, hi, share) = window(values, prune, total);
    let cap = ((2.0 * share * total as f64) as usize + 4096).min(total as usize);
    let mut cands = Candidates { positions: Vec::with_capacity(cap), keys: Vec::new(), cap };
    cands.keys.reserve(cap);
    let mut starts = Vec::with_capacity(values.len() + 1);
    let mut below = 0u64;
    for (v, out) in values.iter().zip(outs.iter_mut()) {
        starts.push(cands.keys.len());
        below += vectorized(
            #[inline(always)]
            || pass(v, out, (lo, mid, hi), &mut cands),
        );
        if cands.keys.len() > cands.cap {
            return false;
        }
    }
    starts.push(cands.keys.len());
    let inside = cands.keys.len() as u64;
    if below >= prune || prune > below + inside {
        return false;
    }
    // The threshold is the `m`-th smallest candidate; every key equal to it is a candidate.
    let m = (prune - below) as usize;
    let mut keys = cands.keys.clone();
    let threshold = *keys.select_nth_unstable(m - 1).1;
    let less = keys.iter().filter(|&&k| k < threshold).count();
    let equal = keys.iter().filter(|&&k| k == threshold).count();
    let mut ties_kept = equal - (m - less);
    for (i, out) in outs.iter_mut().enumerate() {
        let range = starts[i]..starts[i + 1];
        for (&pos, &k) in cands.positions[range.clone()].iter().zip(&cands.keys[range]) {
            out[pos as usize] = decide(k, threshold, &mut ties_kept);
        }
    }
    true
}

/// A mask value for key `k` at the cut `threshold` with `ties_kept` tied entries still to keep
/// (called in index order).
#[inline(always)]
fn decide(k: u32, threshold: u32, ties_kept: &mut usize) -> f32 {
    if k == threshold {
        if *ties_kept > 0 {
            *ties_kept -= 1;
            return 1.0;
        }
        return 0.0;
    }
    if k < threshold {
        0.0
    } else {
        1.0
    }
}

/// The entries whose keys lie in the window, with their positions, in index order.
struct Candidates {
    positions: Vec<u32>,
    keys: Vec<u32>,
    cap: usize,
}

/// One part's pass: `out` cut at `mid`, candidates in `[lo, hi]` appended (stops collecting past
/// the cap), the number of keys below `lo` returned.
#[inline(always)]
fn pass(
    values: &[f32],
    out: &mut [f32],
    (lo, mid, hi): (u32, u32, u32),
    c: &mut Candidates,
) -> u64 {
    let width = hi.wrapping_sub(lo);
    let mut below = 0u64;
    let mut hits = [0u8; STEP];
    for (step, (v, o)) in values.chunks(STEP).zip(out.chunks_mut(STEP)).enumerate() {
        let mut count = 0u32;
        for ((x, o), h) in v.iter().zip(o.iter_mut()).zip(hits.iter_mut()) {
            let k = key(*x);
            *o = if k < mid { 0.0 } else { 1.0 };
            count += u32::from(k < lo);
            *h = u8::from(k.wrapping_sub(lo) <= width);
        }
        below += u64::from(count);
        let n = v.len();
        for (w, word) in hits[..n.div_ceil(8) * 8].chunks_exact(8).enumerate() {
            let mut bits = u64::from_le_bytes(word.try_into().unwrap_or_default());
            while bits != 0 {
                let j = w * 8 + (bits.trailing_zeros() / 8) as usize;
                bits &= bits - 1;
                if j >= n || c.keys.len() > c.cap {
                    continue;
                }
                c.positions.push((step * STEP + j) as u32);
                c.keys.push(key(v[j]));
            }
        }
    }
    below
}

/// The exact path: radix selection of the threshold key, then a write pass with the tie rule.
fn exact(values: &[&[f32]], prune: u64, outs: &mut [&mut [f32]]) {
    let mut hist = vec![0u64; 1 << 16];
    for v in values {
        v.iter().for_each(|&x| hist[(key(x) >> 16) as usize] += 1);
    }
    let (high, before) = nth_bucket(&hist, prune);
    hist.fill(0);
    for v in values {
        for &x in v.iter() {
            let k = key(x);
            if k >> 16 == high {
                hist[(k & 0xFFFF) as usize] += 1;
            }
        }
    }
    let (low, less) = nth_bucket(&hist, prune - before);
    let threshold = (high << 16) | low;
    let equal = hist[low as usize];
    let mut ties_kept = (equal - (prune - before - less)) as usize;
    for (v, out) in values.iter().zip(outs.iter_mut()) {
        for (o, &x) in out.iter_mut().zip(v.iter()) {
            *o = if key(x) <= threshold { 0.0 } else { 1.0 };
        }
        if ties_kept > 0 {
            for (o, &x) in out.iter_mut().zip(v.iter()) {
                if ties_kept == 0 {
                    break;
                }
                if key(x) == threshold {
                    *o = 1.0;
                    ties_kept -= 1;
                }
            }
        }
    }
}

/// The bucket holding the `rank`-th smallest entry (1-based) and the count before it.
fn nth_bucket(hist: &[u64], rank: u64) -> (u32, u64) {
    let mut before = 0;
    for (b, &count) in hist.iter().enumerate() {
        if before + count >= rank {
            return (b as u32, before);
        }
        before += count;
    }
    (hist.len() as u32 - 1, before)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stable descending sort of the concatenation, the last `prune` dropped: the rule.
    fn by_sort(parts: &[&Tensor], prune: i64) -> Tensor {
        let flat: Vec<Tensor> = parts.iter().map(|t| t.reshape([-1])).collect();
        let all = Tensor::cat(&flat, 0);
        let (_, order) = all.sort_stable(true, 0, true);
        let dropped = order.narrow(0, all.numel() as i64 - prune, prune);
        all.ones_like().index_fill(0, &dropped, 0.0)
    }

    fn check(parts: &[&Tensor], prune: i64) {
        let want = by_sort(parts, prune);
        let mut outs: Vec<Tensor> = parts.iter().map(|t| t.full_like(7.0)).collect();
        assert!(keep_all_but_smallest_into(parts, prune as u64, &mut outs).unwrap());
        let flat: Vec<Tensor> = outs.iter().map(|t| t.reshape([-1])).collect();
        assert_eq!(Tensor::cat(&flat, 0), want, "prune {prune}");
        // Both paths on their own give the same masks.
        let refs: Vec<&Tensor> = parts.to_vec();
        with_slices::<f32, _>(&refs, |values| {
            let mut exact_outs: Vec<Vec<f32>> = values.iter().map(|v| vec![7.0; v.len()]).collect();
            let mut slices: Vec<&mut [f32]> = exact_outs.iter_mut().map(|v| &mut v[..]).collect();
            if (1..want.numel() as i64).contains(&prune) {
                exact(values, prune as u64, &mut slices);
            }
            let got: Vec<f32> = exact_outs.concat();
            if (1..want.numel() as i64).contains(&prune) {
                assert_eq!(Tensor::from_slice(&got), want, "exact, prune {prune}");
            }
        });
    }

    #[test]
    fn random_scores_across_parts_match_the_stable_sort() {
        tch::manual_seed(11);
        let a = Tensor::randn([300, 200], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([1000, 77], (Kind::Float, Device::Cpu));
        let c = Tensor::randn([5], (Kind::Float, Device::Cpu));
        for prune in [0, 1, 17, 30_000, 67_000, 137_004, 137_005] {
            check(&[&a, &b, &c], prune);
        }
        // On such scores the sampled window decides (the exact path is the exception).
        let hit = with_slices::<f32, _>(&[&a, &b, &c], |values| {
            let mut outs: Vec<Vec<f32>> = values.iter().map(|v| vec![0.0; v.len()]).collect();
            let mut slices: Vec<&mut [f32]> = outs.iter_mut().map(|v| &mut v[..]).collect();
            windowed(values, 67_000, &mut slices)
        });
        assert_eq!(hit, Some(true));
    }

    #[test]
    fn ties_straddling_the_cut_keep_the_lower_index() {
        tch::manual_seed(12);
        // Few distinct values: every cut straddles ties, within and across parts.
        let a = Tensor::randint(40, [100_000], (Kind::Float, Device::Cpu)) - 20.0;
        let b = Tensor::randint(40, [50_001], (Kind::Float, Device::Cpu)) - 20.0;
        for prune in [1, 3_333, 75_000, 149_999] {
            check(&[&a, &b], prune);
        }
        // All equal (scores that start at a constant): the window misses, the exact path runs.
        let z = Tensor::zeros([70_000], (Kind::Float, Device::Cpu));
        let w = Tensor::zeros([10], (Kind::Float, Device::Cpu));
        for prune in [1, 35_000, 70_009] {
            check(&[&z, &w], prune);
        }
    }

    #[test]
    fn signed_zeros_infinities_and_nans_order_as_sort_does() {
        let v = [0.0f32, -0.0, f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0, -1.0];
        let t = Tensor::from_slice(&v).repeat([9_000]);
        for prune in [1, 9_000, 20_000, 36_000, 45_000, 71_999] {
            check(&[&t], prune);
        }
    }

    #[test]
    fn refuses_what_it_cannot_read_or_write() {
        let s = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
        let mut double = vec![Tensor::zeros([4, 4], (Kind::Double, Device::Cpu))];
        assert!(!keep_all_but_smallest_into(&[&s], 3, &mut double).unwrap());
        let mut aliased = vec![s.shallow_clone()];
        assert!(!keep_all_but_smallest_into(&[&s], 3, &mut aliased).unwrap());
        let mut wrong_shape = vec![Tensor::zeros([16], (Kind::Float, Device::Cpu))];
        assert!(!keep_all_but_smallest_into(&[&s], 3, &mut wrong_shape).unwrap());
    }
}
