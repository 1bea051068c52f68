//! Loading pruned checkpoints (PyTorch `state_dict`s saved as safetensors) into Rust models.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use tch::Tensor;

use crate::error::{PruneError, Result};
use crate::method::{check_same_shape, check_writable, to_kind_copy, Identity};
use crate::model::PrunedModel;
use crate::prunable::Prunable;
use crate::reparam::{mask_name, orig_name};

impl<M: Prunable> PrunedModel<M> {
    /// Loads a pruned checkpoint (`.safetensors`, or libtorch's format for other extensions)
    /// strictly: every variable of the model must be in the file and every entry of the file
    /// must be a variable of the model, **after** recreating the reparametrization for each
    /// `<name>_mask` / `<name>_orig` pair whose `<name>` is a plain parameter here.
    ///
    /// So a checkpoint of a pruned PyTorch model (`torch.save`d `state_dict` written with
    /// `safetensors.torch.save_file`) loads into an **unpruned** Rust model: the parameters it
    /// prunes become `<name>_orig` / `<name>_mask` here, with an [`Identity`] step as their
    /// history (the methods are not part of a checkpoint). PyTorch itself needs
    /// `prune.identity` on every such parameter before `load_state_dict`.
    ///
    /// Values are copied into the model's own tensors, as `load_state_dict` copies them: each
    /// tensor keeps its identity (so optimizers stay valid), its kind, device and
    /// `requires_grad`, and an entry stored in another kind is converted to it (an `f64` file
    /// into an `f32` model gives `f32` values; a float entry for an integer tensor is
    /// truncated). New masks have the parameter's kind, as after `prune.identity`, whatever kind
    /// the file stores them in (bool, `u8`, `f64`, ...).
    ///
    /// # Errors
    /// [`PruneError::CheckpointMismatch`] naming the missing and unexpected keys,
    /// [`PruneError::ShapeMismatch`] for an entry of the wrong shape,
    /// [`PruneError::InternalOverlap`] for a variable that cannot be written in place (an
    /// expanded tensor), the errors of [`apply`](crate::Pruner::apply), and libtorch's when the file
    /// cannot be read. Everything is checked before anything changes: on error the model, its
    /// `VarStore` (every variable's kind, shape and values) and its pruning state are as
    /// before.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{PrunedModel, Pruner};
    ///
    /// let dir = std::env::temp_dir().join(format!("tch-prune-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("pruned.safetensors");
    ///
    /// // A pruned model, saved.
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut pruned = PrunedModel::with_prefix(nn::linear(vs.root() / "fc", 4, 2, Default::default()), &vs, "fc")?;
    /// pruned.l1_unstructured("fc.weight", 0.5, None)?;
    /// vs.save(&path)?;
    ///
    /// // A fresh, unpruned model loads it and is pruned the same way.
    /// let vs2 = nn::VarStore::new(Device::Cpu);
    /// let mut fresh = PrunedModel::with_prefix(nn::linear(vs2.root() / "fc", 4, 2, Default::default()), &vs2, "fc")?;
    /// fresh.load_pruned_checkpoint(&path)?;
    /// assert!(fresh.is_parameter_pruned("fc.weight"));
    /// assert!(fresh.mask("fc.weight").unwrap().equal(pruned.mask("fc.weight").unwrap()));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_pruned_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let entries: HashMap<String, Tensor> = match path.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => Tensor::read_safetensors(path)?,
            _ => Tensor::load_multi(path)?,
        }
        .into_iter()
        .collect();

        // Parameters the checkpoint prunes but this model does not (yet).
        let to_prune: Vec<String> = {
            let vars = self.vars();
            entries
                .keys()
                .filter_map(|key| key.strip_suffix("_mask"))
                .filter(|base| {
                    entries.contains_key(&orig_name(base))
                        && vars.named_variables.contains_key(*base)
                        && self.position(base).is_none()
                })
                .map(str::to_string)
                .collect()
        };

        // The variables the model will have once those are reparametrized.
        let mut expected: BTreeSet<String> = self.vars().named_variables.keys().cloned().collect();
        for base in &to_prune {
            expected.remove(base);
            expected.insert(orig_name(base));
            expected.insert(mask_name(base));
        }
        let missing: Vec<String> =
            expected.iter().filter(|k| !entries.contains_key(*k)).cloned().collect();
        let mut unexpected: Vec<String> =
            entries.keys().filter(|k| !expected.contains(*k)).cloned().collect();
        unexpected.sort();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(PruneError::CheckpointMismatch { missing, unexpected });
        }
        // Every check before any change, variables in name order: shapes (new masks have the
        // parameter's shape), then that every destination can be written in place.
        let mut pending = Vec::with_capacity(to_prune.len());
        let mut copies = Vec::with_capacity(expected.len());
        {
            let vars = self.vars();
            let mut variables: Vec<(&String, &Tensor)> = vars.named_variables.iter().collect();
            variables.sort_unstable_by_key(|(name, _)| *name);
            let key = |name: &String| {
                if to_prune.contains(name) {
                    orig_name(name)
                } else {
                    name.clone()
                }
            };
            for &(name, var) in &variables {
                check_same_shape("checkpoint entry", &var.size(), &entries[&key(name)])?;
                if to_prune.contains(name) {
                    check_same_shape("checkpoint entry", &var.size(), &entries[&mask_name(name)])?;
                }
            }
            for &(name, var) in &variables {
                check_writable(name, var)?;
                // The value in the variable's kind and on its device, as `copy_` converts it.
                copies.push((var.shallow_clone(), converted(&entries[&key(name)], var)?));
            }
        }
        for base in &to_prune {
            let mut step = self.prepare(base, Box::new(Identity), None)?;
            // `prune.identity` makes a mask of ones of the parameter's kind, and
            // `load_state_dict` copies the file's mask into it.
            let mask = entries[&mask_name(base)].f_detach()?.f_to_device(step.mask.device())?;
            step.mask = to_kind_copy(&mask, step.mask.kind())?;
            pending.push(step);
        }

        // Cannot fail: the reparametrizations, then copies between tensors of one shape, kind
        // and device into destinations checked above.
        self.commit(pending);
        tch::no_grad(|| -> Result<()> {
            for (mut dst, value) in copies {
                dst.f_copy_(&value)?;
            }
            Ok(())
        })?;
        self.refresh()
    }
}

/// `src` in `like`'s kind and on its device (PyTorch's `copy_` conversion: float to integer
/// truncates, non-zero to bool is `true`), without autograd history.
fn converted(src: &Tensor, like: &Tensor) -> Result<Tensor> {
    let src = src.f_detach()?.f_to_device(like.device())?;
    Ok(src.f_to_kind(like.kind())?)
}
