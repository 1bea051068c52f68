//! Linear-time selection of the `k` smallest magnitudes (or `k` largest values) of a tensor, by
//! radix selection on the bit patterns of the values.
//!
//! Non-negative IEEE floats order like their bit patterns read as unsigned integers, so with
//! the sign bit cleared, `|x|` becomes an integer key (NaN keys lie above `inf`, so NaN ranks as
//! the largest magnitude, as with `topk`). The `k`-th smallest key is found with one histogram
//! pass per 16-bit digit (two for `f32`, four for `f64`), each split over the available cores;
//! then one more pass marks the entries to prune. libtorch's `topk`, which PyTorch uses, sorts
//! the `k` selected entries and is many times slower for large `k`.
//!
//! **Ties.** Exactly `k` entries are selected. Entries whose key equals the threshold are taken
//! in index order (lowest index first) until `k` is reached. Where all selected keys are
//! distinct from the unselected ones (no tie at the threshold), the selected set is the same
//! as `topk`'s, so masks equal PyTorch's; with ties at the threshold, `topk`'s choice is
//! unspecified (it changes with size and backend) and ours is the documented rule above.
//!
//! The fast path runs on contiguous-or-not CPU tensors of kind `f32` or `f64` with at least
//! [`FAST_PATH_MIN_NUMEL`] entries; smaller tensors, other kinds and other devices use libtorch's
//! `topk` (bit-exact with PyTorch, ties included).

use std::thread;

use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// Tensors with fewer entries than this are selected with libtorch's `topk`, like PyTorch (ties
/// then resolve exactly as in PyTorch); larger CPU `f32` / `f64` tensors use radix selection.
pub const FAST_PATH_MIN_NUMEL: usize = 1 << 15;

/// Below this many entries a pass runs on one thread (spawning costs more than it saves).
const PARALLEL_MIN_NUMEL: usize = 1 << 18;

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

/// An unsigned key type that orders like the selected quantity.
trait Key: Copy + Ord + Send + Sync + 'static {
    const BITS: u32;
    fn digit(self, shift: u32) -> usize;
    fn high_bits(self, shift: u32) -> u64;
}

impl Key for u32 {
    const BITS: u32 = 32;
    fn digit(self, shift: u32) -> usize {
        ((self >> shift) as usize) & (BUCKETS - 1)
    }
    fn high_bits(self, shift: u32) -> u64 {
        u64::from(self).checked_shr(shift).unwrap_or(0)
    }
}

impl Key for u64 {
    const BITS: u32 = 64;
    fn digit(self, shift: u32) -> usize {
        ((self >> shift) as usize) & (BUCKETS - 1)
    }
    fn high_bits(self, shift: u32) -> u64 {
        self.checked_shr(shift).unwrap_or(0)
    }
}

/// Where the selection cuts: every key below `threshold`, plus the first `ties` keys equal to
/// it (in index order), are selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut<K> {
    threshold: K,
    ties: u64,
    /// How many keys equal the threshold in all (when equal to `ties`, order does not matter).
    equal: u64,
}

/// Whether the fast path applies to `t`.
pub(crate) fn fast_path_applies(t: &Tensor) -> bool {
    t.device() == Device::Cpu
        && matches!(t.kind(), Kind::Float | Kind::Double)
        && t.numel() >= FAST_PATH_MIN_NUMEL
}

/// Selects `k` entries of `t` (any shape) and returns a bool tensor of `t`'s shape that is true
/// on them, or `None` when the fast path does not apply (see [`fast_path_applies`]).
pub(crate) fn select(t: &Tensor, k: i64, order: Order) -> Result<Option<Tensor>> {
    if !fast_path_applies(t) || k <= 0 {
        return Ok(None);
    }
    let k = k as u64;
    let flags = match t.kind() {
        Kind::Float => {
            let keys = keys_f32(t, order)?;
            let cut = radix_select_resident(&[&keys], k)?;
            mark(&keys, cut, cut.ties).0
        }
        _ => {
            let keys = keys_f64(t, order)?;
            let cut = radix_select_resident(&[&keys], k)?;
            mark(&keys, cut, cut.ties).0
        }
    };
    Ok(Some(Tensor::f_from_slice(&flags)?.f_reshape(t.size().as_slice())?))
}

/// One tensor of a global selection.
pub(crate) struct GlobalPart {
    /// The scores (CPU, `f32`), any shape.
    pub(crate) scores: Tensor,
    /// Which entries may be selected (bool, same shape); `None` means all.
    pub(crate) available: Option<Tensor>,
}

/// Whether [`select_global_smallest`] applies to these parts.
pub(crate) fn global_fast_path_applies(parts: &[GlobalPart]) -> bool {
    let total: usize = parts.iter().map(|p| p.scores.numel()).sum();
    total >= FAST_PATH_MIN_NUMEL
        && parts.iter().all(|p| p.scores.device() == Device::Cpu && p.scores.kind() == Kind::Float)
}

