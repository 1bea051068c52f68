//! Linear-time selection of the `k` smallest magnitudes (or `k` largest values) of tensors,
//! reading them in place ([`crate::kernels`]), never copying or concatenating them.
//!
//! Non-negative IEEE floats order like their bit patterns read as unsigned integers, so with
//! the sign bit cleared, `|x|` becomes an integer key (NaN keys lie above `inf`, so NaN ranks as
//! the largest magnitude, as with `topk`). The `k`-th smallest key (the threshold) is found by
//! the same single pass that writes the mask:
//!
//! 1. **Sample.** Keys are read from evenly spaced 64-byte blocks (a few thousand entries).
//!    Their quantiles give an estimate `mid` of the threshold and a window `[lo, hi]` around it
//!    that holds the threshold with overwhelming probability (four standard deviations of the
//!    sample quantile on each side: a few percent of the entries).
//! 2. **One pass** writes the mask cut provisionally at `mid` (keys below it selected), counts
//!    the keys below `lo`, and collects the keys inside the window, with their positions, in
//!    index order (found 64 entries at a time from flag bytes, so the loop stays vectorised),
//!    into a small histogram over the window.
//! 3. If the window does hold the threshold (fewer than `k` keys below `lo`, at least `k` up to
//!    `hi`), the histogram points at the few candidates that contain it, and only the
//!    candidates between `mid` and the threshold are rewritten. Otherwise (an unlucky or
//!    adversarial sample, or a window crowded by ties) the result is computed again exactly, by
//!    radix selection: one histogram pass per 16-bit digit of the key, then a write pass. The
//!    sample only decides how fast the answer comes, never what it is.
//!
//! Compared with the radix selection alone (two histogram passes and a write pass), this reads
//! the tensors once instead of three times. libtorch's `topk`, which PyTorch uses, sorts the
//! `k` selected entries and is many times slower for large `k`.
//!
//! Everything runs on the calling thread. libtorch's OpenMP workers busy-wait for a few
//! milliseconds after each parallel libtorch operation (such as the `ones_like` and the product
//! around every pruning step), so threads spawned here compete with them for the cores: on the
//! 2-core CI machine a 2-thread histogram pass measured 1.2-4x *slower* than the same pass on
//! one thread.
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

mod random;

pub(crate) use random::random_mask;
pub use random::RANDOM_FAST_PATH_MIN_NUMEL;

use tch::kind::Element;
use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::kernels::{vectorized, with_slice, with_slice_mut, with_slices, with_slices_mut};
use crate::method::Amount;

/// Tensors with fewer entries than this are selected with libtorch's `topk`, like PyTorch (ties
/// then resolve exactly as in PyTorch); larger CPU `f32` / `f64` tensors use the selection here.
pub const FAST_PATH_MIN_NUMEL: usize = 1 << 15;

/// Radix digit of the exact (fallback) selection: 16 bits, two passes for `f32` keys.
const DIGIT_BITS: u32 = 16;
const BUCKETS: usize = 1 << DIGIT_BITS;

/// Entries per sampled block: one 64-byte cache line of `f32`.
const SAMPLE_BLOCK: usize = 16;
/// At most this many entries are sampled (`2^14`: the window then holds about 3% of the
/// entries at a 40% threshold, and sampling costs a few percent of the pass).
const MAX_SAMPLE: usize = 1 << 14;
/// Half-width of the window, in standard deviations of the sample quantile.
const WINDOW_SIGMAS: f64 = 4.0;
/// Entries processed per step of the pass: the window hits of one step are found from a
/// 64-bit flag word.
const STEP: usize = 64;

/// What to select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// The `k` entries of smallest absolute value (L1 pruning).
    SmallestMagnitude,
    /// The `k` largest values of a non-negative tensor (random draws in `[0, 1)`).
    LargestValue,
}

/// An unsigned key that orders like the selected quantity (smaller key = selected first).
trait Key: Copy + Ord + Default + Send + Sync + 'static {
    const BITS: u32;
    const MAX: Self;
    fn digit(self, shift: u32) -> usize;
    fn high_bits(self, shift: u32) -> u64;
    fn from_bits(bits: u64) -> Self;
    fn wrapping_sub(self, other: Self) -> Self;
    fn to_u64(self) -> u64;
}

