//! Converting every `Linear` of a (pruned) model into a [`SemiSparseLinear`], with a report of
//! which layers went sparse and why the others did not.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tch::nn::Linear;

use super::check::Ineligible;
use super::choose::ChoiceCache;
use super::layer::SemiSparseLinear;
use crate::error::Result;
use crate::prunable::Prunable;

/// One layer's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerOutcome {
    /// The layer's full name (`"encoder.ffn.fc1"`).
    pub name: String,
    /// Its weight's shape `[out, in]`.
    pub shape: Vec<i64>,
    /// Why it stays dense; `None` when it was compressed.
    pub reason: Option<Ineligible>,
}

/// Which layers went sparse, and why the others did not; one line per layer when printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversionReport {
    /// One entry per `Linear`, in the model's order.
    pub layers: Vec<LayerOutcome>,
}

impl ConversionReport {
    /// The names of the compressed layers.
    pub fn sparse(&self) -> impl Iterator<Item = &str> + '_ {
        self.layers.iter().filter(|l| l.reason.is_none()).map(|l| l.name.as_str())
    }
}

impl fmt::Display for ConversionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.layers {
            match &l.reason {
                None => writeln!(f, "{}: {:?} sparse (2:4, cuSPARSELt)", l.name, l.shape)?,
                Some(r) => writeln!(f, "{}: {:?} dense: {r}", l.name, l.shape)?,
            }
        }
        Ok(())
    }
}

/// Every `Linear` of `model` as a [`SemiSparseLinear`] by full name, sharing one
/// [`ChoiceCache`], and the report. Pass the pruned model's layers with their masks applied:
/// `pruned.refreshed()?` for a [`PrunedModel`](crate::PrunedModel), the model itself under
/// [`HardMask`](crate::HardMask). Use the layers in the model's forward in place of the
/// `Linear`s (tch modules cannot be swapped from outside).
///
/// # Errors
/// A libtorch error, or the errors of [`SemiSparseLinear::new`].
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{prunable, semi_sparse::convert_linears};
///
/// #[derive(Debug)]
/// struct Net { fc1: nn::Linear, fc2: nn::Linear }
/// prunable!(Net { fc1, fc2 });
/// let vs = nn::VarStore::new(Device::Cpu);
/// let net = Net {
///     fc1: nn::linear(vs.root() / "fc1", 64, 32, Default::default()),
///     fc2: nn::linear(vs.root() / "fc2", 32, 30, Default::default()),
/// };
/// let (layers, report) = convert_linears(&net)?;
/// assert_eq!(layers.len(), 2);
/// assert_eq!(report.to_string(), "fc1: [32, 64] dense: dtype Float not supported: needs f16 or bf16\n\
///                                 fc2: [30, 32] dense: dtype Float not supported: needs f16 or bf16\n");
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
pub fn convert_linears<P: Prunable + ?Sized>(
    model: &P,
) -> Result<(BTreeMap<String, SemiSparseLinear>, ConversionReport)> {
    let cache = Arc::new(Mutex::new(ChoiceCache::default()));
    let mut layers = BTreeMap::new();
    let mut report = ConversionReport::default();
    for (name, module) in model.named_modules() {
        let Some(linear) = module.downcast_ref::<Linear>() else { continue };
        let layer = SemiSparseLinear::from_linear(linear)?.with_cache(Arc::clone(&cache));
        report.layers.push(LayerOutcome {
            name: name.clone(),
            shape: layer.weight().size(),
            reason: layer.fallback_reason().cloned(),
        });
        layers.insert(name, layer);
    }
    Ok((layers, report))
}
