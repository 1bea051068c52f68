//! Linear-time selection of the `k` smallest magnitudes (or `k` largest values) of tensors, by
//! radix selection on the bit patterns of the values.
//!
//! Non-negative IEEE floats order like their bit patterns read as unsigned integers, so with
//! the sign bit cleared, `|x|` becomes an integer key (NaN keys lie above `inf`, so NaN ranks as
//! the largest magnitude, as with `topk`). The `k`-th smallest key is found with one histogram
//! pass per 16-bit digit (two for `f32`, four for `f64`), each split over the cores; one more
//! pass writes the mask. The tensors are read in place ([`crate::kernels`]), never copied or
//! concatenated. libtorch's `topk`, which PyTorch uses, sorts the `k` selected entries and is
//! many times slower for large `k`.
//!
//! **Ties.** Exactly `k` entries are selected. Entries whose key equals the threshold are taken
//! in index order (lowest index first; across tensors, in the order the tensors are listed)
//! until `k` is reached. Where no entry ties with the threshold, the selected set is the same as
//! `topk`'s, so masks equal PyTorch's; with ties at the threshold, `topk`'s choice is
//! unspecified (it changes with size and backend) and ours is the rule above.
//!
//! The fast path runs on CPU tensors of kind `f32` or `f64` with at least
//! [`FAST_PATH_MIN_NUMEL`] entries whose mask is `f32`, `f64`, `i64`, `i32` or `u8`; anything
//! else uses libtorch's `topk` (bit-exact with PyTorch, ties included).

use std::ops::Range;
use std::thread;

use tch::kind::Element;
use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::kernels::{with_slice, with_slice_mut};
use crate::method::Amount;

/// Tensors with fewer entries than this are selected with libtorch's `topk`, like PyTorch (ties
/// then resolve exactly as in PyTorch); larger CPU `f32` / `f64` tensors use radix selection.
pub const FAST_PATH_MIN_NUMEL: usize = 1 << 15;

/// Below this many entries a pass runs on one thread (spawning costs more than it saves).
const PARALLEL_MIN_NUMEL: usize = 1 << 17;

const DIGIT_BITS: u32 = 16;
const BUCKETS: usize = 1 << DIGIT_BITS;

/// What to select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// The `k` entries of smallest absolute value (L1 pruning).
    SmallestMagnitude,
    /// The `k` largest values of a non-negative tensor (random draws in `[0, 1)`).
    LargestValue,
}

/// An unsigned key that orders like the selected quantity (smaller key = selected first).
trait Key: Copy + Ord + Send + Sync + 'static {
    const BITS: u32;
    /// Above every real key: marks entries that are not available.
    const UNAVAILABLE: Self;
    fn digit(self, shift: u32) -> usize;
    fn high_bits(self, shift: u32) -> u64;
    fn from_bits(bits: u64) -> Self;
}

impl Key for u32 {
    const BITS: u32 = 32;
    const UNAVAILABLE: Self = u32::MAX;
    fn digit(self, shift: u32) -> usize {
        ((self >> shift) as usize) & (BUCKETS - 1)
    }
    fn high_bits(self, shift: u32) -> u64 {
        u64::from(self).checked_shr(shift).unwrap_or(0)
    }
    fn from_bits(bits: u64) -> Self {
        bits as u32
    }
}

impl Key for u64 {
    const BITS: u32 = 64;
    const UNAVAILABLE: Self = u64::MAX;
    fn digit(self, shift: u32) -> usize {
        ((self >> shift) as usize) & (BUCKETS - 1)
    }
    fn high_bits(self, shift: u32) -> u64 {
        self.checked_shr(shift).unwrap_or(0)
    }
    fn from_bits(bits: u64) -> Self {
        bits
    }
}

/// A float element whose bits give a key.
trait FloatKey: Element + Copy + Send + Sync {
    type K: Key;
    fn key(self, order: Order) -> Self::K;
}