macro_rules! key {
    ($t:ty) => {
        impl Key for $t {
            const BITS: u32 = <$t>::BITS;
            const MAX: Self = <$t>::MAX;
            #[inline(always)]
            fn digit(self, shift: u32) -> usize {
                ((self >> shift) as usize) & (BUCKETS - 1)
            }
            #[inline(always)]
            fn high_bits(self, shift: u32) -> u64 {
                (self as u64).checked_shr(shift).unwrap_or(0)
            }
            fn from_bits(bits: u64) -> Self {
                bits as $t
            }
            #[inline(always)]
            fn wrapping_sub(self, other: Self) -> Self {
                <$t>::wrapping_sub(self, other)
            }
            #[inline(always)]
            fn to_u64(self) -> u64 {
                self as u64
            }
        }
    };
}
key!(u32);
key!(u64);

/// A float element whose bits give a key. `LARGEST` selects [`Order::LargestValue`]; it is a
/// const parameter so that every loop below is compiled once per order, with the key function
/// known inside it (a run-time `match` in the loop body blocks vectorisation).
trait FloatKey: Element + Copy + Send + Sync {
    type K: Key;
    fn key<const LARGEST: bool>(self) -> Self::K;
}

impl FloatKey for f32 {
    type K = u32;
    #[inline(always)]
    fn key<const LARGEST: bool>(self) -> u32 {
        let magnitude = self.to_bits() & 0x7FFF_FFFF;
        // Larger (non-negative) values must get smaller keys for `LargestValue`.
        if LARGEST {
            0x7FFF_FFFF - magnitude
        } else {
            magnitude
        }
    }
}

impl FloatKey for f64 {
    type K = u64;
    #[inline(always)]
    fn key<const LARGEST: bool>(self) -> u64 {
        let magnitude = self.to_bits() & 0x7FFF_FFFF_FFFF_FFFF;
        if LARGEST {
            0x7FFF_FFFF_FFFF_FFFF - magnitude
        } else {
            magnitude
        }
    }
}

/// A mask element: what the mask kernels can write.
trait MaskElem: Element + Copy + PartialEq + Send + Sync {
    /// The mask value of a pruned entry (0, all bits clear).
    const PRUNED: Self;
    /// The mask value of an unpruned entry (1): only such entries compete under [`Keep::Masked`].
    const UNPRUNED: Self;
    /// `PRUNED` when `pruned`, else `self`, as a bitwise AND rather than a branch or a select
    /// of a conditionally loaded value: that keeps the mask loops branch-free and vectorised.
    fn unless(self, pruned: bool) -> Self;
}

macro_rules! mask_elem {
    ($($t:ty => $zero:expr, $one:expr, $bits:ty);*) => {$(
        impl MaskElem for $t {
            const PRUNED: Self = $zero;
            const UNPRUNED: Self = $one;
            #[inline(always)]
            fn unless(self, pruned: bool) -> Self {
                // All ones when kept, all zeros (the bits of `PRUNED`) when pruned.
                let keep = <$bits>::from(!pruned).wrapping_neg();
                <$t>::from_bits_or_self(<$t>::to_bits_or_self(self) & keep)
            }
        }
    )*};
}

/// Bit views of the mask element types (identity for the integer ones), for [`MaskElem::unless`].
trait Bits: Sized {
    type B;
    fn to_bits_or_self(self) -> Self::B;
    fn from_bits_or_self(bits: Self::B) -> Self;
}

macro_rules! float_bits {
    ($($t:ty => $b:ty);*) => {$(
        impl Bits for $t {
            type B = $b;
            #[inline(always)]
            fn to_bits_or_self(self) -> $b {
                self.to_bits()
            }
            #[inline(always)]
            fn from_bits_or_self(bits: $b) -> Self {
                <$t>::from_bits(bits)
            }
        }
    )*};
}
float_bits!(f32 => u32; f64 => u64);

