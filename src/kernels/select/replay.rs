//! PyTorch's mask where tied entries straddle the threshold, computed here rather than by
//! libtorch: the competing entries, in the order PyTorch hands them to `topk` (the tensor, the
//! container's slice `t[mask == 1]`, or global pruning's concatenation), are packed as
//! (key, position) pairs and selected by libstdc++'s algorithms as libtorch's CPU kernel
//! (`topk_impl_loop`) runs them ([`super::stl`]): the heap selection of `std::partial_sort`
//! when `k * 64 <= n`, else `std::nth_element` at `k - 1`. The comparator sees only the key
//! (`topk` compares the values alone, NaNs equal to one another and above every number), so
//! the `k` entries left in front are `topk`'s, tied ones included.
//!
//! Against libtorch's `topk` this skips the copy or concatenation of the scores, their
//! magnitudes, and the 16-byte `(value, int64 index)` pairs (here 8 bytes for `f32`: a 32-bit
//! key and a 32-bit position); selections over more than `u32::MAX + 1` entries report
//! [`Outcome::TiesStraddle`] and go to libtorch.

use super::keys::{FloatKey, Key, MaskElem, Packable};
use super::radix::write_where;
use super::stl::{heap_offer, make_heap, nth_element};
use super::{Keep, Outcome, Part};
use crate::error::Result;
use crate::kernels::vectorized;

/// The key `topk`'s comparator sees: NaNs, whatever their payloads, on one key past every
/// number's (selected last for the smallest magnitudes, first for the largest values).
#[inline(always)]
fn canonical<F: FloatKey, const LARGEST: bool>(key: F::K) -> F::K {
    if F::is_nan_key::<LARGEST>(key) {
        if LARGEST {
            F::K::default()
        } else {
            F::K::MAX
        }
    } else {
        key
    }
}

/// Selects the `k = k_of(available)` competing entries across `parts` that libtorch's CPU
/// `topk` selects on PyTorch's input, and writes each part's mask into the matching `outs`
/// slice (selected entries 0, the others what their [`Keep`] says). Reports
/// [`Outcome::TiesStraddle`] only when the entries do not fit 32-bit positions or the memory
/// for the pairs cannot be had (then libtorch's `topk` runs instead).
pub(super) fn select_like_topk<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    parts: &[Part<'_, F, T>],
    outs: &mut [&mut [T]],
    k_of: impl Fn(u64) -> Result<u64>,
) -> Result<Outcome> {
    let total: usize = parts.iter().map(|p| p.values.len()).sum();
    if total > u32::MAX as usize + 1 {
        return Ok(Outcome::TiesStraddle);
    }
    let available: usize = parts
        .iter()
        .map(|p| match p.keep {
            Keep::All(_) => p.values.len(),
            Keep::Masked(mask) => mask.iter().filter(|&&m| m == T::UNPRUNED).count(),
        })
        .sum();
    let k = k_of(available as u64)? as usize;
    if k == 0 {
        for (part, out) in parts.iter().zip(outs.iter_mut()) {
            part.keep.write_unselected(out);
        }
        return Ok(Outcome::Written);
    }
    if k > available {
        // Not reachable through the crate's callers (their counts are validated against the
        // available entries); libtorch's `topk` reports it should it ever happen.
        return Ok(Outcome::TiesStraddle);
    }
    let less = |a: &<F::K as Packable>::Packed, b: &<F::K as Packable>::Packed| {
        F::K::key_of(a) < F::K::key_of(b)
    };
    // `topk_impl_loop`: `use_partial_sort = k * 64 <= n`.
    let (threshold, tied) = if (k as u64) * 64 <= available as u64 {
        // The heap of the first `k`, then every later entry offered in order: the other
        // `n - k` entries need not be stored.
        let mut heap = Vec::new();
        if heap.try_reserve_exact(k).is_err() {
            return Ok(Outcome::TiesStraddle);
        }
        for_each_competing::<F, T, LARGEST>(parts, 0, |x| {
            if heap.len() < k {
                heap.push(x);
                if heap.len() == k {
                    make_heap(&mut heap, less);
                }
            } else {
                heap_offer(&mut heap, x, less);
            }
        });
        // The heap's top is the largest key of the `k`.
        let threshold = F::K::key_of(&heap[0]);
        (threshold, positions_at::<F>(&heap, threshold))
    } else {
        let mut packed = Vec::new();
        if packed.try_reserve_exact(available).is_err() {
            // Out of memory for the pairs: libtorch's `topk` reports it (or copes) instead.
            return Ok(Outcome::TiesStraddle);
        }
        pack_competing::<F, T, LARGEST>(parts, &mut packed);
        nth_element(&mut packed, k - 1, less);
        // `nth_element` leaves the `k`-th smallest at `k - 1`, no larger key before it.
        let threshold = F::K::key_of(&packed[k - 1]);
        (threshold, positions_at::<F>(&packed[..k], threshold))
    };
    let mut offsets = Vec::with_capacity(parts.len());
    let mut offset = 0;
    for part in parts {
        offsets.push(offset);
        offset += part.values.len();
    }
    for (part, out) in parts.iter().zip(outs.iter_mut()) {
        write_below::<F, T, LARGEST>(part, threshold, out);
    }
    for position in tied {
        let part = offsets.partition_point(|&o| o <= position) - 1;
        outs[part][position - offsets[part]] = T::PRUNED;
    }
    Ok(Outcome::Written)
}

