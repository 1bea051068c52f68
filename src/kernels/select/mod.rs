//! Linear-time selection of the `k` smallest magnitudes (or `k` largest values) of tensors,
//! reading them in place ([`crate::kernels`]), never copying or concatenating them: the masks
//! of `topk`, which PyTorch uses, without `topk`'s sort of the `k` selected entries (many times
//! slower for large `k`).
//!
//! Non-negative IEEE floats order like their bit patterns read as unsigned integers, so with
//! the sign bit cleared, `|x|` becomes an integer key ([`keys`]). The `k`-th smallest key (the
//! threshold) is found by the same single pass that writes the mask ([`window`]):
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
//!    radix selection ([`radix`]): one histogram pass per 16-bit digit of the key, then a write
//!    pass. The sample only decides how fast the answer comes, never what it is.
//!
//! Everything runs on the calling thread. libtorch's OpenMP workers busy-wait for a few
//! milliseconds after each parallel libtorch operation (such as the `ones_like` and the product
//! around every pruning step), so threads spawned here compete with them for the cores: on the
//! 2-core CI machine a 2-thread histogram pass measured 1.2-4x *slower* than the same pass on
//! one thread.
//!
//! **Ties: `topk`'s choice, always.** Where every entry whose key equals the threshold is among
//! the `k` (the usual case: no ties, or ties below the threshold), the selected set is the only
//! one `topk` can return, and it is written here. Where tied entries straddle the threshold
//! (fewer than `k` keys below it, more than `k` up to it) only some of them are selected, and
//! which ones is the order libtorch's CPU `topk` leaves them in. That order is replayed
//! ([`replay`]): the competing entries, in the order PyTorch hands them to `topk` (the tensor,
//! the container's slice `t[mask == 1]`, or global pruning's concatenation), go through
//! libstdc++'s `nth_element` or heap selection exactly as libtorch runs them ([`stl`]), as
//! 8-byte (key, position) pairs, so masks equal PyTorch's bit for bit. This is common: after
//! prune, `remove`, prune, every zeroed entry ties at 0, and freshly initialised weights
//! (2^24 distinct uniform values) of a few million entries often hold two equal values at the
//! threshold. Such calls cost one selection pass plus the replay: linear time with a larger
//! constant (an introselect over the pairs), still faster than `topk` without its sort, which
//! PyTorch also pays. `-0.0` and `0.0` share a key; NaNs, whose keys differ by payload, are one
//! key to the replay, as to `topk`'s comparator. libtorch's `topk` itself ([`topk`]) runs only
//! where the fast path does not apply, or past `u32::MAX + 1` competing entries.
//!
//! The fast path runs on CPU tensors of kind `f32` or `f64` with at least
//! [`FAST_PATH_MIN_NUMEL`] entries whose mask is `f32`, `f64`, `i64`, `i32` or `u8`; anything
//! else uses libtorch's `topk` directly.

mod keys;
mod radix;
mod random;
mod replay;
mod sample;
mod signed;
mod signed_in_place;
mod stl;
#[cfg(test)]
mod tests;
mod topk;
mod window;

pub(crate) use random::random_mask;
pub(crate) use signed::zero_smallest_signed;
pub(crate) use signed_in_place::keep_all_but_smallest_into;
pub(crate) use topk::zero_by_topk;

use tch::{Device, Kind, Tensor};

use crate::amount::Amount;
use crate::error::Result;
use crate::kernels::{with_slice, with_slice_mut, with_slices, with_slices_mut};
use crate::tie_break::TieBreak;
use keys::{FloatKey, MaskElem};

/// Tensors with fewer entries than this are selected with libtorch's `topk`, like PyTorch;
/// larger CPU `f32` / `f64` tensors use the selection here. A tuning threshold, not API.
pub(crate) const FAST_PATH_MIN_NUMEL: usize = 1 << 15;

/// What to select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// The `k` entries of smallest absolute value (L1 pruning).
    SmallestMagnitude,
    /// The `k` largest values of a non-negative tensor (random draws in `[0, 1)`).
    LargestValue,
}

/// What a selection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The masks are written: the selected set is the one `topk` returns.
    Written,
    /// Entries tie at the threshold and only some of them are to be selected: `topk` must
    /// decide which (the outputs hold nothing useful).
    TiesStraddle,
}

