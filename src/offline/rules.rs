//! The per-tensor pruning rules of a run, computed before anything is written (the threshold
//! passes), and how a rule zeroes the pruned entries of one window of data.

use std::collections::HashMap;

use super::dtype::{abs_f32, for_each_key, Float, KeySpace};
use super::error::{OfflineError, OfflineResult};
use super::header::TensorInfo;
use super::plan::{OfflineMethod, Scope, Target, WandaPattern};
use super::progress::Progress;
use super::stream::{random_key, tensor_seed, Files, MagnitudeKeys, RandomKeys};
use super::threshold::{cut_in_memory, radix_cut, smallest_in_group, Cut, CutState};
use super::wanda::read_scales;

/// How one target tensor is pruned.
#[derive(Debug, Clone)]
pub(crate) enum Rule {
    /// Entries below a magnitude cut; `global` cuts share one tie counter across tensors.
    Cut { cut: Option<Cut>, space: KeySpace, global: bool },
    /// Entries below a cut of hashed random keys.
    Random { cut: Option<Cut>, seed: u64 },
    /// The `count` smallest magnitudes of each row.
    Rows { count: usize, row: usize },
    /// The `drop` smallest magnitudes of each group of `m`.
    Nm { drop: usize, m: usize },
    /// Wanda: the `count` smallest scores of each row.
    WandaRows { scale: Vec<f32>, count: usize },
    /// Wanda: the `drop` smallest scores of each group of `m`.
    WandaNm { scale: Vec<f32>, drop: usize, m: usize },
}

impl Rule {
    /// Windows must hold whole units of this many elements.
    pub(crate) fn align(&self) -> usize {
        match self {
            Rule::Rows { row, .. } => *row,
            Rule::WandaRows { scale, .. } => scale.len(),
            Rule::Nm { m, .. } | Rule::WandaNm { m, .. } => *m,
            Rule::Cut { .. } | Rule::Random { .. } => 1,
        }
    }

    /// The state a pass starts this tensor with (per-tensor cuts start fresh; global cuts use
    /// the pass's shared state instead).
    pub(crate) fn fresh_state(&self) -> CutState {
        match self {
            Rule::Cut { cut, .. } | Rule::Random { cut, .. } => CutState::new(*cut),
            _ => CutState::new(None),
        }
    }

    /// Whether the rule uses the pass's shared (global) state.
    pub(crate) fn is_global(&self) -> bool {
        matches!(self, Rule::Cut { global: true, .. })
    }
}

/// The number of elements in a row (the last dimension; 1 for 0-d tensors).
pub(crate) fn row_len(info: &TensorInfo) -> usize {
    info.shape.last().copied().unwrap_or(1)
}

/// Computes every target's rule: the threshold passes over the data for magnitude cuts, the
/// random cuts, the Wanda scales. Reads the data, writes nothing.
pub(crate) fn prepare_rules(
    files: &Files,
    infos: &[&TensorInfo],
    targets: &[Target],
    method: &OfflineMethod,
    window: usize,
    progress: &dyn Progress,
) -> OfflineResult<Vec<Rule>> {
    let count = |amount: crate::Amount, n: u64| -> OfflineResult<u64> {
        Ok(amount.count_for(n as i64)? as u64)
    };
    match method {
        OfflineMethod::Magnitude { scope: Scope::Global, amount } => {
            let space = KeySpace::common(targets.iter().map(|t| t.float)).unwrap_or(KeySpace::F32);
            let total: u64 = infos.iter().map(|i| i.numel()).sum();
            let k = count(*amount, total)?;
            let bytes: u64 = infos.iter().map(|i| i.len).sum();
            let passes = if k == 0 { 0 } else { space.width().div_ceil(16) as u64 };
            progress.start("threshold", bytes * passes);
            let mut keys = MagnitudeKeys {
                files,
                tensors: targets.iter().zip(infos).map(|(t, i)| (t.shard, *i, t.float)).collect(),
                space,
                window,
                progress,
            };
            let cut = radix_cut(&mut keys, k, space.width())?;
            progress.finish();
            Ok(targets.iter().map(|_| Rule::Cut { cut, space, global: true }).collect())
        }
        OfflineMethod::Magnitude { scope: Scope::Tensor, amount } => {
            let bytes: u64 = infos.iter().map(|i| i.len).sum();
            progress.start("threshold", bytes);
            let mut rules = Vec::with_capacity(targets.len());
            for (t, info) in targets.iter().zip(infos) {
                let space = KeySpace::Native(t.float);
                let k = count(*amount, info.numel())?;
                let mut keys = MagnitudeKeys {
                    files,
                    tensors: vec![(t.shard, *info, t.float)],
                    space,
                    window,
                    progress,
                };
                rules.push(Rule::Cut {
                    cut: radix_cut(&mut keys, k, space.width())?,
                    space,
                    global: false,
                });
            }
            progress.finish();
            Ok(rules)
        }
        OfflineMethod::Magnitude { scope: Scope::Row, amount } => infos
            .iter()
            .map(|info| {
                let row = row_len(info);
                Ok(Rule::Rows { count: count(*amount, row as u64)? as usize, row })
            })
            .collect(),
        OfflineMethod::Random { amount, seed } => infos
            .iter()
            .map(|info| {
                let seed = tensor_seed(*seed, &info.name);
                let k = count(*amount, info.numel())?;
                let cut = radix_cut(&mut RandomKeys { seed, numel: info.numel() }, k, 32)?;
                Ok(Rule::Random { cut, seed })
            })
            .collect(),
        OfflineMethod::SemiStructured { n, m } => {
            Ok(infos.iter().map(|_| Rule::Nm { drop: m - n, m: *m }).collect())
        }
        OfflineMethod::Wanda { norms, pattern } => {
            let scales: HashMap<String, Vec<f32>> = read_scales(norms, infos)?;
            infos
                .iter()
                .map(|info| {
                    let scale =
                        scales.get(&info.name).cloned().ok_or_else(|| OfflineError::Norms {
                            file: norms.clone(),
                            tensor: info.name.clone(),
                            reason: "missing".into(),
                        })?;
                    Ok(match pattern {
                        // `int(W_metric.shape[1] * sparsity_ratio)`: truncation, as the reference.
                        WandaPattern::Row { sparsity } => {
                            let count = (scale.len() as f64 * sparsity) as usize;
                            Rule::WandaRows { scale, count }
                        }
                        WandaPattern::SemiStructured { n, m } => {
                            Rule::WandaNm { scale, drop: m - n, m: *m }
                        }
                    })
                })
                .collect()
        }
    }
}