/// The positions of the entries of `front` whose key is `threshold`.
fn positions_at<F: FloatKey>(front: &[<F::K as Packable>::Packed], threshold: F::K) -> Vec<usize> {
    front
        .iter()
        .filter(|p| F::K::key_of(p) == threshold)
        .map(|p| F::K::position_of(p) as usize)
        .collect()
}

/// Appends to `packed` every competing entry of `parts`, in order, packed with its position
/// across all parts.
fn pack_competing<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    parts: &[Part<'_, F, T>],
    packed: &mut Vec<<F::K as Packable>::Packed>,
) {
    let mut offset = 0u32;
    for part in parts {
        match part.keep {
            // A sized iterator: `extend` writes without a capacity check per entry.
            Keep::All(_) => vectorized(
                #[inline(always)]
                || {
                    packed.extend(part.values.iter().enumerate().map(
                        #[inline(always)]
                        |(i, v)| {
                            let key = canonical::<F, LARGEST>(v.key::<LARGEST>());
                            key.pack(offset.wrapping_add(i as u32))
                        },
                    ))
                },
            ),
            Keep::Masked(_) => {
                for_each_competing::<F, T, LARGEST>(std::slice::from_ref(part), offset, |x| {
                    packed.push(x)
                });
            }
        }
        offset = offset.wrapping_add(part.values.len() as u32);
    }
}

/// Calls `f` with every competing entry of `parts`, in order, packed with its position across
/// all parts from `offset` on (PyTorch's `topk` input, each entry with where its mask is).
fn for_each_competing<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    parts: &[Part<'_, F, T>],
    mut offset: u32,
    mut f: impl FnMut(<F::K as Packable>::Packed),
) {
    for part in parts {
        let pack = |i: usize, v: &F| {
            canonical::<F, LARGEST>(v.key::<LARGEST>()).pack(offset.wrapping_add(i as u32))
        };
        match part.keep {
            Keep::All(_) => part.values.iter().enumerate().for_each(|(i, v)| f(pack(i, v))),
            Keep::Masked(mask) => {
                for (i, (v, &m)) in part.values.iter().zip(mask).enumerate() {
                    if m == T::UNPRUNED {
                        f(pack(i, v));
                    }
                }
            }
        }
        offset = offset.wrapping_add(part.values.len() as u32);
    }
}