impl FloatKey for f32 {
    type K = u32;
    #[inline]
    fn key(self, order: Order) -> u32 {
        let magnitude = self.to_bits() & 0x7FFF_FFFF;
        match order {
            Order::SmallestMagnitude => magnitude,
            // Larger (non-negative) values must get smaller keys; the top bit stays clear so
            // no key reaches UNAVAILABLE.
            Order::LargestValue => 0x7FFF_FFFF - magnitude,
        }
    }
}

impl FloatKey for f64 {
    type K = u64;
    #[inline]
    fn key(self, order: Order) -> u64 {
        let magnitude = self.to_bits() & 0x7FFF_FFFF_FFFF_FFFF;
        match order {
            Order::SmallestMagnitude => magnitude,
            Order::LargestValue => 0x7FFF_FFFF_FFFF_FFFF - magnitude,
        }
    }
}

/// A mask element: what the mask kernels can write.
trait MaskElem: Element + Copy + PartialEq + Send + Sync {
    const ZERO: Self;
    const ONE: Self;
}

macro_rules! mask_elem {
    ($($t:ty => $zero:expr, $one:expr);*) => {$(
        impl MaskElem for $t {
            const ZERO: Self = $zero;
            const ONE: Self = $one;
        }
    )*};
}
mask_elem!(f32 => 0.0, 1.0; f64 => 0.0, 1.0; i64 => 0, 1; i32 => 0, 1; u8 => 0, 1);

/// Where the selection cuts: every key below `threshold`, plus the first `ties` keys equal to
/// it (in index order), are selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut<K> {
    threshold: K,
    ties: u64,
    /// How many keys equal the threshold in all (when equal to `ties`, order does not matter).
    equal: u64,
}

/// The keys of one tensor: its values, and optionally its current mask (only entries whose
/// mask is exactly 1 compete, as in PyTorch's container).
struct Source<'a, F, M> {
    values: &'a [F],
    available: Option<&'a [M]>,
    order: Order,
}

impl<F: FloatKey, M: MaskElem> Source<'_, F, M> {
    #[inline]
    fn key(&self, i: usize) -> F::K {
        match self.available {
            Some(mask) if mask[i] != <M as MaskElem>::ONE => F::K::UNAVAILABLE,
            _ => self.values[i].key(self.order),
        }
    }
}

/// Splits `0..n` into one range per worker.
fn ranges(n: usize) -> Vec<Range<usize>> {
    let workers = if n < PARALLEL_MIN_NUMEL {
        1
    } else {
        thread::available_parallelism().map_or(1, |p| p.get()).min(16)
    };
    let chunk = n.div_ceil(workers).max(1);
    (0..n).step_by(chunk).map(|start| start..(start + chunk).min(n)).collect()
}

type Histogram = Box<[u32; BUCKETS]>;

/// Counts digit `shift` of the keys `key(v)` of `values` whose bits above `shift + DIGIT_BITS`
/// equal `prefix` (all of them on the first pass).
#[inline(always)]
fn count_digits<F: Copy, K: Key>(
    values: &[F],
    key: impl Fn(F) -> K,
    prefix: u64,
    shift: u32,
    hist: &mut Histogram,
) {
    let upper = shift + DIGIT_BITS;
    if upper >= K::BITS {
        for &v in values {
            hist[key(v).digit(shift)] += 1;
        }
    } else {
        for &v in values {
            let k = key(v);
            if k.high_bits(upper) == prefix {
                hist[k.digit(shift)] += 1;
            }
        }
    }
}