/// Scratch buffers reused across windows.
#[derive(Default)]
pub(crate) struct Scratch {
    keys: Vec<u64>,
    sorted: Vec<u64>,
    pruned: Vec<bool>,
}

/// Copies `input` (whole elements of `float`, starting at element `first` of its tensor) to
/// `out` with the entries `rule` prunes set to +0, and returns how many it pruned. `state` is
/// the cut state to use for cut rules (the tensor's own, or the pass's global one).
pub(crate) fn prune_window(
    rule: &Rule,
    float: Float,
    first: u64,
    input: &[u8],
    out: &mut Vec<u8>,
    state: &mut CutState,
    scratch: &mut Scratch,
) -> u64 {
    out.clear();
    if let (Rule::Cut { space: KeySpace::Native(_), .. }, Some(kernel)) = (rule, cut_kernel(float))
    {
        out.resize(input.len(), 0);
        return kernel(input, out, state);
    }
    if let Rule::Nm { drop, m } = rule {
        if let Some(kernel) = nm_kernel(float, *m) {
            out.resize(input.len(), 0);
            return kernel(input, out, *drop);
        }
    }
    out.extend_from_slice(input);
    let size = float.size();
    let mut pruned = 0u64;
    let mut zero = |out: &mut Vec<u8>, i: usize| {
        out[i * size..][..size].fill(0);
        pruned += 1;
    };
    match rule {
        Rule::Cut { space, .. } => for_each_key(float, *space, input, |i, k| {
            if state.selects(k) {
                zero(out, i);
            }
        }),
        Rule::Random { seed, .. } => {
            for i in 0..input.len() / size {
                if state.selects(random_key(*seed, first + i as u64)) {
                    zero(out, i);
                }
            }
        }
        Rule::Rows { .. } | Rule::Nm { .. } | Rule::WandaRows { .. } | Rule::WandaNm { .. } => {
            let keys = &mut scratch.keys;
            keys.clear();
            match rule {
                Rule::WandaRows { scale, .. } | Rule::WandaNm { scale, .. } => {
                    let cols = scale.len();
                    for (i, e) in input.chunks_exact(size).enumerate() {
                        let score = abs_f32(float, e) * scale[(first as usize + i) % cols];
                        keys.push((score.to_bits() & 0x7FFF_FFFF) as u64);
                    }
                }
                _ => for_each_key(float, KeySpace::Native(float), input, |_, k| keys.push(k)),
            }
            let (unit, count, groups) = match rule {
                Rule::Rows { count, row } => (*row, *count, false),
                Rule::WandaRows { scale, count } => (scale.len(), *count, false),
                Rule::Nm { drop, m } | Rule::WandaNm { drop, m, .. } => (*m, *drop, true),
                _ => (1, 0, false),
            };
            let base = 0usize;
            for (u, unit_keys) in keys.chunks(unit.max(1)).enumerate() {
                let offset = base + u * unit;
                if groups {
                    scratch.pruned.resize(unit_keys.len(), false);
                    smallest_in_group(unit_keys, count, &mut scratch.pruned);
                    for (j, &p) in scratch.pruned.iter().enumerate() {
                        if p {
                            zero(out, offset + j);
                        }
                    }
                } else {
                    scratch.sorted.clear();
                    scratch.sorted.extend_from_slice(unit_keys);
                    let mut row_state = CutState::new(cut_in_memory(&mut scratch.sorted, count));
                    for (j, &k) in unit_keys.iter().enumerate() {
                        if row_state.selects(k) {
                            zero(out, offset + j);
                        }
                    }
                }
            }
        }
    }
    pruned
}

