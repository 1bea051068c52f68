//! Which tensors a report covers: a `VarStore`'s parameters in creation order, pruned ones under
//! their own name, filtered by names or glob patterns, or exactly the parameters named.

use std::collections::{HashMap, HashSet};

use tch::nn::Variables;
use tch::Tensor;

use crate::error::{PruneError, Result};
use crate::glob::select_names;
use crate::reparam::{mask_name, orig_name};

/// One parameter to report.
pub struct Entry {
    pub(crate) name: String,
    pub(crate) value: Value,
}

/// How a parameter's value is formed.
pub enum Value {
    /// The tensor itself.
    Plain(Tensor),
    /// `orig * mask` (a pruned parameter).
    Masked { orig: Tensor, mask: Tensor },
}

/// The parameters of `vars`: its trainable variables (PyTorch's `parameters()`, whatever their
/// `requires_grad` after `VarStore::freeze`), in [`pytorch_order`]. Names come from
/// `named_variables` (the trainable list has none), matched by tensor identity. A variable
/// named `<base>_orig` for which `is_pruned(base)` holds is reported as `base`, with its mask.
pub(crate) fn parameters(vars: &Variables, is_pruned: impl Fn(&str) -> bool) -> Vec<Entry> {
    pytorch_order(trainable(vars, &is_pruned))
}

/// Exactly the parameters `names` (full names), in [`pytorch_order`]: the trainable ones as
/// [`parameters`] finds them, and the others from `named_variables` (a slot holding a variable
/// created with `zeros_no_train` can be pruned too, so it can be reported), placed after the
/// trainable ones of their layer. A name for which `is_pruned` holds is read as
/// `<name>_orig * <name>_mask`.
///
/// # Errors
/// [`PruneError::UnknownParameter`] for a name that is not a variable (nor a pruned parameter).
pub(crate) fn named(
    vars: &Variables,
    names: &[&str],
    is_pruned: impl Fn(&str) -> bool,
) -> Result<Vec<Entry>> {
    let mut out: Vec<Entry> = trainable(vars, &is_pruned)
        .into_iter()
        .filter(|entry| names.contains(&entry.name.as_str()))
        .collect();
    for &name in names {
        if out.iter().any(|entry| entry.name == name) {
            continue;
        }
        let unknown = || PruneError::UnknownParameter { name: name.to_string() };
        let value = if is_pruned(name) {
            let orig = vars.named_variables.get(&orig_name(name)).ok_or_else(unknown)?;
            let mask = vars.named_variables.get(&mask_name(name)).ok_or_else(unknown)?;
            Value::Masked { orig: orig.shallow_clone(), mask: mask.shallow_clone() }
        } else {
            Value::Plain(vars.named_variables.get(name).ok_or_else(unknown)?.shallow_clone())
        };
        out.push(Entry { name: name.to_string(), value });
    }
    Ok(pytorch_order(out))
}

/// The trainable variables as [`parameters`] reports them, in creation order.
fn trainable(vars: &Variables, is_pruned: &impl Fn(&str) -> bool) -> Vec<Entry> {
    // Names by tensor identity; sorted so that aliases of one tensor come out in a fixed order.
    let mut by_identity: HashMap<Identity, Vec<&String>> = HashMap::new();
    for (name, tensor) in &vars.named_variables {
        by_identity.entry(identity(tensor)).or_default().push(name);
    }
    for names in by_identity.values_mut() {
        names.sort();
    }
    let mut seen: HashSet<&String> = HashSet::new();
    let mut out = Vec::new();
    for var in &vars.trainable_variables {
        let Some(names) = by_identity.get(&identity(&var.tensor)) else { continue };
        for &name in names {
            if !seen.insert(name) {
                continue;
            }
            let tensor = &vars.named_variables[name];
            let pruned = name
                .strip_suffix("_orig")
                .filter(|base| is_pruned(base))
                .and_then(|base| Some((base, vars.named_variables.get(&mask_name(base))?)));
            out.push(match pruned {
                Some((base, mask)) => Entry {
                    name: base.to_string(),
                    value: Value::Masked {
                        orig: tensor.shallow_clone(),
                        mask: mask.shallow_clone(),
                    },
                },
                None => Entry { name: name.clone(), value: Value::Plain(tensor.shallow_clone()) },
            });
        }
    }
    out
}

/// PyTorch's `named_parameters()` order from creation order: layers (name up to the last `.`)
/// in the order their first variable was created, and in each layer its `weight` first. tch's
/// layers create their bias before their weight, so creation order alone would list
/// `fc.bias` before `fc.weight`.
fn pytorch_order(entries: Vec<Entry>) -> Vec<Entry> {
    let layer = |name: &str| name.rsplit_once('.').map_or("", |(layer, _)| layer).to_string();
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    let mut keyed: Vec<((usize, bool, usize), Entry)> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let next = first_seen.len();
        let group = *first_seen.entry(layer(&entry.name)).or_insert(next);
        let not_weight = entry.name.rsplit('.').next() != Some("weight");
        keyed.push(((group, not_weight, index), entry));
    }
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, entry)| entry).collect()
}

/// The entries whose name matches one of `names` (full names or glob patterns), in their
/// original order; all of them for `None`.
///
/// # Errors
/// [`PruneError::UnknownParameter`] for an entry of `names` that matches nothing.
pub(crate) fn select(entries: Vec<Entry>, names: Option<&[&str]>) -> Result<Vec<Entry>> {
    let Some(names) = names else { return Ok(entries) };
    let all: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let selected = select_names(&all, names.iter().copied())
        .map_err(|name| PruneError::UnknownParameter { name: name.to_string() })?;
    let keep: Vec<bool> = all.iter().map(|name| selected.contains(name)).collect();
    Ok(entries.into_iter().zip(keep).filter_map(|(e, keep)| keep.then_some(e)).collect())
}

/// What identifies a variable: storage address, shape and strides (as `PrunedModel` checks
/// that a slot holds a variable).
type Identity = (usize, Vec<i64>, Vec<i64>);

fn identity(t: &Tensor) -> Identity {
    (t.data_ptr() as usize, t.size(), t.stride())
}
