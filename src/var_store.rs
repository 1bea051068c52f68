//! The one place that reaches into tch's `VarStore` internals.
//!
//! tch keeps a `VarStore`'s variables in a public but undocumented field,
//! `vs.variables_: Arc<Mutex<Variables>>`. Pruning needs it to rename variables
//! (`weight` → `weight_orig`, plus `weight_mask`) exactly as PyTorch's `state_dict` names them,
//! and to read the trainable list in creation order for reports. Everything else in the crate
//! goes through [`Vars`], so a change of that field in a later tch touches this file only.

use std::sync::{Arc, Mutex, MutexGuard};

use tch::nn::{VarStore, Variables};

/// A shared handle on the variables of a `VarStore` (the same map, not a copy).
#[derive(Clone)]
pub(crate) struct Vars(Arc<Mutex<Variables>>);

impl Vars {
    /// The variables of `vs`.
    pub(crate) fn of(vs: &VarStore) -> Self {
        Self(Arc::clone(&vs.variables_))
    }

    /// Locks the map. A poisoned lock only means another thread panicked while holding it;
    /// the map itself is still consistent (tch never leaves it half-updated), so keep going.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Variables> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Vars {
    /// Removes the variable `name` from the map and from the trainable list (matched by
    /// storage), returning it: movement pruning drops its scores this way once they are folded.
    pub(crate) fn remove(&self, name: &str) -> Option<tch::Tensor> {
        let mut vars = self.lock();
        let tensor = vars.named_variables.remove(name)?;
        let same = |t: &tch::Tensor| t.data_ptr() == tensor.data_ptr() && t.size() == tensor.size();
        vars.trainable_variables.retain(|v| !same(&v.tensor));
        Some(tensor)
    }
}
