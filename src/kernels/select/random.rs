//! Hashed random selection for large CPU tensors, the opt-in of
//! [`RandomUnstructured::with_hashed_draws`](crate::RandomUnstructured::with_hashed_draws):
//! `k` entries chosen uniformly at random without drawing a random number per entry from
//! libtorch. By default `RandomUnstructured` draws PyTorch's `rand_like` and selects with
//! [`super::prune_mask`] instead, which gives PyTorch's seeded masks.
//!
//! libtorch's CPU `rand_like`, which PyTorch's `RandomUnstructured` calls, fills the tensor on
//! one thread under the generator's lock: about 7 ns an entry on the 2-core CI machine, several
//! times the cost of everything else in a pruning step. Here each entry gets a 32-bit key from
//! a counter-based hash of its index and of three 32-bit seeds drawn from libtorch's CPU
//! generator (so `tch::manual_seed` makes the masks reproducible), and the `k` entries with the
//! smallest keys are pruned:
//!
//! * For fixed seeds the key function is a bijection of 32-bit integers (two rounds of an
//!   invertible integer mixer, with seeds injected between them), so the keys of a tensor of at
//!   most 2^32 entries are distinct: there are no ties and exactly `k` entries are selected.
//! * The keys are computed, never stored. One pass counts the keys below a window around the
//!   expected threshold (`k / n` of the key range) and collects the few keys inside it; the
//!   exact threshold is selected among those (a wider window is tried if the first misses);
//!   a second pass writes the mask. Both passes are arithmetic on indices that vectorises; the
//!   only memory traffic is the mask written (and the default mask read, when there is one).
//!
//! The masks are therefore **not** the ones PyTorch draws after the same `torch.manual_seed`:
//! they are equally uniform (every entry pruned with probability `k / n`, checked in the
//! tests), reproducible, and exact in count. Tensors below [`RANDOM_FAST_PATH_MIN_NUMEL`]
//! entries and other devices than the CPU keep PyTorch's draws even with the opt-in.

use tch::{Device, Kind, Tensor};

use super::keys::MaskElem;
use super::MaskDefault;
use crate::error::Result;
use crate::kernels::{vectorized, with_slice, with_slice_mut};

/// With hashed draws, tensors with at least this many entries (on the CPU, with a mask kind the
/// kernels write) take the hashed-key selection; smaller ones draw with libtorch's `rand_like`
/// exactly as PyTorch does. A tuning threshold, not API.
pub(crate) const RANDOM_FAST_PATH_MIN_NUMEL: usize = 1 << 15;

/// Entries per step of a pass (the step loop has a fixed trip count and vectorises).
const STEP: usize = 64;

/// The three seeds of the key function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seeds([u32; 3]);

/// An invertible 32-bit mixer (Wellons' `lowbias32`: xor-shifts and odd multipliers, each a
/// bijection).
#[inline(always)]
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

impl Seeds {
    /// Draws the seeds from libtorch's CPU generator (3 draws, whatever the tensor's size).
    fn draw() -> Result<Self> {
        let drawn = Tensor::f_randint(1i64 << 32, [3], (Kind::Int64, Device::Cpu))?;
        let v = Vec::<i64>::try_from(&drawn)?;
        let seed = |i: usize| v.get(i).copied().unwrap_or(0) as u32;
        Ok(Seeds([seed(0), seed(1), seed(2)]))
    }

    /// The key of entry `i`: a bijection of `i` for fixed seeds.
    #[inline(always)]
    fn key(self, i: u32) -> u32 {
        let [a, b, c] = self.0;
        mix(mix(i.wrapping_add(a)) ^ b).wrapping_add(c)
    }
}

/// Whether the hashed selection applies to `numel` entries with mask `default`.
pub(crate) fn applies(numel: usize, default: MaskDefault<'_>) -> bool {
    let (kind, device) = default.kind_and_device();
    device == Device::Cpu
        && matches!(kind, Kind::Float | Kind::Double | Kind::Int64 | Kind::Int | Kind::Uint8)
        && (RANDOM_FAST_PATH_MIN_NUMEL..=u32::MAX as usize).contains(&numel)
}

