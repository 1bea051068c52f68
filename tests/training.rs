//! Training a pruned model with tch's optimizers follows PyTorch's trajectory step by step.
//!
//! `scripts/training_reference.py` (run with `$TCH_PRUNE_PYTHON`, else `python3`, through
//! `tests/common/python.rs`) trains
//! `Linear(8, 16) -> ReLU -> Linear(16, 4)` with the real `torch.nn.utils.prune` and writes the
//! initial state, the masks, and the parameters and loss after every step. These tests start
//! from the same state, build the optimizer before pruning (as the script does), prune with
//! [`PrunedModel`] and train with `PrunedModel::forward` + `opt.backward_step`, checking that:
//!
//! * the masks are PyTorch's, exactly;
//! * after every step the pruned entries of the effective weight (`orig * mask`, what the layer
//!   computes with) are exactly zero;
//! * the loss of every step and every parameter (`weight_orig`, `bias`) after every step match
//!   PyTorch's within `1e-5` (absolute or relative): the two libraries run the same libtorch
//!   kernels, but PyTorch's Adam uses `lerp` where libtorch's C++ Adam uses `mul` + `add`, so
//!   the last bits may differ.
//!
//! The script's docstring lists the scenarios. If it cannot run, the tests fail (never skip).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tch::nn::{self, Module, OptimizerConfig, VarStore};
use tch::{Device, Kind, Reduction, Tensor};
use tch_prune::{prunable, PrunedModel, Pruner};

use common::python::{read_safetensors, run_script};

/// Steps per scenario; the script's `STEPS`.
const STEPS: usize = 10;
/// The second pruning of `sgd_reprune` comes after this many steps; the script's
/// `REPRUNE_AFTER`.
const REPRUNE_AFTER: usize = 5;
/// Absolute tolerance against PyTorch's values.
const ATOL: f64 = 1e-5;
/// Relative tolerance against PyTorch's values.
const RTOL: f64 = 1e-5;
/// The layers, by `VarStore` prefix; both weights are pruned.
const LAYERS: [&str; 2] = ["fc1", "fc2"];

#[derive(Debug)]
struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
}
prunable!(Mlp { fc1, fc2 });

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.fc1).relu().apply(&self.fc2)
    }
}

/// Which of the script's runs to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scenario {
    /// `SGD(lr=0.1, momentum=0.9)`.
    Sgd,
    /// `Adam(lr=1e-2)`.
    Adam,
    /// SGD, a second `l1_unstructured(fc1, 0.25)` after `REPRUNE_AFTER` steps, `remove` at the
    /// end.
    SgdReprune,
}

impl Scenario {
    fn key(self) -> &'static str {
        match self {
            Scenario::Sgd => "sgd",
            Scenario::Adam => "adam",
            Scenario::SgdReprune => "sgd_reprune",
        }
    }

    fn optimizer(self, vs: &VarStore) -> nn::Optimizer {
        match self {
            Scenario::Sgd | Scenario::SgdReprune => {
                nn::Sgd { momentum: 0.9, ..Default::default() }.build(vs, 0.1)
            }
            Scenario::Adam => nn::Adam::default().build(vs, 1e-2),
        }
        .expect("optimizer builds")
    }
}

/// The script's output, by key.
struct Reference(BTreeMap<String, Tensor>);

impl Reference {
    /// Runs the script once per test binary and loads its output.
    fn load() -> Self {
        static PATH: OnceLock<PathBuf> = OnceLock::new();
        Self(read_safetensors(PATH.get_or_init(run_reference_script)))
    }

    #[track_caller]
    fn get(&self, key: &str) -> &Tensor {
        self.0.get(key).unwrap_or_else(|| panic!("no tensor {key:?} in the reference output"))
    }
}