/// Selects the `k` available entries of smallest magnitude across all parts, as if they were
/// concatenated (ties: lowest position in that order first), without concatenating them: each
/// part's keys are recomputed per pass, so the extra memory is one part's keys at a time.
/// Returns one bool tensor per part, true on the selected entries.
pub(crate) fn select_global_smallest(parts: &[GlobalPart], k: i64) -> Result<Vec<Tensor>> {
    let keys_of = |i: usize| -> Result<Vec<u32>> {
        let mut keys = keys_f32(&parts[i].scores, Order::SmallestMagnitude)?;
        if let Some(available) = &parts[i].available {
            let mut flags = vec![false; available.numel()];
            available.f_contiguous()?.f_copy_data(&mut flags, available.numel())?;
            // Above every real key (NaN included), so never selected while k <= available.
            for (key, ok) in keys.iter_mut().zip(flags) {
                if !ok {
                    *key = u32::MAX;
                }
            }
        }
        Ok(keys)
    };
    if k <= 0 {
        return parts.iter().map(|p| Ok(p.scores.f_zeros_like()?.f_to_kind(Kind::Bool)?)).collect();
    }
    let visit = |i: usize, f: &mut dyn FnMut(&[u32])| -> Result<()> {
        f(&keys_of(i)?);
        Ok(())
    };
    let cut = radix_select(parts.len(), &visit, k as u64)?;
    let mut ties_left = cut.ties;
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let (flags, left) = mark(&keys_of(i)?, cut, ties_left);
        ties_left = left;
        out.push(Tensor::f_from_slice(&flags)?.f_reshape(part.scores.size().as_slice())?);
    }
    Ok(out)
}

fn keys_f32(t: &Tensor, order: Order) -> Result<Vec<u32>> {
    let flat = t.f_contiguous()?;
    let mut values = vec![0f32; t.numel()];
    flat.f_copy_data(&mut values, t.numel())?;
    Ok(map_chunks(&values, |x| match order {
        Order::SmallestMagnitude => x.to_bits() & 0x7FFF_FFFF,
        // Larger non-negative values must get smaller keys.
        Order::LargestValue => !(x.to_bits() & 0x7FFF_FFFF),
    }))
}

fn keys_f64(t: &Tensor, order: Order) -> Result<Vec<u64>> {
    let flat = t.f_contiguous()?;
    let mut values = vec![0f64; t.numel()];
    flat.f_copy_data(&mut values, t.numel())?;
    Ok(map_chunks(&values, |x| match order {
        Order::SmallestMagnitude => x.to_bits() & 0x7FFF_FFFF_FFFF_FFFF,
        Order::LargestValue => !(x.to_bits() & 0x7FFF_FFFF_FFFF_FFFF),
    }))
}

/// The number of worker threads for a pass over `n` entries.
fn workers(n: usize) -> usize {
    if n < PARALLEL_MIN_NUMEL {
        return 1;
    }
    thread::available_parallelism().map_or(1, |p| p.get()).min(16)
}

/// `values.iter().map(f).collect()`, split over the workers.
fn map_chunks<T: Copy + Sync, K: Copy + Default + Send>(
    values: &[T],
    f: impl Fn(T) -> K + Sync,
) -> Vec<K> {
    let mut out = vec![K::default(); values.len()];
    let n = workers(values.len());
    let chunk = values.len().div_ceil(n).max(1);
    thread::scope(|s| {
        for (src, dst) in values.chunks(chunk).zip(out.chunks_mut(chunk)) {
            let f = &f;
            s.spawn(move || {
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = f(v);
                }
            });
        }
    });
    out
}

/// Calls `f` with the keys of part `i`; parts may be computed on demand (global selection
/// recomputes each tensor's keys per pass instead of holding all of them).
type VisitKeys<'a, K> = dyn Fn(usize, &mut dyn FnMut(&[K])) -> Result<()> + 'a;

