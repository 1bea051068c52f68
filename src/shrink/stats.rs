//! What users measure after pruning: parameters, bytes and MACs per layer ([`ModelStats`]),
//! and latency ([`median_latency`]).

use std::fmt;
use std::time::{Duration, Instant};

use tch::nn::VarStore;

/// One layer's figures in a [`ModelStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// The layer's path (its variables' names without the last component).
    pub layer: String,
    /// Trainable entries (PyTorch: `sum(p.numel() for p in layer.parameters())`).
    pub params: i64,
    /// Bytes of every variable, buffers included (the layer's share of the `state_dict`).
    pub bytes: i64,
    /// Multiply-accumulates per sample: `weight.numel() × positions` for a weight of two or
    /// more dimensions (Linear, convolution), when positions were given for the layer.
    pub macs: Option<i64>,
}

/// Parameters, bytes and MACs per layer of the model in a `VarStore`.
///
/// MACs count the multiply-accumulates of Linear and convolution weights only (not
/// normalisations, activations or additions, as `thop` and Torch-Pruning's
/// `count_ops_and_params` report them for convolutions and Linear layers): for each layer,
/// `weight.numel()` (for a convolution: `out · in/groups · kernel`) times its output positions
/// per sample, which tch cannot observe (it has no forward hooks), so you give them: `H·W` of
/// the layer's output for a convolution, the tokens per sample for a Linear layer.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::ModelStats;
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let _conv = nn::conv2d(vs.root() / "conv", 3, 8, 3, Default::default());
/// let _fc = nn::linear(vs.root() / "fc", 8, 2, Default::default());
/// let stats = ModelStats::of(&vs).with_macs(|layer| match layer {
///     "conv" => Some(30 * 30), // a 32x32 input, 3x3 kernel, no padding
///     "fc" => Some(1),
///     _ => None,
/// });
/// assert_eq!(stats.params(), 8 * 3 * 9 + 8 + 8 * 2 + 2);
/// assert_eq!(stats.macs(), 8 * 3 * 9 * 900 + 16);
/// assert_eq!(stats.bytes(), 4 * stats.params());
/// ```
///
/// PyTorch equivalent: `sum(p.numel() for p in model.parameters())` and Torch-Pruning's
/// `tp.utils.count_ops_and_params(model, example_inputs)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStats {
    /// Per layer, sorted by path.
    pub layers: Vec<LayerStats>,
    /// `weight.numel()` of every layer with a weight of two or more dimensions.
    weights: Vec<(String, i64)>,
}

impl ModelStats {
    /// Parameters and bytes of every layer in `vs` (MACs unknown until
    /// [`with_macs`](Self::with_macs)).
    pub fn of(vs: &VarStore) -> Self {
        let mut layers: Vec<LayerStats> = Vec::new();
        let mut weights = Vec::new();
        let mut vars: Vec<_> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, t) in vars {
            let (layer, leaf) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
            let numel = t.numel() as i64;
            if leaf == "weight" && t.dim() >= 2 {
                weights.push((layer.to_string(), numel));
            }
            let bytes = numel * t.kind().elt_size_in_bytes() as i64;
            let params = if t.requires_grad() { numel } else { 0 };
            match layers.iter_mut().find(|l| l.layer == layer) {
                Some(l) => {
                    l.params += params;
                    l.bytes += bytes;
                }
                None => {
                    layers.push(LayerStats { layer: layer.to_string(), params, bytes, macs: None })
                }
            }
        }
        Self { layers, weights }
    }

    /// Adds MACs: `positions(layer)` is the number of output positions per sample of each
    /// Linear or convolution layer (`None` leaves a layer's MACs unknown).
    pub fn with_macs(mut self, positions: impl Fn(&str) -> Option<i64>) -> Self {
        for l in &mut self.layers {
            let weight = self.weights.iter().find(|(n, _)| *n == l.layer).map(|(_, w)| *w);
            l.macs = weight.and_then(|w| Some(w * positions(&l.layer)?));
        }
        self
    }

    /// Trainable parameters in all.
    pub fn params(&self) -> i64 {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// Bytes of all variables.
    pub fn bytes(&self) -> i64 {
        self.layers.iter().map(|l| l.bytes).sum()
    }

    /// MACs per sample, over the layers whose MACs are known.
    pub fn macs(&self) -> i64 {
        self.layers.iter().filter_map(|l| l.macs).sum()
    }
}

/// An aligned table: one row per layer, then the totals.
impl fmt::Display for ModelStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.layers.iter().map(|l| l.layer.len()).max().unwrap_or(5).max(5);
        writeln!(f, "{:<width$}  {:>12}  {:>12}  {:>14}", "layer", "params", "bytes", "MACs")?;
        for l in &self.layers {
            let macs = l.macs.map_or_else(|| "-".to_string(), |m| m.to_string());
            writeln!(f, "{:<width$}  {:>12}  {:>12}  {:>14}", l.layer, l.params, l.bytes, macs)?;
        }
        write!(
            f,
            "{:<width$}  {:>12}  {:>12}  {:>14}",
            "total",
            self.params(),
            self.bytes(),
            self.macs()
        )
    }
}

/// The median wall time of `runs` calls of `f`, after one untimed warm-up call: a latency
/// figure robust to the odd slow run (`runs` below 1 counts as 1).
///
/// ```
/// use tch::{Device, Kind, Tensor};
/// use tch_prune::median_latency;
///
/// let x = Tensor::ones([64, 64], (Kind::Float, Device::Cpu));
/// let t = median_latency(5, || {
///     let _ = x.matmul(&x);
/// });
/// assert!(t.as_secs_f64() < 10.0);
/// ```
///
/// PyTorch equivalent: `torch.utils.benchmark.Timer(...).blocked_autorange().median`.
pub fn median_latency(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}
