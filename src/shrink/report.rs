//! [`ShrinkReport`]: what a shrink did, before and after, and what the user must rebuild.

use std::fmt;

use tch::nn::VarStore;

use super::manifest::ShrinkManifest;
use super::stats::ModelStats;
use super::verify::Comparison;

/// Parameters and bytes of a `VarStore` at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) params: i64,
    pub(crate) bytes: i64,
}

impl Totals {
    pub(crate) fn of(vs: &VarStore) -> Self {
        let stats = ModelStats::of(vs);
        Self { params: stats.params(), bytes: stats.bytes() }
    }
}

/// The outcome of a [`Shrink`](crate::Shrink): sizes before and after, the equivalence check,
/// the layer fields changed, and the [`ShrinkManifest`]. `Display` prints it as a short text
/// report.
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
/// let selection = ChannelPruning::local(0.75)?.select(&coupling, &vs)?;
/// let report = Shrink::new(&coupling, &selection).check_input(&[4, 8]).apply_to_var_store(&vs, |x| net.forward(x))?;
/// assert_eq!(report.params_before(), 8 * 32 + 32 + 32 * 4 + 4);
/// assert_eq!(report.params_after(), 8 * 8 + 8 + 8 * 4 + 4);
/// assert_eq!(report.manifest().groups["hidden"].after, 8);
/// println!("{report}");
/// # Ok::<(), tch_prune::PruneError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ShrinkReport {
    manifest: ShrinkManifest,
    before: Totals,
    after: Totals,
    comparison: Comparison,
    tolerance: f64,
    strict: bool,
    fields: Vec<String>,
}

impl ShrinkReport {
    pub(crate) fn new(
        manifest: ShrinkManifest,
        before: Totals,
        after: Totals,
        comparison: Comparison,
        tolerance: f64,
        strict: bool,
        fields: Vec<String>,
    ) -> Self {
        Self { manifest, before, after, comparison, tolerance, strict, fields }
    }

    /// The new sizes.
    pub fn manifest(&self) -> &ShrinkManifest {
        &self.manifest
    }

    /// Trainable parameters before the shrink.
    pub fn params_before(&self) -> i64 {
        self.before.params
    }

    /// Trainable parameters after.
    pub fn params_after(&self) -> i64 {
        self.after.params
    }

    /// Bytes of all variables before.
    pub fn bytes_before(&self) -> i64 {
        self.before.bytes
    }

    /// Bytes of all variables after.
    pub fn bytes_after(&self) -> i64 {
        self.after.bytes
    }

    /// The largest absolute difference between the masked and the shrunk outputs on the
    /// check inputs.
    pub fn max_diff(&self) -> f64 {
        self.comparison.max_diff
    }

    /// The largest difference the check allowed (tolerance times the output's scale).
    pub fn allowed(&self) -> f64 {
        self.comparison.allowed(self.tolerance)
    }

    /// Whether the difference was enforced: `false` when a shrunk group crosses a
    /// normalisation over the pruned dimension
    /// ([`crosses_normalization`](crate::ChannelGroup::crosses_normalization)), where the
    /// check only requires the shrunk model to run and reports the difference.
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// The layer fields the shrink changed (`"gn: GroupNorm num_groups 8 -> 4"`).
    pub fn changed_fields(&self) -> &[String] {
        &self.fields
    }
}

impl fmt::Display for ShrinkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mb = |b: i64| b as f64 / 1e6;
        writeln!(
            f,
            "parameters {} -> {} ({:.1} %), size {:.2} MB -> {:.2} MB",
            self.before.params,
            self.after.params,
            100.0 * self.after.params as f64 / self.before.params.max(1) as f64,
            mb(self.before.bytes),
            mb(self.after.bytes)
        )?;
        for (name, g) in &self.manifest.groups {
            if g.after != g.before {
                writeln!(f, "  {name}: {} -> {} {:?}", g.before, g.after, g.unit)?;
            }
        }
        for line in &self.fields {
            writeln!(f, "  {line}")?;
        }
        let verdict = if self.strict { "passed" } else { "not enforced (normalisation)" };
        writeln!(
            f,
            "equivalence check {verdict}: max abs difference {:.3e} (allowed {:.3e})",
            self.comparison.max_diff,
            self.allowed()
        )?;
        write!(f, "rebuild: optimizers built before the shrink (their state has the old shapes)")
    }
}
