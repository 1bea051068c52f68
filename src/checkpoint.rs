//! Loading pruned checkpoints (PyTorch `state_dict`s saved as safetensors) into Rust models.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use tch::Tensor;

use crate::error::{PruneError, Result};
use crate::method::{check_same_shape, Identity};
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
    /// Values are copied into the existing tensors (their identity is kept, so optimizers stay
    /// valid); masks take the kind stored in the file.
    ///
    /// # Errors
    /// [`PruneError::CheckpointMismatch`] naming the missing and unexpected keys,
    /// [`PruneError::ShapeMismatch`] for an entry of the wrong shape, the errors of
    /// [`apply`](crate::Pruner::apply), and libtorch's when the file cannot be read. Nothing changes on
    /// error.
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
        // Shapes of everything that exists now (new masks have the parameter's shape).
        {
            let vars = self.vars();
            for (name, var) in vars.named_variables.iter() {
                let key = if to_prune.contains(name) { orig_name(name) } else { name.clone() };
                check_same_shape("checkpoint entry", &var.size(), &entries[&key])?;
                if to_prune.contains(name) {
                    check_same_shape("checkpoint entry", &var.size(), &entries[&mask_name(name)])?;
                }
            }
        }

        let mut pending = Vec::with_capacity(to_prune.len());
        for base in &to_prune {
            pending.push(self.prepare(base, Box::new(Identity), None)?);
        }
        self.commit(pending);
        {
            let vars = self.vars();
            tch::no_grad(|| -> Result<()> {
                for (name, var) in vars.named_variables.iter() {
                    let src = &entries[name];
                    let mut dst = var.shallow_clone();
                    if dst.kind() != src.kind() {
                        dst.f_set_data(&dst.f_to_kind(src.kind())?)?;
                    }
                    dst.f_copy_(src)?;
                }
                Ok(())
            })?;
        }
        self.refresh()
    }
}