/// The mask of `shape` that zeroes `k` entries chosen uniformly at random on top of `default`
/// (the result has the default's kind), or `None` when the hashed selection does not apply.
/// Draws three numbers from libtorch's CPU generator when it applies, none otherwise.
pub(crate) fn random_mask(
    shape: &[i64],
    k: i64,
    default: MaskDefault<'_>,
) -> Result<Option<Tensor>> {
    let numel: i64 = shape.iter().product();
    if k <= 0 || !applies(numel as usize, default) {
        return Ok(None);
    }
    let seeds = Seeds::draw()?;
    let (kind, _) = default.kind_and_device();
    let default = match default {
        MaskDefault::Tensor(t) => Some(t.f_contiguous()?),
        MaskDefault::Ones(..) => None,
    };
    let cut = threshold(seeds, numel as u32, k as u32);
    let mut out = Tensor::f_empty(shape, (kind, Device::Cpu))?;
    let default = default.as_ref();
    let written = match kind {
        Kind::Float => write::<f32>(seeds, cut, default, &mut out),
        Kind::Double => write::<f64>(seeds, cut, default, &mut out),
        Kind::Int64 => write::<i64>(seeds, cut, default, &mut out),
        Kind::Int => write::<i32>(seeds, cut, default, &mut out),
        _ => write::<u8>(seeds, cut, default, &mut out),
    };
    Ok(written.then_some(out))
}

/// The `k`-th smallest key of entries `0..n` (`1 <= k <= n`): the entries with keys up to it
/// are exactly the `k` selected.
fn threshold(seeds: Seeds, n: u32, k: u32) -> u32 {
    // Keys behave like uniform draws: the number below `t` is about `n * t / 2^32`, with a
    // standard deviation of at most `sqrt(n) / 2`. The window starts 8 deviations wide each
    // side and widens until it holds the threshold (in the end it spans every key).
    let sd = (f64::from(n) * 0.25).sqrt();
    let mut half = 8.0 * sd + 64.0;
    loop {
        let scale = (1u64 << 32) as f64 / f64::from(n);
        let lo = ((f64::from(k) - half) * scale).max(0.0) as u64;
        let hi = ((f64::from(k) + half) * scale).min(u32::MAX as f64) as u64;
        let (lo, hi) = (lo as u32, hi as u32);
        let (below, mut inside) = vectorized(
            #[inline(always)]
            || window_pass(seeds, n, lo, hi),
        );
        if below < k && u64::from(k) <= u64::from(below) + inside.len() as u64 {
            let m = (k - below - 1) as usize;
            return *inside.select_nth_unstable(m).1;
        }
        // Cannot happen once the window spans every key; `n <= 2^32` keeps that finite.
        half *= 4.0;
    }
}

/// How many keys of entries `0..n` lie below `lo`, and the keys in `[lo, hi]`.
#[inline(always)]
fn window_pass(seeds: Seeds, n: u32, lo: u32, hi: u32) -> (u32, Vec<u32>) {
    let width = hi.wrapping_sub(lo);
    let mut below = 0u32;
    let mut inside = Vec::new();
    let full = n / STEP as u32 * STEP as u32;
    let mut keys = [0u32; STEP];
    // Whole steps: fixed-size loops over an array of keys, which vectorise.
    for base in (0..full).step_by(STEP) {
        let mut step_below = 0u32;
        let mut hits = 0u32;
        for (j, key) in keys.iter_mut().enumerate() {
            *key = seeds.key(base + j as u32);
            step_below += u32::from(*key < lo);
            hits += u32::from(key.wrapping_sub(lo) <= width);
        }
        below += step_below;
        if hits > 0 {
            inside.extend(keys.iter().filter(|&&key| key.wrapping_sub(lo) <= width));
        }
    }
    for i in full..n {
        let key = seeds.key(i);
        below += u32::from(key < lo);
        if key.wrapping_sub(lo) <= width {
            inside.push(key);
        }
    }
    (below, inside)
}

/// Writes `out[i] = 0` where `key(i) <= cut`, else the default (1 without one); `false` when
/// `out` or the default cannot be viewed as `T`s.
fn write<T: MaskElem>(seeds: Seeds, cut: u32, default: Option<&Tensor>, out: &mut Tensor) -> bool {
    with_slice_mut::<T, _>(out, |o| match default {
        Some(d) => with_slice::<T, _>(d, |d| {
            vectorized(
                #[inline(always)]
                || fill(seeds, cut, Some(d), o),
            )
        })
        .is_some(),
        None => {
            vectorized(
                #[inline(always)]
                || fill(seeds, cut, None, o),
            );
            true
        }
    })
    .unwrap_or(false)
}

