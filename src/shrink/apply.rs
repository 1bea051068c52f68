//! [`Shrink`]: removing the selected units from every member of every group, in place, with the
//! equivalence check built in.
//!
//! Two halves, as everywhere in the crate. Prepare (fallible, changes nothing): resolve the
//! coupling, check the selection and the layers, compute every new tensor. Then mutate, with a
//! way back: each variable's data is swapped with libtorch's `set_data`, which replaces the
//! data of the tensor the `VarStore`, the layer's field and any other handle share, so the
//! model struct, the `VarStore` and a later `vs.save` all see the smaller tensor, and the
//! variable keeps its trainability, kind and device. The old data is kept until the check has
//! passed; if it fails, every variable and layer field is put back.

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::Tensor;

use super::coupling::{Coupling, ResolvedGroup};
use super::layers::{apply_fields, field_changes, FieldChange, VarPlan};
use super::manifest::ShrinkManifest;
use super::report::{ShrinkReport, Totals};
use super::selection::Selection;
use super::verify::{compare, run_forward, CheckInput, Comparison, DEFAULT_TOLERANCE};
use crate::error::{PruneError, Result};
use crate::prunable::Prunable;

/// Removes the units of a [`Selection`] from a model, physically: smaller tensors, fewer
/// parameters, faster forwards; then proves on check inputs that the shrunk model computes
/// what the masked model (the selected units zeroed in every member) computed.
///
/// What changes: every variable of every group with removals, in place (the same tensor
/// object: the model's fields, the `VarStore`, a later `vs.save`), with its gradient if it has
/// one; `nn::GroupNorm::num_groups` and `nn::LayerNorm::normalized_shape` when the model is
/// given ([`apply`](Self::apply)). What does not: optimizers built before (their state has
/// the old shapes: **rebuild them**), counts your structs keep (head counts: read them from
/// the [`ShrinkManifest`] or from the shapes), grouped convolutions (refused).
///
/// ```
/// use tch::nn::{self, Module};
/// use tch::Device;
/// use tch_prune::{presets, ChannelPruning, Coupling, Shrink};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let net = nn::seq()
///     .add(nn::linear(vs.root() / "fc1", 8, 32, Default::default()))
///     .add_fn(|x| x.relu())
///     .add(nn::linear(vs.root() / "fc2", 32, 4, Default::default()));
/// let coupling = Coupling::new(vec![presets::linear_chain("hidden", "fc1", &["fc2"])])?;
/// let selection = ChannelPruning::local(0.5)?.select(&coupling, &vs)?;
/// let report = Shrink::new(&coupling, &selection)
///     .check_input(&[16, 8])
///     .apply_to_var_store(&vs, |x| net.forward(x))?;
/// assert_eq!(vs.variables()["fc1.weight"].size(), [16, 8]);
/// assert_eq!(vs.variables()["fc2.weight"].size(), [4, 16]);
/// assert!(report.max_diff() <= report.allowed());
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
///
/// Torch-Pruning equivalent: `group.prune()` / `pruner.step()`; NNI:
/// `ModelSpeedup(model, dummy_input, masks).speedup_model()`.
#[derive(Debug)]
pub struct Shrink<'a> {
    coupling: &'a Coupling,
    selection: &'a Selection,
    inputs: Vec<CheckInput>,
    tolerance: f64,
}

/// A variable to shrink: its handle, the old data, the masked and the shrunk data, and the
/// same for its gradient.
struct Swap {
    name: String,
    var: Tensor,
    old: Tensor,
    zeroed: Tensor,
    small: Tensor,
    grad: Option<(Tensor, Tensor, Tensor)>,
}

/// A model with no layers to reach: shrinking through the `VarStore` only.
struct Opaque;

impl Prunable for Opaque {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        Vec::new()
    }
}

impl<'a> Shrink<'a> {
    /// Shrinks the units `selection` removes from the groups of `coupling`.
    pub fn new(coupling: &'a Coupling, selection: &'a Selection) -> Self {
        Self { coupling, selection, inputs: Vec::new(), tolerance: DEFAULT_TOLERANCE }
    }

    /// Adds a check input of `shape`, filled with seeded values of mean 0 and variance 1
    /// (`f32`, on the `VarStore`'s device; libtorch's generator is not touched).
    pub fn check_input(mut self, shape: &[i64]) -> Self {
        let seed = self.inputs.len() as u64;
        self.inputs.push(CheckInput::Random { shape: shape.to_vec(), seed });
        self
    }

    /// Adds your own check inputs (token ids for a language model, real samples, ...).
    pub fn check_inputs(mut self, inputs: impl IntoIterator<Item = Tensor>) -> Self {
        self.inputs.extend(inputs.into_iter().map(CheckInput::Tensor));
        self
    }