/// Whether a cut at `threshold` that selects `needed` of the `equal` competing keys equal to
/// it, and `k` of the `available` competing entries in all, leaves tied entries on both sides
/// (`topk` compares NaNs as equal whatever their payloads, so a threshold among NaN keys
/// straddles unless every entry is selected).
fn straddles<F: FloatKey, const LARGEST: bool>(
    threshold: F::K,
    needed: u64,
    equal: u64,
    k: u64,
    available: u64,
) -> bool {
    needed < equal || (F::is_nan_key::<LARGEST>(threshold) && k < available)
}

/// What a cut does with the competing entries equal to its threshold.
enum TieAction {
    /// Key order decides: every one of them is selected (no straddle), or, under
    /// [`TieBreak::LowestIndex`], the cut lies among NaN keys of different payloads.
    ByKey,
    /// [`TieBreak::LowestIndex`] with a straddle: the first this many, in index order (part
    /// after part), are selected.
    LowestIndex(u64),
    /// Only `topk` (or its replay) may decide.
    Straddle,
}

/// The [`TieAction`] of a cut that selects `needed` of the `equal` competing keys equal to its
/// threshold, given whether it `straddles` ([`straddles`]) and the rule asked for.
fn tie_action(straddles: bool, needed: u64, equal: u64, ties: TieBreak) -> TieAction {
    match ties {
        _ if !straddles => TieAction::ByKey,
        TieBreak::LowestIndex if needed < equal => TieAction::LowestIndex(needed),
        TieBreak::LowestIndex => TieAction::ByKey,
        _ => TieAction::Straddle,
    }
}

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

/// Selects, across `parts` in order, the `k = k_of(available)` smallest keys among the
/// competing entries and writes each part's mask into the matching `outs` slice (selected
/// entries 0, the others what their [`Keep`] says), unless ties straddle the threshold.
fn select_into<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    parts: &[Part<'_, F, T>],
    outs: &mut [&mut [T]],
    k_of: impl Fn(u64) -> Result<u64>,
    ties: TieBreak,
) -> Result<Outcome> {
    if let Some(outcome) = window::select_windowed::<F, T, LARGEST>(parts, outs, &k_of, ties)? {
        return Ok(outcome);
    }
    let (k, cut) = radix::exact_cut::<F, T, LARGEST>(parts, &k_of)?;
    match tie_action(cut.straddles, cut.needed, cut.equal, ties) {
        TieAction::ByKey => {}
        TieAction::LowestIndex(needed) => {
            radix::write_lowest_index::<F, T, LARGEST>(parts, outs, cut.threshold, needed);
            return Ok(Outcome::Written);
        }
        TieAction::Straddle => return Ok(Outcome::TiesStraddle),
    }
    for (part, out) in parts.iter().zip(outs.iter_mut()) {
        if k == 0 {
            part.keep.write_unselected(out);
        } else {
            radix::write_exact::<F, T, LARGEST>(part, cut.threshold, out);
        }
    }
    Ok(Outcome::Written)
}

/// Whether libtorch's CPU `topk` runs libstdc++'s algorithms, which [`replay`] reproduces: its
/// Linux builds (the PyPI wheels, the libtorch archives) are compiled against libstdc++. Other
/// systems' builds use libc++ or Microsoft's library, whose `nth_element` leaves ties in
/// another order; there straddling ties go to libtorch's `topk` itself ([`topk`]).
const REPLAY_IS_LIBTORCHS: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

/// [`select_into`], with the tied entries that straddle the threshold decided as libtorch's CPU
/// `topk` decides them ([`replay`]): [`Outcome::TiesStraddle`] only past `u32` positions, or
/// where libtorch does not use libstdc++ ([`REPLAY_IS_LIBTORCHS`]).
fn select_exact<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    parts: &[Part<'_, F, T>],
    outs: &mut [&mut [T]],
    k_of: impl Fn(u64) -> Result<u64>,
    ties: TieBreak,
) -> Result<Outcome> {
    match select_into::<F, T, LARGEST>(parts, outs, &k_of, ties)? {
        Outcome::TiesStraddle if REPLAY_IS_LIBTORCHS => {
            replay::select_like_topk::<F, T, LARGEST>(parts, outs, k_of)
        }
        outcome => Ok(outcome),
    }
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
/// with straddling ties decided as libtorch's `topk` decides them ([`replay`]), or `None` when
/// the fast path does not apply: the caller then runs libtorch's `topk` on `scores`, as PyTorch.
pub(crate) fn prune_mask(
    scores: &Tensor,
    k: i64,
    order: Order,
    default: MaskDefault<'_>,
    ties: TieBreak,
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
            prune_mask_typed::<f32, false>(&scores, k, default, &mut out, ties)
        }
        (Kind::Float, Order::LargestValue) => {
            prune_mask_typed::<f32, true>(&scores, k, default, &mut out, ties)
        }
        (_, Order::SmallestMagnitude) => {
            prune_mask_typed::<f64, false>(&scores, k, default, &mut out, ties)
        }
        (_, Order::LargestValue) => {
            prune_mask_typed::<f64, true>(&scores, k, default, &mut out, ties)
        }
    };
    Ok(done?.then_some(out))
}

