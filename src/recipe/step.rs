//! [`RecipeStep`]: one step of a recipe, and how its selection resolves against a model.

use std::collections::HashSet;

use super::{LayerKind, RecipeMethod};
use crate::error::{PruneError, Result};
use crate::glob::{is_pattern, select_names};
use crate::pruner::Pruner;

/// One step of a [`PruningRecipe`](super::PruningRecipe): which parameters, and how to prune them.
///
/// The selection: `parameters` are full names or glob patterns (`*` any run of characters,
/// dots included; `?` one character), and every one of them must match a parameter of the
/// model (a typo is an error, not a no-op); `layers` are [`LayerKind`]s, each of which must be
/// present in the model. With both, the step takes the parameters **of those layers** that
/// match a pattern (`layers = ["Linear"], parameters = ["*.bias"]`: the linear biases); with
/// `layers` alone, the `weight` of each such layer (what every PyTorch pruning call on a layer
/// names); with `parameters` alone, every match. Parameters are taken once each, in the model's
/// order.
///
/// ```
/// use tch_prune::{LayerKind, RecipeMethod, RecipeStep};
///
/// let step = RecipeStep::new(RecipeMethod::l1_unstructured(0.3)?)
///     .with_layers([LayerKind::Linear])
///     .with_parameters(["*.weight"]);
/// assert_eq!(step.layers(), [LayerKind::Linear]);
/// assert_eq!(step.parameters(), ["*.weight"]);
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RecipeStep {
    pub(super) parameters: Vec<String>,
    pub(super) layers: Vec<LayerKind>,
    pub(super) method: RecipeMethod,
}

impl RecipeStep {
    /// A step pruning with `method`; give it a selection with
    /// [`with_parameters`](Self::with_parameters) and/or [`with_layers`](Self::with_layers)
    /// (a step that selects nothing is an error when applied).
    ///
    /// ```
    /// use tch_prune::{RecipeMethod, RecipeStep};
    /// let step = RecipeStep::new(RecipeMethod::identity());
    /// assert!(step.parameters().is_empty() && step.layers().is_empty());
    /// ```
    pub fn new(method: RecipeMethod) -> Self {
        Self { parameters: Vec::new(), layers: Vec::new(), method }
    }

    /// Adds parameter names or glob patterns to the selection.
    ///
    /// ```
    /// use tch_prune::{RecipeMethod, RecipeStep};
    /// let step = RecipeStep::new(RecipeMethod::identity()).with_parameters(["conv?.weight"]);
    /// assert_eq!(step.parameters(), ["conv?.weight"]);
    /// ```
    pub fn with_parameters<S: Into<String>>(
        mut self,
        patterns: impl IntoIterator<Item = S>,
    ) -> Self {
        self.parameters.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Adds layer kinds to the selection.
    ///
    /// ```
    /// use tch_prune::{LayerKind, RecipeMethod, RecipeStep};
    /// let step = RecipeStep::new(RecipeMethod::identity()).with_layers([LayerKind::Conv2D]);
    /// assert_eq!(step.layers(), [LayerKind::Conv2D]);
    /// ```
    pub fn with_layers(mut self, kinds: impl IntoIterator<Item = LayerKind>) -> Self {
        self.layers.extend(kinds);
        self
    }

    /// The parameter names and patterns.
    ///
    /// ```
    /// use tch_prune::{RecipeMethod, RecipeStep};
    /// assert!(RecipeStep::new(RecipeMethod::identity()).parameters().is_empty());
    /// ```
    pub fn parameters(&self) -> &[String] {
        &self.parameters
    }

    /// The layer kinds.
    ///
    /// ```
    /// use tch_prune::{RecipeMethod, RecipeStep};
    /// assert!(RecipeStep::new(RecipeMethod::identity()).layers().is_empty());
    /// ```
    pub fn layers(&self) -> &[LayerKind] {
        &self.layers
    }

    /// The method.
    ///
    /// ```
    /// use tch_prune::{RecipeMethod, RecipeStep};
    /// assert_eq!(RecipeStep::new(RecipeMethod::identity()).method(), &RecipeMethod::Identity);
    /// ```
    pub fn method(&self) -> &RecipeMethod {
        &self.method
    }

    /// The parameters this step (number `i`) selects among `all` (the model's, in order).
    pub(super) fn select<P: Pruner>(
        &self,
        i: usize,
        model: &P,
        all: &[&str],
    ) -> Result<Vec<String>> {
        let invalid = |field: String, reason: String| PruneError::InvalidRecipe { field, reason };
        if self.parameters.is_empty() && self.layers.is_empty() {
            return Err(invalid(
                format!("steps[{i}]"),
                "selects nothing: give `parameters` (names or patterns) and/or `layers`".into(),
            ));
        }
        let by_name = if self.parameters.is_empty() {
            None
        } else {
            let patterns = self.parameters.iter().map(String::as_str);
            Some(select_names(all, patterns).map_err(|missing| {
                let j = self.parameters.iter().position(|p| p == missing).unwrap_or(0);
                let what = if is_pattern(missing) { "the pattern" } else { "the name" };
                invalid(
                    format!("steps[{i}].parameters[{j}]"),
                    format!("{what} {missing:?} matches no parameter of the model"),
                )
            })?)
        };
        let by_layer = if self.layers.is_empty() {
            None
        } else {
            let mut of_layers = HashSet::new();
            for (j, kind) in self.layers.iter().enumerate() {
                let paths = model.layers_of_kind(*kind).ok_or_else(|| {
                    invalid(
                        format!("steps[{i}].layers[{j}]"),
                        "layer kinds need a PrunedModel; a HardMask only knows variable names: \
                         select by `parameters`"
                            .into(),
                    )
                })?;
                if paths.is_empty() {
                    return Err(invalid(
                        format!("steps[{i}].layers[{j}]"),
                        format!("the model has no {kind:?} layer"),
                    ));
                }
                for &name in all {
                    if let Some(leaf) = paths.iter().find_map(|path| leaf_of(path, name)) {
                        // Layers alone select their weight; with patterns, every parameter.
                        if by_name.is_some() || leaf == "weight" {
                            of_layers.insert(name);
                        }
                    }
                }
            }
            Some(of_layers)
        };
        let selected: Vec<String> = all
            .iter()
            .filter(|name| by_name.as_ref().is_none_or(|set| set.contains(*name)))
            .filter(|name| by_layer.as_ref().is_none_or(|set| set.contains(*name)))
            .map(|name| name.to_string())
            .collect();
        if selected.is_empty() {
            return Err(invalid(
                format!("steps[{i}]"),
                "no parameter of the selected layers matches `parameters`".into(),
            ));
        }
        Ok(selected)
    }
}

/// `name`'s own part when it is a parameter directly of the layer at `path` (`"fc.weight"` of
/// `"fc"` is `"weight"`; `"fc.sub.weight"` is not a parameter of `"fc"` itself).
fn leaf_of<'n>(path: &str, name: &'n str) -> Option<&'n str> {
    let leaf = if path.is_empty() { name } else { name.strip_prefix(path)?.strip_prefix('.')? };
    (!leaf.contains('.')).then_some(leaf)
}