/// The loop of [`write()`], on slices.
#[inline(always)]
fn fill<T: MaskElem>(seeds: Seeds, cut: u32, default: Option<&[T]>, out: &mut [T]) {
    let mut pruned = [false; STEP];
    for (s, chunk) in out.chunks_mut(STEP).enumerate() {
        let base = (s * STEP) as u32;
        let pruned = &mut pruned[..chunk.len()];
        for (j, p) in pruned.iter_mut().enumerate() {
            *p = seeds.key(base + j as u32) <= cut;
        }
        match default {
            Some(d) => {
                let d = &d[s * STEP..s * STEP + chunk.len()];
                for ((o, &d), &p) in chunk.iter_mut().zip(d).zip(pruned.iter()) {
                    *o = d.unless(p);
                }
            }
            None => {
                for (o, &p) in chunk.iter_mut().zip(pruned.iter()) {
                    *o = T::UNPRUNED.unless(p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: Seeds = Seeds([0x1234_5678, 0x9abc_def0, 0x0f1e_2d3c]);

    /// The selected entries by sorting every key.
    fn brute_force(seeds: Seeds, n: u32, k: u32) -> Vec<bool> {
        let mut keys: Vec<(u32, u32)> = (0..n).map(|i| (seeds.key(i), i)).collect();
        keys.sort_unstable();
        let mut selected = vec![false; n as usize];
        for &(_, i) in &keys[..k as usize] {
            selected[i as usize] = true;
        }
        selected
    }

    #[test]
    fn keys_are_distinct() {
        let n = 1 << 20;
        let mut keys: Vec<u32> = (0..n).map(|i| SEEDS.key(i)).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), n as usize);
    }

    #[test]
    fn threshold_selects_exactly_the_k_smallest_keys() {
        for (n, k) in [(1000, 1), (1000, 999), (1000, 1000), (70_001, 21_000), (70_001, 3)] {
            let cut = threshold(SEEDS, n, k);
            let ours: Vec<bool> = (0..n).map(|i| SEEDS.key(i) <= cut).collect();
            assert_eq!(ours, brute_force(SEEDS, n, k), "n {n} k {k}");
        }
    }

    #[test]
    fn written_mask_zeroes_the_selected_entries_over_the_default() {
        let n = 40_000u32;
        let k = 12_345u32;
        let default = Tensor::ones([n as i64], (Kind::Int64, Device::Cpu));
        let _ = default.narrow(0, 0, 100).fill_(0);
        let mut out = vec![7i64; n as usize];
        let cut = threshold(SEEDS, n, k);
        let default_values = Vec::<i64>::try_from(&default).unwrap();
        fill::<i64>(SEEDS, cut, Some(&default_values), &mut out);
        let expected = brute_force(SEEDS, n, k);
        for (i, (&o, &selected)) in out.iter().zip(&expected).enumerate() {
            let want = if selected || i < 100 { 0 } else { 1 };
            assert_eq!(o, want, "entry {i}");
        }
    }

    /// Adjacent entries are pruned independently: the share of pruned pairs `(i, i + 1)` is
    /// `p^2` (within 5 standard deviations), and each bit of the index leaves the rate alone.
    #[test]
    fn selection_shows_no_index_structure() {
        let n = 1u32 << 20;
        let k = n / 4;
        let cut = threshold(SEEDS, n, k);
        let selected: Vec<bool> = (0..n).map(|i| SEEDS.key(i) <= cut).collect();
        let pairs = selected.windows(2).filter(|w| w[0] && w[1]).count() as f64;
        let expected = f64::from(n - 1) / 16.0;
        assert!((pairs - expected).abs() < 5.0 * (expected * (1.0 - 1.0 / 16.0)).sqrt());
        for bit in 0..20 {
            let with_bit = (0..n).filter(|&i| i >> bit & 1 == 1 && selected[i as usize]).count();
            let expected = f64::from(n / 2) / 4.0;
            let sd = (expected * 0.75).sqrt();
            assert!((with_bit as f64 - expected).abs() < 5.0 * sd, "bit {bit}: {with_bit}");
        }
    }
}
