//! Checkpoint parity with the real PyTorch, both directions, through `.safetensors` files:
//!
//! * a model pruned in Rust and saved with `vs.save(...)` loads, strictly, into the same
//!   architecture in PyTorch once `prune.identity` is applied to the same parameters, and
//!   computes the same output;
//! * a model pruned by `torch.nn.utils.prune` and saved with `safetensors.torch.save_file`
//!   loads into an **unpruned** Rust model with [`PrunedModel::load_pruned_checkpoint`], which
//!   prunes exactly the same parameters with the same masks and computes the same output.
//!
//! The Python side is `scripts/checkpoint_parity.py`, run with the python of `$TCH_PRUNE_PYTHON`
//! (set by `scripts/env.sh`; `python3` otherwise). These tests never skip: without a python that
//! imports torch and safetensors they fail and say why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use tch::nn::{self, Module, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};
use tch_prune::{prunable, L1Unstructured, PruneError, PrunedModel, Pruner};

mod common;

use common::python::{read_safetensors, run_script, TempDir};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The Python side of these tests.
const SCRIPT: &str = "checkpoint_parity.py";

const CPU: Device = Device::Cpu;

/// The largest difference allowed between the Rust and the PyTorch forward outputs.
const TOLERANCE: f64 = 1e-6;

/// `Net` of `scripts/checkpoint_parity.py`: conv (1 -> 3 channels, 3x3) on 6x6 inputs, then
/// `Linear(48, 10)` and `Linear(10, 4)`, with ReLUs.
#[derive(Debug)]
struct Net {
    conv1: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
}
prunable!(Net { conv1, fc1, fc2 });

impl Net {
    fn new(vs: &VarStore) -> Self {
        let root = vs.root();
        Self {
            conv1: nn::conv2d(&root / "conv1", 1, 3, 3, Default::default()),
            fc1: nn::linear(&root / "fc1", 48, 10, Default::default()),
            fc2: nn::linear(&root / "fc2", 10, 4, Default::default()),
        }
    }
}

impl Module for Net {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.conv1).relu().flatten(1, -1).apply(&self.fc1).relu().apply(&self.fc2)
    }
}

/// Fails the test (with a clear message) unless python imports torch and safetensors.
fn require_python() {
    let version = run_script(SCRIPT, &["check-env"]);
    assert!(version.starts_with("torch "), "unexpected check-env output: {version:?}");
}