fn prune_mask_typed<F: FloatKey, const LARGEST: bool>(
    scores: &Tensor,
    k: u64,
    default: Option<&Tensor>,
    out: &mut Tensor,
    ties: TieBreak,
) -> Result<bool> {
    match out.kind() {
        Kind::Float => prune_mask_into::<F, f32, LARGEST>(scores, k, default, out, ties),
        Kind::Double => prune_mask_into::<F, f64, LARGEST>(scores, k, default, out, ties),
        Kind::Int64 => prune_mask_into::<F, i64, LARGEST>(scores, k, default, out, ties),
        Kind::Int => prune_mask_into::<F, i32, LARGEST>(scores, k, default, out, ties),
        Kind::Uint8 => prune_mask_into::<F, u8, LARGEST>(scores, k, default, out, ties),
        _ => Ok(false),
    }
}

fn prune_mask_into<F: FloatKey, T: MaskElem, const LARGEST: bool>(
    scores: &Tensor,
    k: u64,
    default: Option<&Tensor>,
    out: &mut Tensor,
    ties: TieBreak,
) -> Result<bool> {
    let run = |values: &[F], keep: Keep<'_, T>, out: &mut Tensor| {
        with_slice_mut::<T, _>(out, |o| {
            let parts = [Part { values, keep }];
            select_exact::<F, T, LARGEST>(&parts, &mut [o], |_| Ok(k), ties)
        })
    };
    let done = with_slice::<F, _>(scores, |values| match default {
        Some(default) => {
            with_slice::<T, _>(default, |d| run(values, Keep::All(Some(d)), out)).flatten()
        }
        None => run(values, Keep::All(None), out),
    });
    match done.flatten() {
        Some(result) => result.map(|outcome| outcome == Outcome::Written),
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
/// is exactly 1, smallest `|t|` first): the new mask in `t`'s kind, computed in place (straddling
/// ties decided as `topk` on the slice `t[mask == 1]` decides them), or `None` when
/// the fast path does not apply (CPU `f32` scores and mask, large enough).
pub(crate) fn masked_smallest(
    t: &Tensor,
    mask: &Tensor,
    amount: Amount,
    ties: TieBreak,
) -> Result<Option<Tensor>> {
    let parts = [GlobalPart { scores: t.shallow_clone(), mask: Some(mask.shallow_clone()) }];
    if !global_fast_path_applies(&parts) {
        return Ok(None);
    }
    Ok(select_global_smallest(&parts, amount, ties)?.pop())
}

/// PyTorch's global L1 step without the concatenation: selects the `k` available entries of
/// smallest magnitude across all parts and returns, per part, its mask in `f32` with the
/// selected entries zeroed (ones where the part had no mask). The tensors are read in place;
/// the extra memory is the output masks. Where tied scores straddle the threshold, the replay
/// of `topk` on PyTorch's concatenation decides ([`replay`]; past `u32::MAX + 1` entries,
/// libtorch's `topk` itself: [`topk::global_smallest_by_topk`]).
pub(crate) fn select_global_smallest(
    parts: &[GlobalPart],
    amount: Amount,
    ties: TieBreak,
) -> Result<Vec<Tensor>> {
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
                select_exact::<f32, f32, false>(&views, outs, k_of, ties)
            })
        })
    });
    let outcome = done.flatten().flatten().ok_or(crate::PruneError::UnsupportedKind {
        parameter: "importance",
        kind: Kind::Float,
        expected: "a contiguous CPU f32 tensor",
    })??;
    match outcome {
        Outcome::Written => Ok(masks),
        Outcome::TiesStraddle => topk::global_smallest_by_topk(&parts, amount),
    }
}