/// Runs `scripts/training_reference.py` into the target's scratch directory and returns the
/// output path. Panics (the test fails) with what went wrong when Python or its packages are
/// missing.
fn run_reference_script() -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("training_reference.safetensors");
    let arg = out.to_str().expect("utf-8 target path");
    run_script("training_reference.py", &[arg]);
    out
}

/// Flat row-major values as `f64`.
fn values(t: &Tensor) -> Vec<f64> {
    let flat = t.to_device(Device::Cpu).to_kind(Kind::Double).contiguous().reshape([-1]);
    Vec::<f64>::try_from(&flat).expect("tensor converts to Vec<f64>")
}

/// Asserts `actual` equals `expected` exactly: shape, kind and every value.
#[track_caller]
fn assert_exact(what: &str, actual: &Tensor, expected: &Tensor) {
    assert_eq!(actual.size(), expected.size(), "{what}: shape");
    assert_eq!(actual.kind(), expected.kind(), "{what}: kind");
    assert_eq!(values(actual), values(expected), "{what}: values");
}

/// Asserts `actual` is within `ATOL` or `RTOL` of `expected` everywhere; returns the largest
/// absolute difference.
#[track_caller]
fn assert_close(what: &str, actual: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(actual.size(), expected.size(), "{what}: shape");
    let mut max = 0.0f64;
    for (i, (a, e)) in values(actual).into_iter().zip(values(expected)).enumerate() {
        assert!(
            approx::relative_eq!(a, e, epsilon = ATOL, max_relative = RTOL),
            "{what}[{i}]: {a} here, {e} in PyTorch (difference {})",
            (a - e).abs()
        );
        max = max.max((a - e).abs());
    }
    max
}

/// Asserts every entry of `effective` where `mask` is zero is exactly zero.
#[track_caller]
fn assert_pruned_are_zero(what: &str, effective: &Tensor, mask: &Tensor) {
    let pruned = values(mask).into_iter().zip(values(effective)).enumerate();
    for (i, (m, v)) in pruned {
        assert!(m != 0.0 || v == 0.0, "{what}[{i}] is pruned but holds {v}");
    }
}

/// The largest differences from PyTorch seen in one scenario.
#[derive(Debug, Default)]
struct MaxDiff {
    loss: f64,
    weight_orig: f64,
    bias: f64,
    removed: f64,
}

/// A fresh model holding the script's initial parameters.
fn initial_model(reference: &Reference) -> (VarStore, Mlp) {
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let net = Mlp {
        fc1: nn::linear(&root / "fc1", 8, 16, Default::default()),
        fc2: nn::linear(&root / "fc2", 16, 4, Default::default()),
    };
    let variables = vs.variables();
    assert_eq!(variables.len(), 4, "fc1/fc2 weight and bias");
    tch::no_grad(|| {
        for (name, var) in &variables {
            let mut var = var.shallow_clone();
            var.f_copy_(reference.get(&format!("init.{name}"))).expect("initial values fit");
        }
    });
    (vs, net)
}