macro_rules! int_bits {
    ($($t:ty),*) => {$(
        impl Bits for $t {
            type B = $t;
            #[inline(always)]
            fn to_bits_or_self(self) -> $t {
                self
            }
            #[inline(always)]
            fn from_bits_or_self(bits: $t) -> Self {
                bits
            }
        }
    )*};
}
int_bits!(i64, i32, u8);

mask_elem!(f32 => 0.0, 1.0, u32; f64 => 0.0, 1.0, u64; i64 => 0, 1, i64; i32 => 0, 1, i32; u8 => 0, 1, u8);

/// Which entries of a part compete, and what its unselected entries keep.
#[derive(Clone, Copy)]
enum Keep<'a, T> {
    /// Every entry competes; unselected entries keep `default[i]` (1 when `None`).
    All(Option<&'a [T]>),
    /// Only entries whose mask is exactly 1 compete (PyTorch's container); unselected entries
    /// keep their mask value.
    Masked(&'a [T]),
}

impl<T: MaskElem> Keep<'_, T> {
    /// Writes every entry as unselected.
    fn write_unselected(self, out: &mut [T]) {
        match self {
            Keep::All(Some(d)) | Keep::Masked(d) => out.copy_from_slice(d),
            Keep::All(None) => out.fill(T::UNPRUNED),
        }
    }
}

/// One tensor of a selection: its values and how its entries compete.
struct Part<'a, F, T> {
    values: &'a [F],
    keep: Keep<'a, T>,
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

/// Selects, across `parts` in order, the `k = k_of(available)` smallest keys among the
/// competing entries and writes each part's mask into the matching `outs` slice (selected
/// entries 0, the others what their [`Keep`] says).
fn select_into<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    parts: &[Part<'_, F, T>],
    outs: &mut [&mut [T]],
    k_of: impl Fn(u64) -> Result<u64>,
) -> Result<()> {
    if let Some(done) = select_windowed::<F, T, LARGEST>(parts, outs, &k_of)? {
        return Ok(done);
    }
    let (k, cut) = exact_cut::<F, T, LARGEST>(parts, &k_of)?;
    let mut ties_left = cut.ties;
    for (part, out) in parts.iter().zip(outs.iter_mut()) {
        if k == 0 {
            part.keep.write_unselected(out);
        } else {
            ties_left = write_exact::<F, T, LARGEST>(part, cut, ties_left, out);
        }
    }
    Ok(())
}

/// Keys around the estimated threshold: `[lo, hi]` should hold the threshold, and `mid` (the
/// estimate itself) is where the pass cuts provisionally.
#[derive(Debug, Clone, Copy)]
struct Window<K> {
    lo: K,
    mid: K,
    hi: K,
}

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

    /// The `m`-th smallest candidate key (`1 <= m <= len`) and how many keys are below it.
    fn nth(&self, m: usize) -> (K, usize) {
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
        (nth, below + less)
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

/// The sampled pass (see the module documentation): `Ok(Some(()))` when it produced the
/// result, `Ok(None)` when the exact path must run (it rewrites the outputs).
fn select_windowed<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    parts: &[Part<'_, F, T>],
    outs: &mut [&mut [T]],
    k_of: &impl Fn(u64) -> Result<u64>,
) -> Result<Option<()>> {
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
        return Ok(Some(()));
    }
    let inside = cands.keys.len() as u64;
    if cands.overflow || counts.below >= k || k > counts.below + inside {
        return Ok(None);
    }
    // The threshold is the `m`-th smallest candidate key; the candidates below it, and the
    // first `m - less` equal to it, are selected.
    let (threshold, less) = cands.nth((k - counts.below) as usize);
    let mut ties_left = (k - counts.below) as usize - less;
    for (i, (part, out)) in parts.iter().zip(outs.iter_mut()).enumerate() {
        let range = cands.part_starts[i]..cands.part_starts[i + 1];
        let (positions, keys) = (&cands.positions[range.clone()], &cands.keys[range]);
        fix_up(part, out, positions, keys, window.mid, threshold, &mut ties_left);
    }
    Ok(Some(()))
}