/// Adds to `total` the histogram of digit `shift` over the keys of `src` whose bits above
/// `shift + DIGIT_BITS` equal `prefix`.
fn histogram<F: FloatKey, M: MaskElem>(
    src: &Source<'_, F, M>,
    prefix: u64,
    shift: u32,
    total: &mut [u64],
) {
    let count = |range: Range<usize>| {
        let mut hist: Histogram = Box::new([0u32; BUCKETS]);
        let values = &src.values[range.clone()];
        // One loop per case, so that the key function is known inside each loop.
        match (src.available, src.order) {
            (None, Order::SmallestMagnitude) => count_digits(
                values,
                |v: F| v.key(Order::SmallestMagnitude),
                prefix,
                shift,
                &mut hist,
            ),
            (None, Order::LargestValue) => {
                count_digits(values, |v: F| v.key(Order::LargestValue), prefix, shift, &mut hist)
            }
            (Some(mask), order) => {
                let mask = &mask[range];
                let upper = shift + DIGIT_BITS;
                for (&v, &m) in values.iter().zip(mask) {
                    if m == <M as MaskElem>::ONE {
                        let k = v.key(order);
                        if upper >= F::K::BITS || k.high_bits(upper) == prefix {
                            hist[k.digit(shift)] += 1;
                        }
                    }
                }
            }
        }
        hist
    };
    let parts = ranges(src.values.len());
    let partials: Vec<Histogram> = if parts.len() == 1 {
        parts.into_iter().map(count).collect()
    } else {
        thread::scope(|s| {
            let handles: Vec<_> = parts.into_iter().map(|r| s.spawn(move || count(r))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    for hist in partials {
        for (t, &h) in total.iter_mut().zip(hist.iter()) {
            *t += u64::from(h);
        }
    }
}

/// Finds the cut that selects the `k` smallest keys (`1 <= k <= available keys`); `pass(prefix,
/// shift)` returns the histogram of one digit over every source.
fn radix_select<K: Key>(
    k_of: impl FnOnce(u64) -> Result<u64>,
    mut pass: impl FnMut(u64, u32) -> Result<Vec<u64>>,
) -> Result<Option<Cut<K>>> {
    let mut prefix = 0u64;
    let mut below = 0u64;
    let mut equal: u64;
    let mut shift = K::BITS - DIGIT_BITS;
    let first = pass(prefix, shift)?;
    // Real keys have a clear top bit; only UNAVAILABLE entries land in the last bucket.
    let available: u64 = first[..BUCKETS / 2].iter().sum();
    let k = k_of(available)?;
    if k == 0 {
        return Ok(None);
    }
    let mut rank = k;
    let mut hist = first;
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
        equal = hist[bucket];
        prefix = (prefix << DIGIT_BITS) | bucket as u64;
        if shift == 0 {
            break;
        }
        shift -= DIGIT_BITS;
        hist = pass(prefix, shift)?;
    }
    Ok(Some(Cut { threshold: K::from_bits(prefix), ties: k - below, equal }))
}

/// Writes `out[i] = 0` for the selected entries and `default[i]` (1 when `default` is `None`)
/// elsewhere; returns the ties still to take after this source.
fn write_mask<F: FloatKey, M: MaskElem, T: MaskElem>(
    src: &Source<'_, F, M>,
    cut: Cut<F::K>,
    ties_left: u64,
    default: Option<&[T]>,
    out: &mut [T],
) -> u64 {
    let kept = |i: usize| default.map_or(<T as MaskElem>::ONE, |d| d[i]);
    if cut.equal == cut.ties {
        // Every threshold-equal key is selected, so order is irrelevant: write in parallel,
        // one loop per case so that each is a straight zip the compiler can vectorise.
        let parts = ranges(out.len());
        thread::scope(|s| {
            let mut rest = &mut out[..];
            for range in parts {
                let (chunk, tail) = rest.split_at_mut(range.len());
                rest = tail;
                s.spawn(move || {
                    let values = &src.values[range.clone()];
                    let zero = <T as MaskElem>::ZERO;
                    let thr = cut.threshold;
                    match (src.available, default) {
                        (None, Some(d)) => {
                            let d = &d[range];
                            for ((o, &v), &d) in chunk.iter_mut().zip(values).zip(d) {
                                *o = if v.key(src.order) <= thr { zero } else { d };
                            }
                        }
                        (None, None) => {
                            let one = <T as MaskElem>::ONE;
                            for (o, &v) in chunk.iter_mut().zip(values) {
                                *o = if v.key(src.order) <= thr { zero } else { one };
                            }
                        }
                        (Some(available), Some(d)) => {
                            let (available, d) = (&available[range.clone()], &d[range]);
                            let one = <M as MaskElem>::ONE;
                            let entries = values.iter().zip(available).zip(d);
                            for (o, ((&v, &a), &d)) in chunk.iter_mut().zip(entries) {
                                let selected = a == one && v.key(src.order) <= thr;
                                *o = if selected { zero } else { d };
                            }
                        }
                        (Some(_), None) => {
                            for (o, i) in chunk.iter_mut().zip(range) {
                                *o = if src.key(i) <= thr { zero } else { kept(i) };
                            }
                        }
                    }
                });
            }
        });
        return ties_left;
    }
    let mut left = ties_left;
    for (i, o) in out.iter_mut().enumerate() {
        let key = src.key(i);
        let selected = key < cut.threshold || (key == cut.threshold && left > 0);
        if selected && key == cut.threshold {
            left -= 1;
        }
        *o = if selected { <T as MaskElem>::ZERO } else { kept(i) };
    }
    left
}

/// Whether the fast path applies to scores `t` with default mask `default`.
pub(crate) fn fast_path_applies(t: &Tensor, default: &Tensor) -> bool {
    t.device() == Device::Cpu
        && default.device() == Device::Cpu
        && matches!(t.kind(), Kind::Float | Kind::Double)
        && matches!(
            default.kind(),
            Kind::Float | Kind::Double | Kind::Int64 | Kind::Int | Kind::Uint8
        )
        && t.numel() >= FAST_PATH_MIN_NUMEL
}

/// The mask that zeroes the `k` entries of `scores` selected by `order` on top of `default`
/// (same shape; the result has `default`'s kind), or `None` when the fast path does not apply.
pub(crate) fn prune_mask(
    scores: &Tensor,
    k: i64,
    order: Order,
    default: &Tensor,
) -> Result<Option<Tensor>> {
    if !fast_path_applies(scores, default) || k <= 0 {
        return Ok(None);
    }
    let scores = scores.f_contiguous()?;
    let default = default.f_contiguous()?;
    let mut out = Tensor::f_empty(default.size(), (default.kind(), Device::Cpu))?;
    let done = match scores.kind() {
        Kind::Float => prune_mask_typed::<f32>(&scores, k as u64, order, &default, &mut out)?,
        _ => prune_mask_typed::<f64>(&scores, k as u64, order, &default, &mut out)?,
    };
    Ok(done.then_some(out))
}

fn prune_mask_typed<F: FloatKey>(
    scores: &Tensor,
    k: u64,
    order: Order,
    default: &Tensor,
    out: &mut Tensor,
) -> Result<bool> {
    let cut = with_slice::<F, _>(scores, |values| {
        let src = Source::<F, f32> { values, available: None, order };
        radix_select::<F::K>(
            |_| Ok(k),
            |prefix, shift| {
                let mut hist = vec![0u64; BUCKETS];
                histogram(&src, prefix, shift, &mut hist);
                Ok(hist)
            },
        )
    });
    let cut = match cut {
        Some(Ok(Some(cut))) => cut,
        Some(Err(e)) => return Err(e),
        _ => return Ok(false),
    };
    Ok(match default.kind() {
        Kind::Float => write_typed::<F, f32>(scores, order, cut, default, out),
        Kind::Double => write_typed::<F, f64>(scores, order, cut, default, out),
        Kind::Int64 => write_typed::<F, i64>(scores, order, cut, default, out),
        Kind::Int => write_typed::<F, i32>(scores, order, cut, default, out),
        Kind::Uint8 => write_typed::<F, u8>(scores, order, cut, default, out),
        _ => false,
    })
}

fn write_typed<F: FloatKey, T: MaskElem>(
    scores: &Tensor,
    order: Order,
    cut: Cut<F::K>,
    default: &Tensor,
    out: &mut Tensor,
) -> bool {
    with_slice::<F, _>(scores, |values| {
        let src = Source::<F, f32> { values, available: None, order };
        with_slice::<T, _>(default, |d| {
            with_slice_mut::<T, _>(out, |o| write_mask(&src, cut, cut.ties, Some(d), o))
        })
    })
    .flatten()
    .flatten()
    .is_some()
}

/// One tensor of a global selection.
pub(crate) struct GlobalPart {
    /// The scores (CPU, `f32`), any shape.
    pub(crate) scores: Tensor,
    /// The current mask (CPU, `f32`, same shape): only entries where it is exactly 1 compete.
    /// `None` means all entries (an unpruned parameter, mask of ones).
    pub(crate) mask: Option<Tensor>,
}

/// Whether [`select_global_smallest`] applies to these parts.
pub(crate) fn global_fast_path_applies(parts: &[GlobalPart]) -> bool {
    let total: usize = parts.iter().map(|p| p.scores.numel()).sum();
    let cpu_f32 = |t: &Tensor| t.device() == Device::Cpu && t.kind() == Kind::Float;
    total >= FAST_PATH_MIN_NUMEL
        && parts.iter().all(|p| cpu_f32(&p.scores) && p.mask.as_ref().is_none_or(cpu_f32))
}

/// PyTorch's container step for magnitude pruning (`amount` of the entries of `t` whose `mask`
/// is exactly 1, smallest `|t|` first), computed in place: the new mask in `t`'s kind, or
/// `None` when the fast path does not apply (CPU `f32` scores and mask, large enough).
pub(crate) fn masked_smallest(t: &Tensor, mask: &Tensor, amount: Amount) -> Result<Option<Tensor>> {
    let parts = [GlobalPart { scores: t.shallow_clone(), mask: Some(mask.shallow_clone()) }];
    if !global_fast_path_applies(&parts) {
        return Ok(None);
    }
    Ok(select_global_smallest(&parts, amount)?.pop())
}

/// PyTorch's global L1 step without the concatenation: selects the `k` available entries of
/// smallest magnitude across all parts (ties: earliest in the concatenated order first) and
/// returns, per part, its mask in `f32` with the selected entries zeroed (ones where the part
/// had no mask). Each pass reads the tensors in place; the extra memory is the output masks.
pub(crate) fn select_global_smallest(parts: &[GlobalPart], amount: Amount) -> Result<Vec<Tensor>> {
    let parts: Vec<GlobalPart> = parts
        .iter()
        .map(|p| {
            Ok(GlobalPart {
                scores: p.scores.f_contiguous()?,
                mask: p.mask.as_ref().map(Tensor::f_contiguous).transpose()?,
            })
        })
        .collect::<Result<_>>()?;
    // Runs `f` on the key source of part `i`.
    fn with_source<R>(part: &GlobalPart, f: impl FnOnce(&Source<'_, f32, f32>) -> R) -> Option<R> {
        with_slice::<f32, _>(&part.scores, |values| match &part.mask {
            Some(mask) => with_slice::<f32, _>(mask, |m| {
                f(&Source { values, available: Some(m), order: Order::SmallestMagnitude })
            }),
            None => Some(f(&Source { values, available: None, order: Order::SmallestMagnitude })),
        })
        .flatten()
    }
    let unreadable = || crate::PruneError::UnsupportedKind {
        parameter: "importance",
        kind: Kind::Float,
        expected: "a contiguous CPU f32 tensor",
    };
    // The amount is a fraction of the entries still available, counted by the first pass.
    let k_of = |available: u64| Ok(amount.count_for(available as i64)? as u64);
    let cut = radix_select::<u32>(k_of, |prefix, shift| {
        let mut hist = vec![0u64; BUCKETS];
        for part in &parts {
            with_source(part, |src| histogram(src, prefix, shift, &mut hist))
                .ok_or_else(unreadable)?;
        }
        Ok(hist)
    })?;
    let mut ties_left = cut.map_or(0, |c| c.ties);
    let mut out = Vec::with_capacity(parts.len());
    for part in &parts {
        let mut mask = Tensor::f_empty(part.scores.size(), (Kind::Float, Device::Cpu))?;
        with_source(part, |src| {
            with_slice_mut::<f32, _>(&mut mask, |o| match (cut, &part.mask) {
                (Some(cut), _) => {
                    let existing = src.available;
                    ties_left = write_mask(src, cut, ties_left, existing, o);
                }
                (None, Some(_)) => o.copy_from_slice(src.available.unwrap_or(&[])),
                (None, None) => o.fill(1.0),
            })
        })
        .flatten()
        .ok_or_else(unreadable)?;
        out.push(mask);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(values: &[f32]) -> Vec<u32> {
        values.iter().map(|x| x.key(Order::SmallestMagnitude)).collect()
    }

    /// The `k` smallest magnitudes by sorting (ties: lowest index first).
    fn brute_force(values: &[f32], k: usize) -> Vec<bool> {
        let keys = keys(values);
        let mut idx: Vec<usize> = (0..values.len()).collect();
        idx.sort_by(|&a, &b| keys[a].cmp(&keys[b]).then(a.cmp(&b)));
        let mut flags = vec![false; values.len()];
        for &i in &idx[..k] {
            flags[i] = true;
        }
        flags
    }

    fn select(values: &[f32], k: u64) -> Vec<bool> {
        let src = Source::<f32, f32> { values, available: None, order: Order::SmallestMagnitude };
        let cut = radix_select::<u32>(
            |_| Ok(k),
            |prefix, shift| {
                let mut hist = vec![0u64; BUCKETS];
                histogram(&src, prefix, shift, &mut hist);
                Ok(hist)
            },
        )
        .unwrap()
        .unwrap();
        let mut out = vec![0f32; values.len()];
        write_mask::<f32, f32, f32>(&src, cut, cut.ties, None, &mut out);
        out.iter().map(|&m| m == 0.0).collect()
    }

    #[test]
    fn radix_select_matches_sorting_with_ties_lowest_index_first() {
        let values: Vec<f32> =
            (0..5000).map(|i| (((i * 7919) % 613) as f32 - 300.0) * 0.25).collect();
        for k in [1u64, 2, 17, 613, 2500, 4999, 5000] {
            assert_eq!(select(&values, k), brute_force(&values, k as usize), "k = {k}");
        }
    }

    #[test]
    fn nan_ranks_as_largest_magnitude_and_negative_zero_as_zero() {
        let values = [f32::NAN, 1.0, f32::INFINITY, -2.0, -0.0];
        assert_eq!(select(&values, 3), vec![false, true, false, true, true]);
        assert_eq!(select(&values, 4), vec![false, true, true, true, true]);
    }

    #[test]
    fn largest_value_order_inverts() {
        let values = [0.5f32, 0.25, 0.75, 0.0];
        let src =
            Source::<f32, f32> { values: &values, available: None, order: Order::LargestValue };
        let cut = radix_select::<u32>(
            |_| Ok(2),
            |prefix, shift| {
                let mut hist = vec![0u64; BUCKETS];
                histogram(&src, prefix, shift, &mut hist);
                Ok(hist)
            },
        )
        .unwrap()
        .unwrap();
        let mut out = [1f32; 4];
        write_mask::<f32, f32, f32>(&src, cut, cut.ties, None, &mut out);
        assert_eq!(out, [0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn global_selection_spans_parts_in_order_and_skips_unavailable() {
        let a = Tensor::from_slice(&[5.0f32, 1.0, 3.0, 3.0]);
        let b = Tensor::from_slice(&[3.0f32, 0.0, 9.0, 0.5]);
        let b_mask = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 0.0]);
        let parts =
            [GlobalPart { scores: a, mask: None }, GlobalPart { scores: b, mask: Some(b_mask) }];
        let masks = select_global_smallest(&parts, Amount::Count(4)).unwrap();
        assert_eq!(Vec::<f32>::try_from(&masks[0]).unwrap(), vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(Vec::<f32>::try_from(&masks[1]).unwrap(), vec![1.0, 0.0, 1.0, 0.0]);
    }
}
