//! [`SparsityReport`]: how many entries of each parameter are zero, as data (serde), as a text
//! table ([`Display`](std::fmt::Display)) and as a bar chart (SVG, and PNG with the `plot-png`
//! feature).

pub(crate) mod collect;
#[cfg(feature = "plot")]
mod plot;
mod table;

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::error::Result;
use crate::pruner::Pruner;

/// The sparsity of one parameter: its zero entries out of all of them.
///
/// Built by [`SparsityReport`]'s constructors; fields are public to read, and the struct is
/// `#[non_exhaustive]` so that columns can be added later.
///
/// ```
/// use tch::Tensor;
/// use tch_prune::SparsityReport;
///
/// let w = Tensor::from_slice(&[0.0f32, 1.0, 0.0, 2.0]).reshape([2, 2]);
/// let report = SparsityReport::from_tensors([("w", &w)])?;
/// let row = &report.parameters[0];
/// assert_eq!((row.name.as_str(), row.shape.as_slice()), ("w", &[2i64, 2][..]));
/// assert_eq!((row.numel, row.zeros, row.sparsity_percent), (4, 2, 50.0));
/// assert!(!row.masked);
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParameterReport {
    /// The parameter's `VarStore` name (`"conv1.weight"`; never `<name>_orig`).
    pub name: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// Its number of entries.
    pub numel: u64,
    /// How many of them are exactly zero (`-0.0` included, NaN not).
    pub zeros: u64,
    /// `100 * zeros / numel` (0 for a parameter without entries).
    pub sparsity_percent: f64,
    /// Whether the parameter is pruned through the `<name>_orig` / `<name>_mask`
    /// reparametrization (its value, counted here, is `orig * mask`).
    pub masked: bool,
}