/// Corrects the provisional cut at `mid` of one part's mask for the threshold: candidates
/// below it, and equal to it while `ties_left` lasts, are selected. Only candidates between
/// `mid` and the threshold (or equal to it) change; they are flagged 64 at a time in a
/// vectorisable loop and handled one by one.
fn fix_up<F: FloatKey, T: MaskElem>(
    part: &Part<'_, F, T>,
    out: &mut [T],
    positions: &[u32],
    keys: &[F::K],
    mid: F::K,
    threshold: F::K,
    ties_left: &mut usize,
) {
    // The positions to write, found first so that the writes (scattered, mostly cache
    // misses) run in a tight loop of independent stores that overlap one another.
    let mut select = Vec::new();
    let mut unselect = Vec::new();
    let mut flags = [0u8; STEP];
    for (positions, keys) in positions.chunks(STEP).zip(keys.chunks(STEP)) {
        flags.fill(0);
        for (f, &key) in flags.iter_mut().zip(keys) {
            *f = u8::from(((key < threshold) != (key < mid)) | (key == threshold));
        }
        for (w, word) in flags.chunks_exact(8).enumerate() {
            let mut bits = u64::from_le_bytes(word.try_into().unwrap_or_default());
            while bits != 0 {
                let j = w * 8 + (bits.trailing_zeros() / 8) as usize;
                bits &= bits - 1;
                let key = keys[j];
                let tie = key == threshold && *ties_left > 0;
                *ties_left -= usize::from(tie);
                let selected = key < threshold || tie;
                if selected != (key < mid) {
                    if selected { &mut select } else { &mut unselect }.push(positions[j]);
                }
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
}

/// Keys of the competing entries in evenly spaced blocks of [`SAMPLE_BLOCK`] entries across
/// the concatenated parts, and how many entries were looked at.
fn sample_keys<F: FloatKey, T: MaskElem, const LARGEST: bool>(
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
fn window<K: Key>(sample: &mut [K], rank: f64, fraction: f64) -> Option<(Window<K>, f64)> {
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

/// Exact selection by radix: the number of entries to select and where the cut lies.
fn exact_cut<F: FloatKey, T: MaskElem, const LARGEST: bool>(
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
    let none = Cut { threshold: F::K::default(), ties: 0, equal: 0 };
    if k == 0 {
        return Ok((0, none));
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
            let cut = Cut { threshold: F::K::from_bits(prefix), ties: k - below, equal };
            return Ok((k, cut));
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

/// Writes the mask of `part` for an exact cut; returns the ties still to take after it.
fn write_exact<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    part: &Part<'_, F, T>,
    cut: Cut<F::K>,
    ties_left: u64,
    out: &mut [T],
) -> u64 {
    let thr = cut.threshold;
    let (zero, one) = (T::PRUNED, T::UNPRUNED);
    if cut.equal == cut.ties {
        // Every threshold-equal key is selected, so order is irrelevant: one straight zip
        // per case, which the compiler vectorises.
        match part.keep {
            Keep::All(None) => {
                for (o, v) in out.iter_mut().zip(part.values) {
                    *o = if v.key::<LARGEST>() <= thr { zero } else { one };
                }
            }
            Keep::All(Some(d)) => {
                for ((o, v), &d) in out.iter_mut().zip(part.values).zip(d) {
                    *o = if v.key::<LARGEST>() <= thr { zero } else { d };
                }
            }
            Keep::Masked(m) => {
                for ((o, v), &m) in out.iter_mut().zip(part.values).zip(m) {
                    *o = if m == one && v.key::<LARGEST>() <= thr { zero } else { m };
                }
            }
        }
        return ties_left;
    }
    let mut left = ties_left;
    for (i, (o, v)) in out.iter_mut().zip(part.values).enumerate() {
        let (competes, kept) = match part.keep {
            Keep::All(d) => (true, d.map_or(one, |d| d[i])),
            Keep::Masked(m) => (m[i] == one, m[i]),
        };
        let key = v.key::<LARGEST>();
        let selected = competes && (key < thr || (key == thr && left > 0));
        if selected && key == thr {
            left -= 1;
        }
        *o = if selected { zero } else { kept };
    }
    left
}

/// The mask a selection starts from: a tensor, or ones (a parameter's first pruning: PyTorch's
/// `ones_like(param)`, never built here).
#[derive(Clone, Copy)]
pub(crate) enum MaskDefault<'a> {
    Tensor(&'a Tensor),
    /// Ones of this kind on this device.
    Ones(Kind, Device),
}

impl MaskDefault<'_> {
    fn kind_and_device(self) -> (Kind, Device) {
        match self {
            MaskDefault::Tensor(t) => (t.kind(), t.device()),
            MaskDefault::Ones(kind, device) => (kind, device),
        }
    }
}

/// Whether the fast path applies to scores `t` with the default mask `default`.
pub(crate) fn fast_path_applies(t: &Tensor, default: MaskDefault<'_>) -> bool {
    let (kind, device) = default.kind_and_device();
    t.device() == Device::Cpu
        && device == Device::Cpu
        && matches!(t.kind(), Kind::Float | Kind::Double)
        && matches!(kind, Kind::Float | Kind::Double | Kind::Int64 | Kind::Int | Kind::Uint8)
        && t.numel() >= FAST_PATH_MIN_NUMEL
}

/// The mask that zeroes the `k` entries of `scores` selected by `order` on top of `default`
/// (the result has `scores`' shape, which a default tensor has too, and the default's kind),
/// or `None` when the fast path does not apply.
pub(crate) fn prune_mask(
    scores: &Tensor,
    k: i64,
    order: Order,
    default: MaskDefault<'_>,
) -> Result<Option<Tensor>> {
    if !fast_path_applies(scores, default) || k <= 0 {
        return Ok(None);
    }
    let scores = scores.f_contiguous()?;
    let (kind, _) = default.kind_and_device();
    let default = match default {
        MaskDefault::Tensor(t) => Some(t.f_contiguous()?),
        MaskDefault::Ones(..) => None,
    };
    let mut out = Tensor::f_empty(scores.size(), (kind, Device::Cpu))?;
    let (k, default) = (k as u64, default.as_ref());
    let done = match (scores.kind(), order) {
        (Kind::Float, Order::SmallestMagnitude) => {
            prune_mask_typed::<f32, false>(&scores, k, default, &mut out)
        }
        (Kind::Float, Order::LargestValue) => {
            prune_mask_typed::<f32, true>(&scores, k, default, &mut out)
        }
        (_, Order::SmallestMagnitude) => {
            prune_mask_typed::<f64, false>(&scores, k, default, &mut out)
        }
        (_, Order::LargestValue) => prune_mask_typed::<f64, true>(&scores, k, default, &mut out),
    };
    Ok(done?.then_some(out))
}

fn prune_mask_typed<F: FloatKey, const LARGEST: bool>(
    scores: &Tensor,
    k: u64,
    default: Option<&Tensor>,
    out: &mut Tensor,
) -> Result<bool> {
    match out.kind() {
        Kind::Float => prune_mask_into::<F, f32, LARGEST>(scores, k, default, out),
        Kind::Double => prune_mask_into::<F, f64, LARGEST>(scores, k, default, out),
        Kind::Int64 => prune_mask_into::<F, i64, LARGEST>(scores, k, default, out),
        Kind::Int => prune_mask_into::<F, i32, LARGEST>(scores, k, default, out),
        Kind::Uint8 => prune_mask_into::<F, u8, LARGEST>(scores, k, default, out),
        _ => Ok(false),
    }
}

fn prune_mask_into<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    scores: &Tensor,
    k: u64,
    default: Option<&Tensor>,
    out: &mut Tensor,
) -> Result<bool> {
    let run = |values: &[F], keep: Keep<'_, T>, out: &mut Tensor| {
        with_slice_mut::<T, _>(out, |o| {
            let parts = [Part { values, keep }];
            select_into::<F, T, LARGEST>(&parts, &mut [o], |_| Ok(k))
        })
    };
    let done = with_slice::<F, _>(scores, |values| match default {
        Some(default) => {
            with_slice::<T, _>(default, |d| run(values, Keep::All(Some(d)), out)).flatten()
        }
        None => run(values, Keep::All(None), out),
    });
    match done.flatten() {
        Some(result) => result.map(|()| true),
        None => Ok(false),
    }
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
/// had no mask). The tensors are read in place; the extra memory is the output masks.
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
    let mut masks = parts
        .iter()
        .map(|p| Ok(Tensor::f_empty(p.scores.size(), (Kind::Float, Device::Cpu))?))
        .collect::<Result<Vec<Tensor>>>()?;
    let scores: Vec<&Tensor> = parts.iter().map(|p| &p.scores).collect();
    let existing: Vec<&Tensor> = parts.iter().filter_map(|p| p.mask.as_ref()).collect();
    let k_of = |available: u64| Ok(amount.count_for(available as i64)? as u64);
    let done = with_slices::<f32, _>(&scores, |values| {
        with_slices::<f32, _>(&existing, |existing| {
            with_slices_mut::<f32, _>(&mut masks, |outs| {
                let mut existing = existing.iter();
                let views: Vec<Part<'_, f32, f32>> = parts
                    .iter()
                    .zip(values)
                    .map(|(p, &values)| {
                        let keep = match p.mask {
                            Some(_) => {
                                existing.next().map_or(Keep::All(None), |&m| Keep::Masked(m))
                            }
                            None => Keep::All(None),
                        };
                        Part { values, keep }
                    })
                    .collect();
                select_into::<f32, f32, false>(&views, outs, k_of)
            })
        })
    });
    done.flatten().flatten().ok_or(crate::PruneError::UnsupportedKind {
        parameter: "importance",
        kind: Kind::Float,
        expected: "a contiguous CPU f32 tensor",
    })??;
    Ok(masks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(values: &[f32]) -> Vec<u32> {
        values.iter().map(|x| x.key::<false>()).collect()
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
        let mut out = vec![0f32; values.len()];
        let parts = [Part::<f32, f32> { values, keep: Keep::All(None) }];
        select_into::<f32, f32, false>(&parts, &mut [&mut out], |_| Ok(k)).unwrap();
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
        let mut out = [1f32; 4];
        let parts = [Part::<f32, f32> { values: &values, keep: Keep::All(None) }];
        select_into::<f32, f32, true>(&parts, &mut [&mut out], |_| Ok(2)).unwrap();
        assert_eq!(out, [0.0, 1.0, 0.0, 1.0]);
    }

    /// Deterministic pseudo-random values (a 64-bit LCG), roughly normal (sum of four
    /// uniforms), scaled like initialised weights.
    fn weights(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut uniform = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        (0..n).map(|_| ((0..4).map(|_| uniform()).sum::<f32>() - 2.0) * 0.05).collect()
    }

    /// The reference for a selection across `parts` (values, optional mask): the `k` smallest
    /// keys among the competing entries (mask exactly 1), ties lowest index first; unselected
    /// entries keep their mask value (1 without a mask).
    fn reference<const LARGEST: bool>(
        parts: &[(Vec<f32>, Option<Vec<f32>>)],
        k: usize,
    ) -> Vec<Vec<f32>> {
        let mut order: Vec<(u32, usize, usize)> = Vec::new();
        for (p, (values, mask)) in parts.iter().enumerate() {
            for (i, v) in values.iter().enumerate() {
                if mask.as_ref().is_none_or(|m| m[i] == 1.0) {
                    order.push((v.key::<LARGEST>(), p, i));
                }
            }
        }
        order.sort();
        let mut out: Vec<Vec<f32>> =
            parts.iter().map(|(v, m)| m.clone().unwrap_or_else(|| vec![1.0; v.len()])).collect();
        for &(_, p, i) in &order[..k] {
            out[p][i] = 0.0;
        }
        out
    }

    /// Runs the selection (windowed, with the exact fallback) and, separately, the exact
    /// path alone; both must equal the reference. Returns whether the windowed pass decided.
    fn check<const LARGEST: bool>(parts: &[(Vec<f32>, Option<Vec<f32>>)], k: usize) -> bool {
        let views: Vec<Part<'_, f32, f32>> = parts
            .iter()
            .map(|(values, mask)| Part {
                values,
                keep: mask.as_deref().map_or(Keep::All(None), Keep::Masked),
            })
            .collect();
        let expected = reference::<LARGEST>(parts, k);
        let mut got: Vec<Vec<f32>> = parts.iter().map(|(v, _)| vec![f32::NAN; v.len()]).collect();
        let k_of = |_| Ok(k as u64);
        let windowed = {
            let mut outs: Vec<&mut [f32]> = got.iter_mut().map(|o| &mut o[..]).collect();
            let windowed = select_windowed::<f32, f32, LARGEST>(&views, &mut outs, &k_of).unwrap();
            select_into::<f32, f32, LARGEST>(&views, &mut outs, k_of).unwrap();
            windowed
        };
        assert!(got == expected, "k = {k}, windowed = {windowed:?}");
        {
            let mut outs: Vec<&mut [f32]> = got.iter_mut().map(|o| &mut o[..]).collect();
            let (k, cut) = exact_cut::<f32, f32, LARGEST>(&views, &k_of).unwrap();
            let mut ties_left = cut.ties;
            for (view, out) in views.iter().zip(outs.iter_mut()) {
                if k == 0 {
                    view.keep.write_unselected(out);
                } else {
                    ties_left = write_exact::<f32, f32, LARGEST>(view, cut, ties_left, out);
                }
            }
        }
        assert!(got == expected, "exact path, k = {k}");
        windowed.is_some()
    }

    #[test]
    fn windowed_selection_equals_sorting_and_usually_decides_alone() {
        let n = 100_003;
        let values = weights(n, 1);
        let parts = [(values, None)];
        let mut decided = 0;
        for k in [1, 2, 10, 1000, n / 5, 2 * n / 5, n / 2, n - 1000, n - 1, n] {
            decided += usize::from(check::<false>(&parts, k));
        }
        // Every k but the extremes (where the window reaches past the sample) decides alone.
        assert!(decided >= 6, "{decided}");
    }

    #[test]
    fn windowed_selection_across_masked_parts() {
        let mut parts = Vec::new();
        for (p, n) in [50_000usize, 7, 30_001, 0, 4096].into_iter().enumerate() {
            let values = weights(n, p as u64 + 10);
            let mask = (p % 2 == 0).then(|| {
                // Mostly 1, some 0, a few 0.5 (which does not compete, and is kept as it is).
                weights(n, p as u64 + 100)
                    .iter()
                    .map(|&u| {
                        if u > 0.05 {
                            0.0
                        } else if u < -0.12 {
                            0.5
                        } else {
                            1.0
                        }
                    })
                    .collect()
            });
            parts.push((values, mask));
        }
        let available: usize = parts
            .iter()
            .map(|(v, m): &(Vec<f32>, Option<Vec<f32>>)| {
                m.as_ref().map_or(v.len(), |m| m.iter().filter(|&&x| x == 1.0).count())
            })
            .sum();
        for k in [0, 1, available / 10, available / 3, available - 1, available] {
            check::<false>(&parts, k);
            check::<true>(&parts, k);
        }
    }

    #[test]
    fn ties_and_misleading_samples_fall_back_to_the_exact_result() {
        let n = 70_000;
        // Five distinct magnitudes: the window is crowded with ties.
        let few: Vec<f32> = (0..n).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        // Periodic with the sampling stride: the sample sees one value only.
        let blocks = (n / 64).clamp(2048, MAX_SAMPLE).min(n).div_ceil(SAMPLE_BLOCK);
        let stride = n / blocks;
        let periodic: Vec<f32> = (0..n)
            .map(|i| if i % stride < SAMPLE_BLOCK { 1.0 } else { (i % 997) as f32 })
            .collect();
        // Sorted: blocks are far apart in value.
        let sorted: Vec<f32> = (0..n).map(|i| i as f32 * 1e-3).collect();
        for values in [few, periodic, sorted] {
            let parts = [(values, None)];
            for k in [1, n / 7, n / 2, n - 3] {
                check::<false>(&parts, k);
            }
        }
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