/// A typed, branch-free kernel for a cut in the dtype's own key space: `out` gets `input` with
/// the selected entries set to +0.0; returns how many it selected. (Selecting half of the
/// entries at random costs a mispredicted branch per entry otherwise.)
type CutKernel = fn(&[u8], &mut [u8], &mut CutState) -> u64;

fn cut_kernel(float: Float) -> Option<CutKernel> {
    Some(match float {
        Float::F16 | Float::BF16 => cut_u16,
        Float::F32 => cut_u32,
        Float::F64 => cut_u64,
    })
}

macro_rules! cut_kernels {
    ($($name:ident, $nm:ident: $t:ty, $n:expr, $abs:expr;)*) => {$(
        fn $name(input: &[u8], out: &mut [u8], state: &mut CutState) -> u64 {
            let (t, mut ties) = state.parts();
            let mut pruned = 0u64;
            // Everything strictly below the threshold: a pure map, which vectorizes.
            for (i, o) in input.chunks_exact($n).zip(out.chunks_exact_mut($n)) {
                let mut b = [0u8; $n];
                b.copy_from_slice(i);
                let v = <$t>::from_le_bytes(b);
                let sel = ((v & $abs) as u64) < t;
                pruned += sel as u64;
                // All ones when kept, zero when selected.
                let keep = (sel as $t).wrapping_sub(1);
                o.copy_from_slice(&(v & keep).to_le_bytes());
            }
            // Then the ties still due, in index order.
            if ties > 0 {
                for (i, o) in input.chunks_exact($n).zip(out.chunks_exact_mut($n)) {
                    let mut b = [0u8; $n];
                    b.copy_from_slice(i);
                    if ((<$t>::from_le_bytes(b) & $abs) as u64) == t {
                        o.fill(0);
                        pruned += 1;
                        ties -= 1;
                        if ties == 0 {
                            break;
                        }
                    }
                }
            }
            state.set_ties_left(ties);
            pruned
        }

        /// N:M in the dtype's own key space, group by group, for a group size known at
        /// compile time (the rank loops unroll).
        fn $nm<const M: usize>(input: &[u8], out: &mut [u8], drop: usize) -> u64 {
            let mut pruned = 0u64;
            for (gi, go) in input.chunks_exact(M * $n).zip(out.chunks_exact_mut(M * $n)) {
                let mut vals = [0 as $t; M];
                for (v, e) in vals.iter_mut().zip(gi.chunks_exact($n)) {
                    let mut b = [0u8; $n];
                    b.copy_from_slice(e);
                    *v = <$t>::from_le_bytes(b);
                }
                let keys = vals.map(|v| v & $abs);
                for (i, o) in go.chunks_exact_mut($n).enumerate() {
                    let mut rank = 0usize;
                    for j in 0..M {
                        rank += ((keys[j] < keys[i]) | ((keys[j] == keys[i]) & (j < i))) as usize;
                    }
                    let sel = rank < drop;
                    pruned += sel as u64;
                    o.copy_from_slice(&(vals[i] & (sel as $t).wrapping_sub(1)).to_le_bytes());
                }
            }
            pruned
        }
    )*};
}

cut_kernels! {
    cut_u16, nm_u16: u16, 2, 0x7FFF;
    cut_u32, nm_u32: u32, 4, 0x7FFF_FFFF;
    cut_u64, nm_u64: u64, 8, 0x7FFF_FFFF_FFFF_FFFF;
}

/// An N:M kernel: `(input, out, drop)` to the number pruned.
type NmKernel = fn(&[u8], &mut [u8], usize) -> u64;

/// A compiled N:M kernel for `float`'s element size and group size `m` (2, 4, 8 or 16).
fn nm_kernel(float: Float, m: usize) -> Option<NmKernel> {
    macro_rules! pick {
        ($f:ident) => {
            match m {
                2 => Some($f::<2>),
                4 => Some($f::<4>),
                8 => Some($f::<8>),
                16 => Some($f::<16>),
                _ => None,
            }
        };
    }
    match float {
        Float::F16 | Float::BF16 => pick!(nm_u16),
        Float::F32 => pick!(nm_u32),
        Float::F64 => pick!(nm_u64),
    }
}