/// Histogram of digit `shift` over the keys whose bits above `shift + DIGIT_BITS` equal
/// `prefix`.
fn histogram<K: Key>(
    parts: usize,
    visit: &VisitKeys<'_, K>,
    prefix: u64,
    shift: u32,
) -> Result<Vec<u64>> {
    let upper = shift + DIGIT_BITS;
    let count_chunk = |keys: &[K]| {
        let mut hist = vec![0u64; BUCKETS];
        for &key in keys {
            if key.high_bits(upper) == prefix {
                hist[key.digit(shift)] += 1;
            }
        }
        hist
    };
    let mut total = vec![0u64; BUCKETS];
    for part in 0..parts {
        visit(part, &mut |keys: &[K]| {
            let n = workers(keys.len());
            let chunk = keys.len().div_ceil(n).max(1);
            let partials: Vec<Vec<u64>> = thread::scope(|s| {
                let handles: Vec<_> =
                    keys.chunks(chunk).map(|c| s.spawn(move || count_chunk(c))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            });
            for hist in partials {
                for (t, h) in total.iter_mut().zip(hist) {
                    *t += h;
                }
            }
        })?;
    }
    Ok(total)
}

/// Finds the cut that selects the `k` smallest keys over all parts (`1 <= k <= total`).
fn radix_select<K: Key + TryFrom<u64>>(
    parts: usize,
    visit: &VisitKeys<'_, K>,
    k: u64,
) -> Result<Cut<K>> {
    let mut prefix = 0u64;
    let mut below = 0u64;
    let mut rank = k;
    let mut equal = 0u64;
    let mut shift = K::BITS;
    while shift > 0 {
        shift -= DIGIT_BITS;
        let hist = histogram(parts, visit, prefix, shift)?;
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
    }
    // `prefix` now holds every bit of the threshold key; it fits K by construction.
    let threshold = K::try_from(prefix).unwrap_or_else(|_| unreachable!("key has K::BITS bits"));
    Ok(Cut { threshold, ties: k - below, equal })
}

/// Selection over keys held in memory.
fn radix_select_resident<K: Key + TryFrom<u64>>(parts: &[&[K]], k: u64) -> Result<Cut<K>> {
    radix_select(
        parts.len(),
        &|i, f: &mut dyn FnMut(&[K])| {
            f(parts[i]);
            Ok(())
        },
        k,
    )
}

/// Marks the selected keys of one part. `ties_left` is how many threshold-equal keys are
/// still to be taken (the cut's `ties` for the first part of a global selection); returns the
/// flags and the count still to be taken after this part.
fn mark<K: Key>(keys: &[K], cut: Cut<K>, ties_left: u64) -> (Vec<bool>, u64) {
    if cut.equal == cut.ties {
        // Every threshold-equal key is selected, so order is irrelevant: mark in parallel.
        return (map_chunks(keys, |key| key <= cut.threshold), ties_left);
    }
    let mut left = ties_left;
    let flags = keys
        .iter()
        .map(|&key| {
            if key < cut.threshold {
                true
            } else if key == cut.threshold && left > 0 {
                left -= 1;
                true
            } else {
                false
            }
        })
        .collect();
    (flags, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_force(values: &[f32], k: usize) -> Vec<bool> {
        let mut idx: Vec<usize> = (0..values.len()).collect();
        idx.sort_by(|&a, &b| {
            let (ka, kb) = (values[a].to_bits() & 0x7FFF_FFFF, values[b].to_bits() & 0x7FFF_FFFF);
            ka.cmp(&kb).then(a.cmp(&b))
        });
        let mut flags = vec![false; values.len()];
        for &i in &idx[..k] {
            flags[i] = true;
        }
        flags
    }

    #[test]
    fn radix_select_matches_sorting_with_ties_lowest_index_first() {
        let values: Vec<f32> =
            (0..5000).map(|i| (((i * 7919) % 613) as f32 - 300.0) * 0.25).collect();
        let keys: Vec<u32> = values.iter().map(|x| x.to_bits() & 0x7FFF_FFFF).collect();
        for k in [1u64, 2, 17, 613, 2500, 4999, 5000] {
            let cut = radix_select_resident(&[&keys], k).unwrap();
            let (flags, _) = mark(&keys, cut, cut.ties);
            assert_eq!(flags, brute_force(&values, k as usize), "k = {k}");
        }
    }

    #[test]
    fn global_selection_spans_parts_in_order() {
        let a: Vec<u32> = vec![5, 1, 3, 3];
        let b: Vec<u32> = vec![3, 0, 9];
        let cut = radix_select_resident(&[&a, &b], 4).unwrap();
        assert_eq!((cut.threshold, cut.ties, cut.equal), (3, 2, 3));
        let (fa, left) = mark(&a, cut, cut.ties);
        let (fb, _) = mark(&b, cut, left);
        assert_eq!(fa, vec![false, true, true, true]);
        assert_eq!(fb, vec![false, true, false]);
    }

    #[test]
    fn nan_ranks_as_largest_magnitude() {
        let keys: Vec<u32> = [f32::NAN, 1.0, f32::INFINITY, -2.0]
            .iter()
            .map(|x| x.to_bits() & 0x7FFF_FFFF)
            .collect();
        let cut = radix_select_resident(&[&keys], 3).unwrap();
        assert_eq!(mark(&keys, cut, cut.ties).0, vec![false, true, true, true]);
    }
}