    /// The relative tolerance of the check (default `1e-5`, for `f32`).
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Shrinks a model that implements [`Prunable`] (its layer fields are updated too, and
    /// grouped convolutions are refused up front); `forward` runs it, in evaluation mode.
    ///
    /// # Errors
    /// [`PruneError::MissingArgument`] without check inputs; the errors of
    /// [`Selection::check`]; [`PruneError::StillReparametrized`] for a member still pruned
    /// with a mask; [`PruneError::UnsupportedLayer`]; [`PruneError::ShrinkMismatch`] when the
    /// check fails (naming the first group that fails on its own). The model and the
    /// `VarStore` are unchanged on error.
    pub fn apply<M: Prunable>(
        &self,
        vs: &VarStore,
        model: &mut M,
        forward: impl Fn(&M, &Tensor) -> Tensor,
    ) -> Result<ShrinkReport> {
        self.run(vs, model, &forward)
    }

    /// Shrinks a model reached through its `VarStore` only (`nn::seq()`, `nn::func`,
    /// `tch::vision` models): the tensors shrink the same way, but layer fields such as a
    /// GroupNorm's group count cannot be updated and grouped convolutions are only caught by
    /// the check.
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    pub fn apply_to_var_store(
        &self,
        vs: &VarStore,
        forward: impl Fn(&Tensor) -> Tensor,
    ) -> Result<ShrinkReport> {
        self.run(vs, &mut Opaque, &|_: &Opaque, x: &Tensor| forward(x))
    }

    fn run<M: Prunable>(
        &self,
        vs: &VarStore,
        model: &mut M,
        forward: &dyn Fn(&M, &Tensor) -> Tensor,
    ) -> Result<ShrinkReport> {
        if self.inputs.is_empty() {
            return Err(PruneError::MissingArgument { parameter: "check_inputs" });
        }
        let inputs: Vec<Tensor> =
            self.inputs.iter().map(|i| i.materialise(vs.device())).collect::<Result<_>>()?;
        let resolved = self.coupling.resolve(vs)?;
        self.selection.check_resolved(&resolved)?;
        let plan = self.plan(&resolved, None)?;
        let before = Totals::of(vs);
        let swaps = prepare_swaps(vs, &plan)?;
        let shapes: BTreeMap<String, Vec<i64>> =
            swaps.iter().map(|s| (s.name.clone(), s.small.size())).collect();
        let fields = field_changes(&model.named_modules(), &plan, &shapes)?;
        let strict = !resolved
            .iter()
            .any(|g| g.normalized && !self.selection.removed_or_empty(&g.name).is_empty());

        // Mutate from here on; every failure below restores the old data.
        set_all(&swaps, |s| &s.zeroed, |g| &g.1);
        let reference = match run_forward(&mut |x| forward(model, x), &inputs) {
            Ok(outputs) => outputs,
            Err(message) => {
                set_all(&swaps, |s| &s.old, |g| &g.0);
                return Err(mismatch(
                    None,
                    f64::NAN,
                    0.0,
                    format!("the masked forward failed: {message}"),
                ));
            }
        };
        set_all(&swaps, |s| &s.small, |g| &g.2);
        apply_fields(&mut model.named_modules_mut(), &fields, true);
        let outcome = run_forward(&mut |x| forward(model, x), &inputs);
        let comparison = match &outcome {
            Ok(outputs) => Some(compare(&reference, outputs)),
            Err(_) => None,
        };
        let ok = match comparison {
            Some(Ok(c)) => !strict || c.passes(self.tolerance),
            _ => false,
        };
        if ok {
            let comparison = match comparison {
                Some(Ok(c)) => c,
                _ => Comparison { max_diff: f64::NAN, scale: 0.0 },
            };
            let manifest = ShrinkManifest::of(vs, &resolved, self.selection);
            let fields = fields.iter().map(FieldChange::describe).collect();
            return Ok(ShrinkReport::new(
                manifest,
                before,
                Totals::of(vs),
                comparison,
                self.tolerance,
                strict,
                fields,
            ));
        }
        // Find the first group that fails alone, then put everything back.
        apply_fields(&mut model.named_modules_mut(), &fields, false);
        set_all(&swaps, |s| &s.zeroed, |g| &g.1);
        let culprit = self.diagnose(vs, model, forward, &resolved, &inputs, &reference);
        set_all(&swaps, |s| &s.old, |g| &g.0);
        let (max_diff, allowed, detail) = match (outcome, comparison) {
            (Err(message), _) => (f64::NAN, 0.0, format!("the shrunk forward failed: {message}")),
            (_, Some(Ok(c))) => (
                c.max_diff,
                c.allowed(self.tolerance),
                format!("max abs difference {:e} > {:e}", c.max_diff, c.allowed(self.tolerance)),
            ),
            (_, Some(Err(err))) => return Err(err),
            (Ok(_), None) => (f64::NAN, 0.0, "no comparison".into()),
        };
        Err(mismatch(culprit, max_diff, allowed, detail))
    }

    /// Every variable's planned removals, for all groups or for `only` one.
    fn plan(
        &self,
        resolved: &[ResolvedGroup],
        only: Option<&str>,
    ) -> Result<BTreeMap<String, VarPlan>> {
        let mut plan: BTreeMap<String, VarPlan> = BTreeMap::new();
        for g in resolved.iter().filter(|g| only.is_none_or(|name| name == g.name)) {
            let removed = self.selection.removed_or_empty(&g.name);
            if removed.is_empty() {
                continue;
            }
            for m in &g.members {
                if m.reparametrized {
                    return Err(PruneError::StillReparametrized { name: m.member.param().into() });
                }
                let dims = plan.entry(m.member.param().to_string()).or_default();
                let entries = m.entries(removed);
                match dims.iter_mut().find(|(d, _)| *d == m.dim) {
                    Some((_, existing)) => {
                        existing.extend(entries);
                        existing.sort_unstable();
                        existing.dedup();
                    }
                    None => dims.push((m.dim, entries)),
                }
            }
        }
        Ok(plan)
    }

    /// The first group (in declaration order) whose shrink alone, from the masked state,
    /// fails the check; the model is left in the masked state.
    fn diagnose<M: Prunable>(
        &self,
        vs: &VarStore,
        model: &mut M,
        forward: &dyn Fn(&M, &Tensor) -> Tensor,
        resolved: &[ResolvedGroup],
        inputs: &[Tensor],
        reference: &[Tensor],
    ) -> Option<String> {
        for g in resolved {
            if self.selection.removed_or_empty(&g.name).is_empty() {
                continue;
            }
            let Ok(plan) = self.plan(resolved, Some(&g.name)) else { continue };
            let Ok(swaps) = prepare_swaps(vs, &plan) else { continue };
            let shapes = swaps.iter().map(|s| (s.name.clone(), s.small.size())).collect();
            let fields = match field_changes(&model.named_modules(), &plan, &shapes) {
                Ok(fields) => fields,
                Err(_) => return Some(g.name.clone()),
            };
            // `old` here is the masked data: shrink from it, then return to it.
            set_all(&swaps, |s| &s.small, |g| &g.2);
            apply_fields(&mut model.named_modules_mut(), &fields, true);
            let outcome = run_forward(&mut |x| forward(model, x), inputs);
            apply_fields(&mut model.named_modules_mut(), &fields, false);
            set_all(&swaps, |s| &s.old, |g| &g.0);
            let passes = match outcome {
                Ok(outputs) => compare(reference, &outputs)
                    .is_ok_and(|c| g.normalized || c.passes(self.tolerance)),
                Err(_) => false,
            };
            if !passes {
                return Some(g.name.clone());
            }
        }
        None
    }
}

fn mismatch(group: Option<String>, max_diff: f64, allowed: f64, detail: String) -> PruneError {
    PruneError::ShrinkMismatch { group, max_diff, allowed, detail }
}

/// Computes, for every planned variable, its zeroed (masked) and shrunk data. Changes nothing.
fn prepare_swaps(vs: &VarStore, plan: &BTreeMap<String, VarPlan>) -> Result<Vec<Swap>> {
    let vars = vs.variables();
    let mut swaps = Vec::with_capacity(plan.len());
    for (name, dims) in plan {
        let var = vars
            .get(name)
            .ok_or_else(|| PruneError::UnknownParameter { name: name.clone() })?
            .shallow_clone();
        let old = var.f_detach()?;
        let (zeroed, small) = tch::no_grad(|| shrunk(&old, dims))?;
        let grad = var.grad();
        let grad = if grad.defined() {
            let old_grad = grad.f_detach()?;
            let (zeroed_grad, small_grad) = tch::no_grad(|| shrunk(&old_grad, dims))?;
            Some((old_grad, zeroed_grad, small_grad, grad))
        } else {
            None
        };
        swaps.push(Swap {
            name: name.clone(),
            var,
            old,
            zeroed,
            small,
            grad: grad.map(|(o, z, s, _)| (o, z, s)),
        });
    }
    Ok(swaps)
}

/// `t` with the planned entries zeroed, and `t` without them.
fn shrunk(t: &Tensor, dims: &VarPlan) -> Result<(Tensor, Tensor)> {
    let mut zeroed = t.f_detach_copy()?;
    let mut small = t.shallow_clone();
    for (dim, removed) in dims {
        let d = *dim as i64;
        let size = t.size()[*dim];
        let removed_t = Tensor::from_slice(removed).f_to(t.device())?;
        let _ = zeroed.f_index_fill_(d, &removed_t, 0.0)?;
        let kept: Vec<i64> = (0..size).filter(|i| removed.binary_search(i).is_err()).collect();
        let kept = Tensor::from_slice(&kept).f_to(t.device())?;
        small = small.f_index_select(d, &kept)?;
    }
    Ok((zeroed, small.f_contiguous()?))
}

/// Points every variable (and its gradient) at the data `pick` chooses.
fn set_all(
    swaps: &[Swap],
    pick: impl Fn(&Swap) -> &Tensor,
    pick_grad: impl Fn(&(Tensor, Tensor, Tensor)) -> &Tensor,
) {
    for swap in swaps {
        let mut var = swap.var.shallow_clone();
        // `set_data` fails only for data of another kind or device, which these are not.
        let _ = var.f_set_data(pick(swap));
        if let Some(grads) = &swap.grad {
            let mut grad = swap.var.grad();
            let _ = grad.f_set_data(pick_grad(grads));
        }
    }
}