/// Writes the mask of `part` with every competing entry whose key is below `threshold`
/// selected (the entries at the threshold are left to the caller).
fn write_below<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    part: &Part<'_, F, T>,
    threshold: F::K,
    out: &mut [T],
) {
    write_where(part, out, |v| canonical::<F, LARGEST>(v.key::<LARGEST>()) < threshold);
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor};

    use super::*;

    /// libtorch's own choice: `topk` of the values (magnitudes, or the values for `LARGEST`)
    /// of the competing entries, in PyTorch's order, with `sorted = true` as PyTorch calls it.
    fn by_topk(values: &Tensor, mask: Option<&Tensor>, k: i64, largest: bool) -> Tensor {
        let flat = values.reshape([-1]);
        let scores = if largest { flat.shallow_clone() } else { flat.abs() };
        let (slice, positions) = match mask {
            Some(m) => {
                let positions = m.reshape([-1]).eq(1).nonzero().reshape([-1]);
                (scores.index_select(0, &positions), Some(positions))
            }
            None => (scores, None),
        };
        let (_, idx) = slice.topk(k, 0, largest, true);
        let idx = positions.map_or(idx.shallow_clone(), |p| p.index_select(0, &idx));
        let base = mask.map_or_else(|| flat.ones_like(), |m| m.reshape([-1]));
        base.index_fill(0, &idx, 0.0)
    }

    fn replay(values: &Tensor, mask: Option<&Tensor>, k: u64, largest: bool) -> Tensor {
        if values.kind() == Kind::Double {
            replay_typed::<f64>(values, mask, k, largest)
        } else {
            replay_typed::<f32>(values, mask, k, largest)
        }
    }

    fn replay_typed<F>(values: &Tensor, mask: Option<&Tensor>, k: u64, largest: bool) -> Tensor
    where
        F: FloatKey + MaskElem,
        Vec<F>: for<'a> TryFrom<&'a Tensor, Error = tch::TchError>,
    {
        let v: Vec<F> = Vec::try_from(&values.reshape([-1])).unwrap();
        let m: Option<Vec<F>> = mask.map(|m| Vec::try_from(&m.reshape([-1])).unwrap());
        let parts =
            [Part { values: &v[..], keep: m.as_deref().map_or(Keep::All(None), Keep::Masked) }];
        let mut out = vec![F::UNPRUNED; v.len()];
        let outcome = if largest {
            select_like_topk::<F, F, true>(&parts, &mut [&mut out], |_| Ok(k))
        } else {
            select_like_topk::<F, F, false>(&parts, &mut [&mut out], |_| Ok(k))
        };
        assert_eq!(outcome.unwrap(), Outcome::Written);
        Tensor::from_slice(&out)
    }

    /// Values with ties everywhere: `levels` distinct magnitudes (both signs, and NaNs when
    /// asked), so that the `k`-th is tied and the ties straddle it.
    fn tied(n: i64, levels: i64, nans: bool, seed: i64) -> Tensor {
        tch::manual_seed(seed);
        let mut t = Tensor::randint(levels, [n], (Kind::Float, Device::Cpu))
            * (Tensor::randint(2, [n], (Kind::Float, Device::Cpu)) * 2 - 1);
        if nans {
            let holes = Tensor::rand([n], (Kind::Float, Device::Cpu)).lt(0.01);
            t = t.masked_fill(&holes, f64::NAN);
        }
        t
    }

    /// The replay gives `topk`'s masks bit for bit (where libtorch runs libstdc++'s algorithms), on both of libtorch's routes (heap
    /// selection for `k * 64 <= n`, `nth_element` above), for the smallest magnitudes and the
    /// largest values, with NaNs, and on a container's slice.
    #[test]
    #[cfg_attr(
        not(all(target_os = "linux", target_env = "gnu")),
        ignore = "libtorch not on libstdc++"
    )]
    fn replays_libtorch_topk() {
        for (n, levels) in [(5_000, 3), (40_000, 50), (70_001, 7_000), (150_000, 1 << 20)] {
            for seed in 0..2 {
                for nans in [false, true] {
                    let t = tied(n, levels, nans, seed);
                    let mask = tied(n, 2, false, seed + 100).abs().ne(0).to_kind(Kind::Float);
                    for k in [1, 7, n / 64, n / 64 + 1, n / 3, n / 2 + 3, n - 1] {
                        for largest in [false, true] {
                            let values = if largest { t.abs() } else { t.shallow_clone() };
                            let want = by_topk(&values, None, k, largest);
                            let got = replay(&values, None, k as u64, largest);
                            assert!(got.equal(&want), "n {n} levels {levels} k {k} {largest}");
                        }
                        let available = mask.sum(Kind::Int64).int64_value(&[]);
                        let k = k.min(available);
                        let want = by_topk(&t, Some(&mask), k, false);
                        let got = replay(&t, Some(&mask), k as u64, false);
                        assert!(got.equal(&want), "masked n {n} levels {levels} k {k}");
                        // `f64` keys (64-bit, packed with the position in 16 bytes).
                        let t64 = t.to_kind(Kind::Double);
                        let want = by_topk(&t64, Some(&mask.to_kind(Kind::Double)), k, false);
                        let got = replay(&t64, Some(&mask.to_kind(Kind::Double)), k as u64, false);
                        assert!(got.equal(&want), "f64 n {n} levels {levels} k {k}");
                    }
                }
            }
        }
    }
}