fn vals(t: &Tensor) -> Vec<f64> {
    let flat = t.detach().to_kind(Kind::Double).contiguous().reshape([-1]);
    Vec::<f64>::try_from(&flat).expect("tensor converts to Vec<f64>")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes");
    vals(a).into_iter().zip(vals(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn keys(vs: &VarStore) -> BTreeSet<String> {
    vs.variables().into_keys().collect()
}

/// (a) Rust prunes and trains a little, saves the `VarStore`; PyTorch applies `prune.identity`
/// to the same parameters, loads it with `load_state_dict(strict=True)`, finds exactly the
/// file's keys with the same dtypes, and computes the Rust output within 1e-6.
#[test]
fn rust_checkpoint_loads_into_pytorch() -> TestResult {
    require_python();
    tch::manual_seed(11);
    let vs = VarStore::new(CPU);
    let mut opt = nn::Adam::default().build(&vs, 1e-2)?;
    let mut model = PrunedModel::new(Net::new(&vs), &vs).unwrap();

    model.ln_structured("conv1.weight", 1, 2, 0, None)?;
    model.l1_unstructured("fc1.weight", 0.5, None)?;
    model.l1_unstructured("fc1.weight", 0.2, None)?; // a repeated prune
    model.random_unstructured("fc1.bias", 0.3)?;
    model.global_unstructured(&["fc1.weight", "fc2.weight"], L1Unstructured::new(0.1)?, &[])?;
    let pruned = ["conv1.weight", "fc1.bias", "fc1.weight", "fc2.weight"];
    let mut listed: Vec<&str> = model.pruned_parameters().collect();
    listed.sort_unstable();
    assert_eq!(listed, pruned);

    // A few training steps. The pruned entries of each `_orig` stay non-zero, so PyTorch's
    // output matches only if it applies the masks.
    let x = Tensor::randn([5, 1, 6, 6], (Kind::Float, CPU));
    let target = Tensor::randn([5, 4], (Kind::Float, CPU));
    for _ in 0..3 {
        let loss = (model.forward(&x)? - &target).square().mean(Kind::Float);
        opt.backward_step(&loss);
    }
    let output = tch::no_grad(|| model.forward(&x))?;

    let dir = TempDir::new("rust-to-torch");
    let model_path = dir.join("model.safetensors");
    vs.save(&model_path)?;
    Tensor::write_safetensors(&[("input", &x)], dir.join("input.safetensors"))?;
    Tensor::write_safetensors(&[("output", &output)], dir.join("output.safetensors"))?;

    let saved = read_safetensors(&model_path);
    assert_eq!(saved.keys().cloned().collect::<BTreeSet<_>>(), keys(&vs));
    for name in pruned {
        assert!(saved.contains_key(&format!("{name}_orig")), "{name}_orig");
        assert!(saved.contains_key(&format!("{name}_mask")), "{name}_mask");
        assert!(!saved.contains_key(name), "{name}");
    }

    let mut args = vec!["rust-to-torch", dir.arg()];
    args.extend(pruned);
    let report = run_script(SCRIPT, &args);
    println!("{report}");
    assert!(report.starts_with("rust-to-torch:"), "{report}");
    Ok(())
}

/// The parameters `scripts/checkpoint_parity.py torch-to-rust` prunes (its `PRUNE_RECIPE`).
const TORCH_PRUNED: [&str; 4] = ["conv1.weight", "fc1.weight", "fc2.bias", "fc2.weight"];

/// (b) PyTorch prunes (`ln_structured`, `l1_unstructured` twice on one tensor, a bias) and saves
/// its `state_dict`; an unpruned Rust model loads it with `load_pruned_checkpoint`, is pruned in
/// exactly those parameters with the file's masks, and computes PyTorch's output within 1e-6.
#[test]
fn pytorch_checkpoint_loads_into_rust() -> TestResult {
    require_python();
    let dir = TempDir::new("torch-to-rust");
    let report = run_script(SCRIPT, &["torch-to-rust", dir.arg()]);
    println!("{report}");
    assert!(report.starts_with("torch-to-rust:"), "{report}");
    let model_path = dir.join("model.safetensors");
    let file = read_safetensors(&model_path);
    let io = read_safetensors(&dir.join("io.safetensors"));

    let vs = VarStore::new(CPU);
    let mut model = PrunedModel::new(Net::new(&vs), &vs).unwrap();
    let before: BTreeMap<String, usize> =
        vs.variables().iter().map(|(k, t)| (k.clone(), t.data_ptr() as usize)).collect();
    assert!(!model.is_pruned());
    model.load_pruned_checkpoint(&model_path)?;

    // Exactly the parameters PyTorch pruned.
    let mut listed: Vec<&str> = model.pruned_parameters().collect();
    listed.sort_unstable();
    assert_eq!(listed, TORCH_PRUNED);
    for name in ["conv1.weight", "conv1.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"] {
        assert_eq!(model.is_parameter_pruned(name), TORCH_PRUNED.contains(&name), "{name}");
    }
    assert_eq!(keys(&vs), file.keys().cloned().collect::<BTreeSet<_>>());

    // Masks and originals are the file's, the originals are the model's own tensors.
    for name in TORCH_PRUNED {
        let mask = model.mask(name).expect("pruned");
        let expected = &file[&format!("{name}_mask")];
        assert_eq!(mask.kind(), expected.kind(), "{name}_mask kind");
        assert_eq!(mask.size(), expected.size(), "{name}_mask shape");
        assert_eq!(vals(mask), vals(expected), "{name}_mask values");
        assert!(vals(mask).contains(&0.0), "{name}_mask prunes nothing: the recipe changed?");
        let orig = model.orig(name).expect("pruned");
        assert_eq!(vals(orig), vals(&file[&format!("{name}_orig")]), "{name}_orig values");
        assert_eq!(orig.data_ptr() as usize, before[name], "{name}_orig is the model's tensor");
    }
    for (name, tensor) in vs.variables() {
        assert_eq!(vals(&tensor), vals(&file[&name]), "{name}");
    }

    // The same forward.
    let output = tch::no_grad(|| model.forward(&io["input"]))?;
    let diff = max_abs_diff(&output, &io["output"]);
    assert!(diff <= TOLERANCE, "forward outputs differ by {diff} (> {TOLERANCE})");

    // Saving again gives back PyTorch's file, key for key and value for value.
    let resaved = dir.join("resaved.safetensors");
    vs.save(&resaved)?;
    let again = read_safetensors(&resaved);
    assert_eq!(again.keys().collect::<Vec<_>>(), file.keys().collect::<Vec<_>>());
    for (name, tensor) in &again {
        assert_eq!(tensor.kind(), file[name].kind(), "{name}");
        assert_eq!(vals(tensor), vals(&file[name]), "{name}");
    }

    // Pruning continues on top of the loaded masks.
    let mask_before = vals(model.mask("fc1.weight").expect("pruned"));
    model.l1_unstructured("fc1.weight", 0.1, None)?;
    let mask_after = vals(model.mask("fc1.weight").expect("pruned"));
    let zeros = |m: &[f64]| m.iter().filter(|&&v| v == 0.0).count();
    assert!(mask_before.iter().zip(&mask_after).all(|(&a, &b)| a != 0.0 || b == 0.0));
    assert!(zeros(&mask_after) > zeros(&mask_before));
    let history: Vec<String> =
        model.history("fc1.weight").expect("pruned").iter().map(|m| format!("{m:?}")).collect();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history[0].starts_with("Identity") && history[1].starts_with("L1Unstructured"));
    Ok(())
}

/// The parameters `scripts/checkpoint_parity.py kinds` prunes (`PRUNE_RECIPE` again).
const KINDS_PRUNED: [&str; 4] = TORCH_PRUNED;

/// (c) A checkpoint stored in other kinds than the model's (masks as bool, f64, u8 and i64;
/// originals and biases as f64, bf16 and i64) loads as PyTorch's `prune.identity` +
/// `load_state_dict` loads it: every value is copied into the model's own tensor, which keeps
/// its kind (f32) and its `requires_grad`, masks included; the values are PyTorch's bit for bit
/// and so is the output. The crate used to take the file's kinds: f64 originals and biases (the
/// next f32 forward panicked inside tch), masks of the file's kind, and an i64 entry for a
/// trainable parameter failed half-way; in a frozen model it made the bias an i64 tensor.
#[test]
fn checkpoint_entries_take_the_model_kinds() -> TestResult {
    require_python();
    let dir = TempDir::new("kinds");
    let report = run_script(SCRIPT, &["kinds", dir.arg()]);
    assert!(report.starts_with("kinds:"), "{report}");
    let model_path = dir.join("model.safetensors");
    let file = read_safetensors(&model_path);
    let expected = read_safetensors(&dir.join("expected.safetensors"));
    let io = read_safetensors(&dir.join("io.safetensors"));
    assert!(file.values().filter(|t| t.kind() != Kind::Float).count() >= 8, "the script changed?");

    for frozen in [false, true] {
        let mut vs = VarStore::new(CPU);
        let mut model = PrunedModel::new(Net::new(&vs), &vs).unwrap();
        if frozen {
            vs.freeze();
        }
        let before: BTreeMap<String, usize> =
            vs.variables().iter().map(|(k, t)| (k.clone(), t.data_ptr() as usize)).collect();
        model.load_pruned_checkpoint(&model_path)?;

        let mut listed: Vec<&str> = model.pruned_parameters().collect();
        listed.sort_unstable();
        assert_eq!(listed, KINDS_PRUNED);
        assert_eq!(keys(&vs), expected.keys().cloned().collect::<BTreeSet<_>>());
        for (name, tensor) in vs.variables() {
            let want = &expected[&name];
            assert_eq!(tensor.kind(), want.kind(), "{name}: kind (frozen: {frozen})");
            assert_eq!(vals(&tensor), vals(want), "{name}: values (frozen: {frozen})");
            let trainable = !name.ends_with("_mask") && !frozen;
            assert_eq!(tensor.requires_grad(), trainable, "{name}: requires_grad");
            let own = before.get(name.strip_suffix("_orig").unwrap_or(&name));
            if !name.ends_with("_mask") {
                assert_eq!(
                    Some(&(tensor.data_ptr() as usize)),
                    own,
                    "{name} is the model's tensor"
                );
            }
        }
        for name in KINDS_PRUNED {
            assert_eq!(model.mask(name).expect("pruned").kind(), Kind::Float, "{name}_mask");
        }
        let output = tch::no_grad(|| model.forward(&io["input"]))?;
        assert_eq!(output.kind(), Kind::Float);
        let diff = max_abs_diff(&output, &io["output"]);
        assert!(diff <= TOLERANCE, "forward outputs differ by {diff} (> {TOLERANCE})");
    }
    Ok(())
}

/// Everything a failed load must leave as it was: every `VarStore` variable (name, kind, shape,
/// strides, storage, values, `requires_grad`), the pruned parameters with their masks and
/// history lengths, and the tensors the layers compute with.
fn full_state(vs: &VarStore, model: &PrunedModel<Net>) -> Vec<String> {
    let describe = |t: &Tensor| {
        format!(
            "{:?} {:?} {:?} {:#x} {} {:?}",
            t.kind(),
            t.size(),
            t.stride(),
            t.data_ptr() as usize,
            t.requires_grad(),
            vals(t)
        )
    };
    let mut out: Vec<String> =
        vs.variables().iter().map(|(name, t)| format!("var {name}: {}", describe(t))).collect();
    for name in model.pruned_parameters() {
        let history = model.history(name).map_or(0, |h| h.len());
        let mask = describe(model.mask(name).expect("pruned"));
        out.push(format!("pruned {name}: history {history}, mask {mask}"));
    }
    let net = model.model();
    for (name, slot) in [
        ("conv1.weight", &net.conv1.ws),
        ("fc1.weight", &net.fc1.ws),
        ("fc1.bias", net.fc1.bs.as_ref().expect("bias")),
        ("fc2.weight", &net.fc2.ws),
    ] {
        out.push(format!("slot {name}: {}", describe(slot)));
    }
    out.sort();
    out
}

/// (d) A load that fails changes nothing. The model is already pruned in one parameter and its
/// `VarStore` holds one more variable, `extra.scale`, an expanded tensor (stride 0) that cannot
/// be written in place: the crate used to reparametrize the file's pruned parameters and copy
/// some values before failing on it with a libtorch error. Now every entry is checked (keys,
/// shapes, that each destination can be written) before anything changes, and the error is
/// typed. Entries of the wrong shape, a missing key and an unexpected one fail the same way.
#[test]
fn failed_checkpoint_load_changes_nothing() -> TestResult {
    let dir = TempDir::new("failed-load");
    // The checkpoint: a model pruned in conv1.weight, fc1.weight and fc2.bias, plus
    // `extra.scale`.
    tch::manual_seed(5);
    let src = VarStore::new(CPU);
    let mut pruned = PrunedModel::new(Net::new(&src), &src).unwrap();
    pruned.l1_unstructured("conv1.weight", 4, None)?;
    pruned.l1_unstructured("fc1.weight", 0.5, None)?;
    pruned.l1_unstructured("fc2.bias", 1, None)?;
    let _ = (src.root() / "extra").zeros_no_train("scale", &[2, 3]);
    let good = dir.join("good.safetensors");
    src.save(&good)?;
    let entries = read_safetensors(&good);
    let write = |name: &str, change: &dyn Fn(&mut BTreeMap<String, Tensor>)| -> PathBuf {
        let mut e: BTreeMap<String, Tensor> =
            entries.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
        change(&mut e);
        let path = dir.join(name);
        let pairs: Vec<(&str, &Tensor)> = e.iter().map(|(k, v)| (k.as_str(), v)).collect();
        Tensor::write_safetensors(&pairs, &path).expect("write");
        path
    };
    let late_shape = write("late-shape.safetensors", &|e| {
        e.insert("fc2.weight".into(), Tensor::zeros([4, 11], (Kind::Float, CPU)));
    });
    let mask_shape = write("mask-shape.safetensors", &|e| {
        e.insert("fc2.bias_mask".into(), Tensor::ones([5], (Kind::Float, CPU)));
    });
    let missing = write("missing.safetensors", &|e| {
        e.remove("conv1.bias");
    });
    let unexpected = write("unexpected.safetensors", &|e| {
        e.insert("fc3.weight".into(), Tensor::ones([2], (Kind::Float, CPU)));
    });

    // The model: conv1.weight already pruned, and `extra.scale` expanded from one row.
    tch::manual_seed(6);
    let vs = VarStore::new(CPU);
    let mut model = PrunedModel::new(Net::new(&vs), &vs).unwrap();
    model.ln_structured("conv1.weight", 1, 2, 0, None)?;
    let row = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).reshape([1, 3]);
    let _ = (vs.root() / "extra").add("scale", row.expand([2, 3], false), false);
    model.refresh()?;
    let before = full_state(&vs, &model);

    let err = model.load_pruned_checkpoint(&good).unwrap_err();
    assert_eq!(full_state(&vs, &model), before, "after {err}");
    assert!(
        matches!(&err, PruneError::InternalOverlap { name, shape, strides }
            if name == "extra.scale" && shape == &[2, 3] && strides == &[0, 1]),
        "{err:?}"
    );
    for path in [&late_shape, &mask_shape] {
        let err = model.load_pruned_checkpoint(path).unwrap_err();
        assert!(matches!(err, PruneError::ShapeMismatch { .. }), "{err:?}");
        assert_eq!(full_state(&vs, &model), before, "after {err}");
    }
    for path in [&missing, &unexpected] {
        let err = model.load_pruned_checkpoint(path).unwrap_err();
        assert!(matches!(err, PruneError::CheckpointMismatch { .. }), "{err:?}");
        assert_eq!(full_state(&vs, &model), before, "after {err}");
    }
    Ok(())
}
