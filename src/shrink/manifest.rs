//! [`ShrinkManifest`]: the sizes of a shrunk model as JSON, to rebuild it from configuration
//! and load its shrunk weights, in Rust or in PyTorch.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

use super::coupling::ResolvedGroup;
use super::group::Unit;
use super::selection::Selection;
use crate::error::{PruneError, Result};

/// The new sizes of a shrunk model: every group's unit count (channels, heads, normalisation
/// groups) before and after and which units it kept, every layer's output and input size, and
/// every variable's shape. Written next to the shrunk weights (`vs.save("model.safetensors")`),
/// it is what a user needs to build the smaller model from configuration (an
/// `intermediate_size`, a head count) before loading them, which is where hand-patched configs
/// go wrong.
///
/// ```
/// use tch_prune::ShrinkManifest;
///
/// let json = r#"{"groups": {"ffn": {"unit": "channels", "before": 8, "after": 4, "kept": [0, 2, 5, 7]}},
///                "layers": {"fc1": {"out": 4, "in": 3}}, "parameters": {"fc1.weight": [4, 3]}}"#;
/// let manifest = ShrinkManifest::from_json(json)?;
/// assert_eq!(manifest.groups["ffn"].after, 4);
/// assert_eq!(manifest.layers["fc1"].input, Some(3));
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
///
/// Torch-Pruning equivalent: none (it pickles the whole model; head counts and configs are
/// patched by hand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShrinkManifest {
    /// Per group: its units before and after, and the kept units' original indices.
    pub groups: BTreeMap<String, GroupSize>,
    /// Per layer with a `weight`: `out` (dim 0; the feature count of a 1-D weight) and `in`
    /// (dim 1: a Linear's in-features, a convolution's in-channels per group).
    pub layers: BTreeMap<String, LayerSize>,
    /// Every variable's shape after the shrink.
    pub parameters: BTreeMap<String, Vec<i64>>,
}

/// One group's size in a [`ShrinkManifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSize {
    /// What the units are.
    pub unit: Unit,
    /// Units before the shrink.
    pub before: i64,
    /// Units after.
    pub after: i64,
    /// The kept units, by their index before the shrink.
    pub kept: Vec<i64>,
}

/// One layer's size in a [`ShrinkManifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSize {
    /// Size of the weight's dim 0.
    pub out: i64,
    /// Size of the weight's dim 1, for weights of two or more dimensions.
    #[serde(rename = "in", default, skip_serializing_if = "Option::is_none")]
    pub input: Option<i64>,
}

impl ShrinkManifest {
    /// The manifest of the model in `vs` after shrinking `resolved` by `selection`.
    pub(crate) fn of(vs: &VarStore, resolved: &[ResolvedGroup], selection: &Selection) -> Self {
        let groups = resolved
            .iter()
            .map(|g| {
                let removed = selection.removed_or_empty(&g.name);
                let kept: Vec<i64> =
                    (0..g.units).filter(|u| removed.binary_search(u).is_err()).collect();
                let size =
                    GroupSize { unit: g.unit, before: g.units, after: kept.len() as i64, kept };
                (g.name.clone(), size)
            })
            .collect();
        let parameters: BTreeMap<String, Vec<i64>> =
            vs.variables().into_iter().map(|(name, t)| (name, t.size())).collect();
        let layers = parameters
            .iter()
            .filter_map(|(name, shape)| {
                let layer = name.strip_suffix(".weight")?;
                let out = *shape.first()?;
                Some((layer.to_string(), LayerSize { out, input: shape.get(1).copied() }))
            })
            .collect();
        Self { groups, layers, parameters }
    }

    /// The manifest as pretty-printed JSON.
    ///
    /// # Errors
    /// [`PruneError::InvalidManifest`] if serialisation fails (it does not for manifests this
    /// crate builds).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|err| PruneError::InvalidManifest { reason: err.to_string() })
    }

    /// Reads a manifest from JSON.
    ///
    /// # Errors
    /// [`PruneError::InvalidManifest`] for malformed JSON or missing fields.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json)
            .map_err(|err| PruneError::InvalidManifest { reason: err.to_string() })
    }

    /// Writes the JSON to `path`.
    ///
    /// # Errors
    /// [`PruneError::Io`] when the file cannot be written.
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()?).map_err(|source| PruneError::Io {
            operation: "write",
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads the JSON at `path`.
    ///
    /// # Errors
    /// [`PruneError::Io`] when the file cannot be read, [`PruneError::InvalidManifest`] when
    /// it is not a manifest.
    pub fn read_json(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PruneError::Io {
            operation: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text)
    }
}