/// Replays one scenario of the script and checks it step by step.
fn replay(scenario: Scenario) -> MaxDiff {
    let reference = Reference::load();
    let key = scenario.key();
    let (vs, net) = initial_model(&reference);
    let x = reference.get("x");
    let y = reference.get("y");

    // Built before pruning, as in the script: it holds the tensors that become `weight_orig`.
    let mut opt = scenario.optimizer(&vs);
    let mut model = PrunedModel::new(net, &vs).unwrap();
    model.l1_unstructured("fc1.weight", 0.5, None).unwrap();
    model.ln_structured("fc2.weight", 0.25, 2, 0, None).unwrap();
    for layer in LAYERS {
        let name = format!("{layer}.weight");
        assert_exact(
            &format!("{name}_mask"),
            model.mask(&name).unwrap(),
            reference.get(&format!("mask.{name}")),
        );
    }

    let losses = values(reference.get(&format!("{key}.loss")));
    assert_eq!(losses.len(), STEPS, "{key}.loss");
    let mut max = MaxDiff::default();
    for (step, &expected_loss) in losses.iter().enumerate() {
        let loss = model.forward(x).unwrap().mse_loss(y, Reduction::Mean);
        opt.backward_step(&loss);
        let loss = loss.double_value(&[]);
        assert!(
            approx::relative_eq!(loss, expected_loss, epsilon = ATOL, max_relative = RTOL),
            "{key} step {step}: loss {loss} here, {expected_loss} in PyTorch"
        );
        max.loss = max.loss.max((loss - expected_loss).abs());

        model.refresh().unwrap();
        let variables = vs.variables();
        for layer in LAYERS {
            let prefix = format!("{key}.step{step}.{layer}");
            let name = format!("{layer}.weight");
            let orig = model.orig(&name).unwrap();
            let mask = model.mask(&name).unwrap();
            assert!(orig.requires_grad(), "{name}_orig stays trainable");
            assert!(!mask.requires_grad(), "{name}_mask is not trainable");
            max.weight_orig = max.weight_orig.max(assert_close(
                &format!("{prefix}.weight_orig"),
                &variables[&format!("{name}_orig")],
                reference.get(&format!("{prefix}.weight_orig")),
            ));
            max.bias = max.bias.max(assert_close(
                &format!("{prefix}.bias"),
                &variables[&format!("{layer}.bias")],
                reference.get(&format!("{prefix}.bias")),
            ));
            let slot = match layer {
                "fc1" => &model.model().fc1.ws,
                _ => &model.model().fc2.ws,
            };
            assert_pruned_are_zero(&format!("{prefix}.weight"), slot, mask);
            assert_exact(&format!("{prefix}.weight"), slot, &(orig * mask));
        }

        if scenario == Scenario::SgdReprune && step + 1 == REPRUNE_AFTER {
            model.l1_unstructured("fc1.weight", 0.25, None).unwrap();
            assert_exact(
                "fc1.weight_mask after the second pruning",
                model.mask("fc1.weight").unwrap(),
                reference.get(&format!("{key}.mask2.fc1.weight")),
            );
            assert_eq!(model.history("fc1.weight").unwrap().len(), 2);
        }
    }

    if scenario == Scenario::SgdReprune {
        let masks: Vec<Tensor> =
            LAYERS.iter().map(|l| model.mask(&format!("{l}.weight")).unwrap().copy()).collect();
        for layer in LAYERS {
            model.remove(&format!("{layer}.weight")).unwrap();
        }
        assert!(!model.is_pruned());
        let variables = vs.variables();
        for (layer, mask) in LAYERS.iter().zip(&masks) {
            let name = format!("{layer}.weight");
            assert!(!variables.contains_key(&format!("{name}_orig")));
            assert!(!variables.contains_key(&format!("{name}_mask")));
            assert_pruned_are_zero(&format!("{name} after remove"), &variables[&name], mask);
            max.removed = max.removed.max(assert_close(
                &format!("{name} after remove"),
                &variables[&name],
                reference.get(&format!("{key}.removed.{name}")),
            ));
        }
    }
    println!("{key}: max |difference| from PyTorch over {STEPS} steps: {max:?}");
    max
}

#[test]
fn tch_adam_defaults_are_torchs() {
    // torch.optim.Adam: betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False.
    let adam = nn::Adam::default();
    assert_eq!(
        (adam.beta1, adam.beta2, adam.eps, adam.wd, adam.amsgrad),
        (0.9, 0.999, 1e-8, 0.0, false)
    );
}

#[test]
fn sgd_momentum_training_matches_pytorch() {
    replay(Scenario::Sgd);
}

#[test]
fn adam_training_matches_pytorch() {
    replay(Scenario::Adam);
}

#[test]
fn repruning_during_training_then_remove_matches_pytorch() {
    let max = replay(Scenario::SgdReprune);
    assert!(max.removed <= ATOL);
}