/// Per-parameter and global sparsity of a model: what the PyTorch pruning tutorial prints by
/// hand (`"Sparsity in conv1.weight: 7.41%"` ... `"Global sparsity: 20.00%"`).
///
/// Zeros are counted in the value each layer computes with: `orig * mask` for a parameter
/// pruned by a [`PrunedModel`](crate::PrunedModel), the tensor itself otherwise (hard masks, plain models). An entry
/// that is zero without being pruned counts too, as in the tutorial's
/// `torch.sum(model.conv1.weight == 0)`.
///
/// * Build it with [`from_model`](Self::from_model), [`from_var_store`](Self::from_var_store)
///   or [`from_tensors`](Self::from_tensors).
/// * `Display` is an aligned table; the alternate form (`{:#}`) prints the tutorial's lines.
/// * It is plain data for serde (JSON, TOML, ...): one row per parameter plus the totals.
/// * With the default `plot` feature, `to_svg` / `write_svg`
///   draw a bar chart per parameter; the `plot-png` feature adds `to_png` / `write_png`.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{prunable, PrunedModel, SparsityReport, Pruner};
///
/// #[derive(Debug)]
/// struct Net { fc1: nn::Linear, fc2: nn::Linear }
/// prunable!(Net { fc1, fc2 });
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let net = Net {
///     fc1: nn::linear(vs.root() / "fc1", 10, 8, Default::default()),
///     fc2: nn::linear(vs.root() / "fc2", 8, 5, Default::default()),
/// };
/// let mut model = PrunedModel::new(net, &vs)?;
/// model.l1_unstructured("fc1.weight", 20, None)?;
/// model.l1_unstructured("fc2.weight", 0.5, None)?;
///
/// let report = SparsityReport::from_model(&model, Some(&["*.weight"]))?;
/// assert_eq!(report.get("fc1.weight").unwrap().sparsity_percent, 25.0);
/// assert_eq!((report.zeros, report.numel), (40, 120));
/// println!("{report}");
/// assert!(format!("{report:#}").contains("Sparsity in fc2.weight: 50.00%"));
/// assert!(format!("{report:#}").ends_with("Global sparsity: 33.33%\n"));
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SparsityReport {
    /// One row per parameter, in the model's order.
    pub parameters: Vec<ParameterReport>,
    /// Entries of all the parameters together.
    pub numel: u64,
    /// Zero entries of all the parameters together.
    pub zeros: u64,
    /// `100 * zeros / numel` over all the parameters (the tutorial's "global sparsity").
    pub sparsity_percent: f64,
}

impl SparsityReport {
    /// The sparsity of a [`PrunedModel`](crate::PrunedModel)'s parameters.
    ///
    /// `names` chooses the parameters: `None` takes **every parameter** of the model's
    /// `VarStore` (its trainable variables, pruned or not, weights and biases: PyTorch's
    /// `named_parameters()`), in PyTorch's order (layers in the order they were created, each
    /// layer's `weight` before its `bias`); `Some(list)` takes those whose
    /// name matches an entry of the list, where an entry is a full name (`"conv1.weight"`) or a
    /// glob pattern (`*` for any run of characters, dots included, `?` for one character), so
    /// `Some(&["*.weight"])` gives the tutorial's report over the weights only. Rows keep the
    /// model's order either way. Pruned parameters are named and matched by their own name,
    /// never `<name>_orig`; masks and buffers (batch-norm statistics) are not parameters.
    ///
    /// # Errors
    /// [`PruneError::UnknownParameter`](crate::PruneError::UnknownParameter) naming an entry of
    /// `names` that matches no parameter; libtorch errors while counting.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{PrunedModel, SparsityReport, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let fc = nn::linear(vs.root() / "fc", 4, 5, Default::default());
    /// let mut model = PrunedModel::with_prefix(fc, &vs, "fc")?;
    /// model.ln_structured("fc.weight", 2, 2, 0, None)?;
    ///
    /// let all = SparsityReport::from_model(&model, None)?;
    /// let names: Vec<&str> = all.parameters.iter().map(|p| p.name.as_str()).collect();
    /// assert_eq!(names, ["fc.weight", "fc.bias"]);
    /// assert_eq!(all.parameters[0].zeros, 8); // two rows of four
    /// assert!(all.parameters[0].masked);
    /// assert!(SparsityReport::from_model(&model, Some(&["fc.wieght"])).is_err());
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: the tutorial's
    /// `100. * float(torch.sum(model.conv1.weight == 0)) / float(model.conv1.weight.nelement())`
    /// per parameter, and the same over the sum for the global sparsity.
    pub fn from_model<P: Pruner>(model: &P, names: Option<&[&str]>) -> Result<Self> {
        Self::from_entries(collect::select(model.report_entries(), names)?)
    }

    /// The sparsity of the parameters of a `VarStore`, e.g. one pruned in place with
    /// [`HardMask`](crate::HardMask), or any plain model.
    ///
    /// `names` works as in [`from_model`](Self::from_model). A `<name>_orig` variable with a
    /// `<name>_mask` beside it (a `VarStore` of a [`PrunedModel`](crate::PrunedModel), or a loaded PyTorch
    /// checkpoint of a pruned model) is reported as `<name>`, with value `orig * mask`.
    ///
    /// # Errors
    /// As [`from_model`](Self::from_model).
    ///
    /// ```
    /// use tch::{nn, Device, Tensor};
    /// use tch_prune::SparsityReport;
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    /// tch::no_grad(|| fc.ws.copy_(&Tensor::from_slice(&[0.0f32, 1., 0., 2., 3., 0., 4., 5.]).reshape([2, 4])));
    ///
    /// let report = SparsityReport::from_var_store(&vs, Some(&["fc.weight"]))?;
    /// assert_eq!(report.parameters[0].zeros, 3);
    /// assert_eq!(report.sparsity_percent, 37.5);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn from_var_store(vs: &VarStore, names: Option<&[&str]>) -> Result<Self> {
        let entries = {
            let vars = crate::var_store::Vars::of(vs);
            let vars = vars.lock();
            collect::parameters(&vars, |base| {
                vars.named_variables.contains_key(&crate::reparam::mask_name(base))
            })
        };
        Self::from_entries(collect::select(entries, names)?)
    }

    /// The sparsity of the given tensors, named as given, in that order.
    ///
    /// # Errors
    /// libtorch errors while counting.
    ///
    /// ```
    /// use tch::Tensor;
    /// use tch_prune::SparsityReport;
    ///
    /// let a = Tensor::from_slice(&[0.0f32, 1.0]);
    /// let b = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 3.0]);
    /// let report = SparsityReport::from_tensors([("a", &a), ("b", &b)])?;
    /// assert_eq!((report.zeros, report.numel), (4, 6));
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn from_tensors<'a, S: Into<String>>(
        tensors: impl IntoIterator<Item = (S, &'a Tensor)>,
    ) -> Result<Self> {
        let entries = tensors
            .into_iter()
            .map(|(name, t)| collect::Entry {
                name: name.into(),
                value: collect::Value::Plain(t.shallow_clone()),
            })
            .collect();
        Self::from_entries(entries)
    }

    /// The row of parameter `name`, if the report has one.
    ///
    /// ```
    /// use tch::Tensor;
    /// use tch_prune::SparsityReport;
    ///
    /// let report = SparsityReport::from_tensors([("w", &Tensor::from_slice(&[0.0f32, 1.0]))])?;
    /// assert_eq!(report.get("w").unwrap().zeros, 1);
    /// assert!(report.get("v").is_none());
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn get(&self, name: &str) -> Option<&ParameterReport> {
        self.parameters.iter().find(|p| p.name == name)
    }

    fn from_entries(entries: Vec<collect::Entry>) -> Result<Self> {
        let mut parameters = Vec::with_capacity(entries.len());
        for entry in entries {
            let (value, masked) = match &entry.value {
                collect::Value::Plain(t) => (t.shallow_clone(), false),
                collect::Value::Masked { orig, mask } => {
                    (tch::no_grad(|| crate::reparam::effective(orig, mask))?, true)
                }
            };
            let numel = value.numel() as u64;
            let zeros = count_zeros(&value)?;
            parameters.push(ParameterReport {
                name: entry.name,
                shape: value.size(),
                numel,
                zeros,
                sparsity_percent: percent(zeros, numel),
                masked,
            });
        }
        let numel = parameters.iter().map(|p| p.numel).sum();
        let zeros = parameters.iter().map(|p| p.zeros).sum();
        Ok(Self { parameters, numel, zeros, sparsity_percent: percent(zeros, numel) })
    }
}

/// Entries equal to zero (so `-0.0` too, NaN not).
fn count_zeros(t: &Tensor) -> Result<u64> {
    if t.numel() == 0 {
        return Ok(0);
    }
    let zeros = t.f_eq(0)?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
    Ok(zeros.max(0) as u64)
}

fn percent(zeros: u64, numel: u64) -> f64 {
    if numel == 0 {
        0.0
    } else {
        100.0 * zeros as f64 / numel as f64
    }
}
