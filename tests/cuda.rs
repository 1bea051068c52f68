//! The crate on a CUDA device: masks, `_orig`, `_mask` and the effective weight stay on the
//! parameter's device, and the deterministic methods give the same masks as on the CPU.
//!
//! Every test here always exists. It runs when the crate is built with `--features cuda-tests`
//! and `tch::Cuda::is_available()`; otherwise it prints `skipped: ...` on stderr and passes.
//! Set `TCH_PRUNE_REQUIRE_CUDA=1` to turn a skip into a failure (on a GPU machine, a binary
//! that was linked without `libtorch_cuda` would otherwise pass by skipping everything), and
//! `TCH_PRUNE_CUDA_TESTS_ON_CPU=1` to run the bodies on the CPU instead: a dry run that checks
//! the tests' own logic on a machine without a GPU (the device checks then hold trivially).
//! docs/gpu.md tells how to build these tests and run them on a GPU machine.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tch::nn::{self, Module, OptimizerConfig, VarStore};
use tch::{Device, Kind, Reduction, Tensor};
use tch_prune::{
    prunable, CustomFromMask, Identity, L1Unstructured, LnStructured, Norm, PrunedModel, Pruner,
    PruningMethod, RandomStructured, RandomUnstructured,
};

/// Set (to anything) to run the test bodies on the CPU; see the module docs.
const DRY_RUN_ON_CPU: &str = "TCH_PRUNE_CUDA_TESTS_ON_CPU";

/// The CUDA device to test on, or `None` (after saying why on stderr) when the test is skipped.
fn cuda_or_skip(test: &str) -> Option<Device> {
    if std::env::var_os(DRY_RUN_ON_CPU).is_some() {
        eprintln!("{test}: dry run on the CPU ({DRY_RUN_ON_CPU} is set), not a CUDA test");
        return Some(Device::Cpu);
    }
    let reason = if !cfg!(feature = "cuda-tests") {
        "skipped: the cuda-tests feature is off (build with --features cuda-tests)"
    } else if !tch::Cuda::is_available() {
        "skipped: no CUDA device"
    } else {
        return Some(Device::Cuda(0));
    };
    assert!(
        std::env::var_os("TCH_PRUNE_REQUIRE_CUDA").is_none(),
        "{test}: TCH_PRUNE_REQUIRE_CUDA is set but the test would be {reason}; \
         is libtorch_cuda linked (docs/gpu.md)?"
    );
    eprintln!("{test}: {reason}");
    None
}

/// Stamps out one `#[test]` per named function `fn name(cuda: Device)`, in the module
/// `on_cuda`: it calls the function with the CUDA device, or skips (passing) where there is none.
/// The bodies are plain functions so that rustfmt and clippy see them.
macro_rules! cuda_tests {
    ($($name:ident),* $(,)?) => {
        mod on_cuda {
            $(
                #[test]
                fn $name() {
                    if let Some(cuda) = super::cuda_or_skip(stringify!($name)) {
                        super::$name(cuda);
                    }
                }
            )*
        }
    };
}

/// Held by every test that seeds and draws: the generators are global, and the tests of a
/// binary run in parallel threads.
static GENERATORS: Mutex<()> = Mutex::new(());

/// Locks [`GENERATORS`] (a test that failed while holding it does not poison the others).
fn lock_generators() -> MutexGuard<'static, ()> {
    GENERATORS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Flat row-major values as `f64` (copied to the CPU).
fn values(t: &Tensor) -> Vec<f64> {
    let flat = t.to_device(Device::Cpu).to_kind(Kind::Double).contiguous().reshape([-1]);
    Vec::<f64>::try_from(&flat).expect("tensor converts to Vec<f64>")
}

/// A tie-free tensor (`sin(1 + i) * (1 + i)`) of the given shape, kind and device: magnitudes
/// and channel norms all differ, so `topk` picks the same entries on every backend.
fn distinct(shape: &[i64], kind: Kind, device: Device) -> Tensor {
    let numel: i64 = shape.iter().product();
    let v: Vec<f64> = (0..numel).map(|i| ((1 + i) as f64).sin() * (1 + i) as f64).collect();
    Tensor::from_slice(&v).reshape(shape).to_kind(kind).to_device(device)
}

/// A binary mask with every `period`-th entry zero.
fn pattern(shape: &[i64], period: i64, kind: Kind, device: Device) -> Tensor {
    let numel: i64 = shape.iter().product();
    let v: Vec<f64> = (0..numel).map(|i| if i % period == 0 { 0.0 } else { 1.0 }).collect();
    Tensor::from_slice(&v).reshape(shape).to_kind(kind).to_device(device)
}

/// Asserts `t` lives on `device`.
#[track_caller]
fn assert_on(what: &str, t: &Tensor, device: Device) {
    assert_eq!(t.device(), device, "{what}: device");
}

/// Asserts the CUDA result equals the CPU one exactly: shape, kind and values.
#[track_caller]
fn assert_same_as_cpu(what: &str, on_cuda: &Tensor, on_cpu: &Tensor) {
    assert_eq!(on_cuda.size(), on_cpu.size(), "{what}: shape");
    assert_eq!(on_cuda.kind(), on_cpu.kind(), "{what}: kind");
    assert_eq!(values(on_cuda), values(on_cpu), "{what}: values (CUDA vs CPU)");
}

/// Asserts `a` and `b` agree within `tol` (absolute) everywhere.
#[track_caller]
fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f64) {
    assert_eq!(a.size(), b.size(), "{what}: shape");
    for (i, (x, y)) in values(a).into_iter().zip(values(b)).enumerate() {
        assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs {y}");
    }
}

/// Asserts every entry of `t` where `mask` is zero is exactly zero.
#[track_caller]
fn assert_pruned_are_zero(what: &str, t: &Tensor, mask: &Tensor) {
    for (i, (m, v)) in values(mask).into_iter().zip(values(t)).enumerate() {
        assert!(m != 0.0 || v == 0.0, "{what}[{i}] is pruned but holds {v}");
    }
}

/// Every built-in method, with whether its mask is deterministic (equal on CPU and CUDA).
/// `CustomFromMask` appears twice: with a CPU mask and with a mask on `device`.
fn all_methods(shape: &[i64], device: Device) -> Vec<(Box<dyn PruningMethod>, bool)> {
    let custom = pattern(shape, 3, Kind::Float, Device::Cpu);
    vec![
        (Box::new(Identity), true),
        (Box::new(L1Unstructured::new(0.3).unwrap()), true),
        (Box::new(L1Unstructured::new(5).unwrap()), true),
        (Box::new(LnStructured::new(0.5, 2, 0).unwrap()), true),
        (Box::new(LnStructured::new(2, Norm::Inf, -1).unwrap()), true),
        (Box::new(LnStructured::new(0.4, 1, 1).unwrap()), true),
        (Box::new(CustomFromMask::new(custom.shallow_clone())), true),
        (Box::new(CustomFromMask::new(custom.to_device(device))), true),
        // Draws on the CPU generator (as PyTorch), so the same seed gives the same mask.
        (Box::new(RandomStructured::new(0.5, 1).unwrap()), true),
        (Box::new(RandomUnstructured::new(0.3).unwrap()), false),
    ]
}

/// Every method's `compute_mask` on CUDA inputs returns a mask on that device, of the kind
/// the CPU computation gives, keeping the zeros of the default mask; the deterministic
/// ones give the CPU's mask exactly.
fn every_method_masks_on_the_cuda_device(cuda: Device) {
    let _generators = lock_generators();
    let shape = [6i64, 5];
    let kinds =
        [(Kind::Float, Kind::Float), (Kind::Float, Kind::Double), (Kind::Double, Kind::Float)];
    for (importance_kind, mask_kind) in kinds {
        for (method, deterministic) in all_methods(&shape, cuda) {
            let what = format!("{method:?} on {importance_kind:?} / {mask_kind:?}");
            let importance = distinct(&shape, importance_kind, cuda);
            let default_mask = pattern(&shape, 7, mask_kind, cuda);
            tch::manual_seed(11);
            let mask = method.compute_mask(&importance, &default_mask).unwrap();
            tch::manual_seed(11);
            let cpu = method
                .compute_mask(
                    &importance.to_device(Device::Cpu),
                    &default_mask.to_device(Device::Cpu),
                )
                .unwrap();
            assert_on(&what, &mask, cuda);
            assert_eq!(mask.kind(), cpu.kind(), "{what}: kind");
            assert_eq!(mask.size(), shape, "{what}: shape");
            assert!(values(&mask).iter().all(|&v| v == 0.0 || v == 1.0), "{what}: binary");
            assert_pruned_are_zero(&what, &mask, &default_mask);
            if deterministic {
                assert_same_as_cpu(&what, &mask, &cpu);
            }
            // The method's `prune` stays on the device too.
            let pruned = method.prune(&importance, Some(&default_mask), None).unwrap();
            assert_on(&format!("{what}: prune"), &pruned, cuda);
        }
    }
}

/// `RandomStructured` draws from the CPU generator whatever the device (PyTorch's
/// `torch.rand(nch)`): after the same seed the CUDA mask equals the CPU one, and the CUDA
/// generator is not advanced.
fn random_structured_draws_on_the_cpu_and_masks_on_cuda(cuda: Device) {
    let _generators = lock_generators();
    let shape = [8i64, 6, 3];
    for (amount, dim) in [(0.5, 0), (0.34, 1), (0.7, -1)] {
        let method = RandomStructured::new(amount, dim).unwrap();
        let what = format!("{method:?}");
        let importance = distinct(&shape, Kind::Float, cuda);
        let ones = importance.ones_like();
        tch::manual_seed(5);
        let mask = method.compute_mask(&importance, &ones).unwrap();
        let cuda_draw_after = Tensor::rand([4], (Kind::Float, cuda));
        tch::manual_seed(5);
        let cuda_draw_fresh = Tensor::rand([4], (Kind::Float, cuda));
        tch::manual_seed(5);
        let cpu = method
            .compute_mask(&importance.to_device(Device::Cpu), &ones.to_device(Device::Cpu))
            .unwrap();
        assert_on(&what, &mask, cuda);
        assert_same_as_cpu(&what, &mask, &cpu);
        if cuda.is_cuda() {
            // (In a dry run on the CPU the draws come from the same generator.)
            assert_eq!(
                values(&cuda_draw_after),
                values(&cuda_draw_fresh),
                "{what}: the CUDA generator was used"
            );
        }
        let d = if dim < 0 { dim + 3 } else { dim };
        let channels = shape[d as usize];
        let kept = mask.abs().sum_dim_intlist(
            (0..3).filter(|&i| i != d).collect::<Vec<i64>>().as_slice(),
            false,
            Kind::Float,
        );
        let dead = values(&kept).iter().filter(|&&s| s == 0.0).count() as i64;
        let expected = (amount * channels as f64).round() as i64;
        assert_eq!(dead, expected, "{what}: channels pruned");
    }
}

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

/// An `Mlp` (`Linear(8, 16) -> ReLU -> Linear(16, 4)`) on `device` with fixed, tie-free values.
fn mlp(device: Device) -> (VarStore, Mlp) {
    let vs = VarStore::new(device);
    let root = vs.root();
    let net = Mlp {
        fc1: nn::linear(&root / "fc1", 8, 16, Default::default()),
        fc2: nn::linear(&root / "fc2", 16, 4, Default::default()),
    };
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let scale = if name.ends_with("bias") { 0.01 } else { 0.02 };
            let v = distinct(&var.size(), Kind::Float, device) * scale;
            var.copy_(&v);
        }
    });
    (vs, net)
}

/// Prunes the same way on any device: L1 then a second L1 (through the container) on
/// `fc1.weight`, L2-structured rows of `fc2.weight`, a custom CPU mask on `fc1.bias`.
fn prune_all(model: &mut PrunedModel<Mlp>) {
    model.l1_unstructured("fc1.weight", 0.5, None).unwrap();
    model.l1_unstructured("fc1.weight", 0.25, None).unwrap();
    model.ln_structured("fc2.weight", 0.25, 2, 0, None).unwrap();
    model.custom_from_mask("fc1.bias", &pattern(&[16], 4, Kind::Bool, Device::Cpu)).unwrap();
}

const PRUNED: [&str; 3] = ["fc1.weight", "fc2.weight", "fc1.bias"];

/// A model on CUDA: prune, forward, backward, optimizer steps, remove. `_orig`, `_mask`,
/// the gradient and the effective weight stay on CUDA; masks equal the CPU model's; the
/// trained values follow the CPU model's.
fn pruned_model_trains_on_cuda(cuda: Device) {
    let (vs, net) = mlp(cuda);
    let (cpu_vs, cpu_net) = mlp(Device::Cpu);
    let mut opt = nn::Sgd { momentum: 0.9, ..Default::default() }.build(&vs, 0.1).unwrap();
    let mut cpu_opt = nn::Sgd { momentum: 0.9, ..Default::default() }.build(&cpu_vs, 0.1).unwrap();
    let mut model = PrunedModel::new(net, &vs).unwrap();
    let mut cpu_model = PrunedModel::new(cpu_net, &cpu_vs).unwrap();
    prune_all(&mut model);
    prune_all(&mut cpu_model);

    let variables = vs.variables();
    for name in PRUNED {
        let mask = model.mask(name).unwrap();
        assert_on(&format!("{name}_mask"), mask, cuda);
        assert_on(&format!("{name}_orig"), model.orig(name).unwrap(), cuda);
        assert_on(&format!("VarStore {name}_mask"), &variables[&format!("{name}_mask")], cuda);
        assert_same_as_cpu(&format!("{name}_mask"), mask, cpu_model.mask(name).unwrap());
    }

    let x = distinct(&[32, 8], Kind::Float, Device::Cpu).sin();
    let y = distinct(&[32, 4], Kind::Float, Device::Cpu).cos();
    let (cuda_x, cuda_y) = (x.to_device(cuda), y.to_device(cuda));
    for step in 0..5 {
        let out = model.forward(&cuda_x).unwrap();
        assert_on("forward output", &out, cuda);
        let loss = out.mse_loss(&cuda_y, Reduction::Mean);
        opt.backward_step(&loss);
        let cpu_loss = cpu_model.forward(&x).unwrap().mse_loss(&y, Reduction::Mean);
        cpu_opt.backward_step(&cpu_loss);
        assert_close(&format!("loss at step {step}"), &loss, &cpu_loss, 1e-4);

        model.refresh().unwrap();
        for name in PRUNED {
            let what = format!("{name} after step {step}");
            let orig = model.orig(name).unwrap();
            let mask = model.mask(name).unwrap();
            let grad = orig.grad();
            assert_on(&format!("{what}: grad"), &grad, cuda);
            assert_pruned_are_zero(&format!("{what}: grad"), &grad, mask);
            assert_on(&format!("{what}: orig"), orig, cuda);
            assert_on(&format!("{what}: mask"), mask, cuda);
            assert_close(&what, orig, cpu_model.orig(name).unwrap(), 1e-4);
        }
        let slots = [
            ("fc1.weight", &model.model().fc1.ws),
            ("fc2.weight", &model.model().fc2.ws),
            ("fc1.bias", model.model().fc1.bs.as_ref().unwrap()),
        ];
        for (name, slot) in slots {
            let what = format!("effective {name} after step {step}");
            assert_on(&what, slot, cuda);
            assert_pruned_are_zero(&what, slot, model.mask(name).unwrap());
        }
    }

    let before = tch::no_grad(|| model.forward(&cuda_x).unwrap());
    for name in PRUNED {
        model.remove(name).unwrap();
    }
    assert!(!model.is_pruned());
    let variables = vs.variables();
    for name in PRUNED {
        assert_on(&format!("{name} after remove"), &variables[name], cuda);
        assert!(variables[name].requires_grad(), "{name} stays trainable");
    }
    let after = tch::no_grad(|| model.model().forward(&cuda_x));
    assert_on("forward after remove", &after, cuda);
    assert_close("forward after remove", &after, &before, 1e-6);
}

/// `global_unstructured` on CUDA parameters (with and without CUDA importance scores)
/// gives CUDA masks equal to the CPU computation.
fn global_unstructured_on_cuda_matches_cpu(cuda: Device) {
    let scores = distinct(&[4, 16], Kind::Float, Device::Cpu).cos();
    for with_scores in [false, true] {
        let mut masks = Vec::new();
        for device in [cuda, Device::Cpu] {
            let (vs, net) = mlp(device);
            let mut model = PrunedModel::new(net, &vs).unwrap();
            model.l1_unstructured("fc2.weight", 3, None).unwrap();
            let device_scores = scores.to_device(device);
            let importance: Vec<(&str, &Tensor)> =
                if with_scores { vec![("fc2.weight", &device_scores)] } else { vec![] };
            model
                .global_unstructured(
                    &["fc1.weight", "fc2.weight"],
                    L1Unstructured::new(0.4).unwrap(),
                    &importance,
                )
                .unwrap();
            model.refresh().unwrap();
            for name in ["fc1.weight", "fc2.weight"] {
                assert_on(&format!("{name}_mask"), model.mask(name).unwrap(), device);
                assert_on(&format!("{name}_orig"), model.orig(name).unwrap(), device);
            }
            assert_on("effective fc1.weight", &model.model().fc1.ws, device);
            masks.push([
                model.mask("fc1.weight").unwrap().copy(),
                model.mask("fc2.weight").unwrap().copy(),
            ]);
        }
        for (i, name) in ["fc1.weight", "fc2.weight"].into_iter().enumerate() {
            let what = format!("{name}_mask (importance scores: {with_scores})");
            assert_same_as_cpu(&what, &masks[0][i], &masks[1][i]);
        }
    }
}

/// A pruned checkpoint (CPU tensors in a safetensors file, as PyTorch writes it) loads
/// into an unpruned model on CUDA: `_orig` and `_mask` end up on CUDA with the file's values.
fn pruned_checkpoint_loads_onto_cuda(cuda: Device) {
    let (cpu_vs, cpu_net) = mlp(Device::Cpu);
    let mut source = PrunedModel::new(cpu_net, &cpu_vs).unwrap();
    prune_all(&mut source);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cuda-checkpoint-{}.safetensors", std::process::id()));
    let mut entries: Vec<(String, Tensor)> = cpu_vs.variables().into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&entries, &path).unwrap();

    let (vs, net) = mlp(cuda);
    let mut model = PrunedModel::new(net, &vs).unwrap();
    model.load_pruned_checkpoint(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    for name in PRUNED {
        let mask = model.mask(name).unwrap();
        let orig = model.orig(name).unwrap();
        assert_on(&format!("{name}_mask"), mask, cuda);
        assert_on(&format!("{name}_orig"), orig, cuda);
        assert_same_as_cpu(&format!("{name}_mask"), mask, source.mask(name).unwrap());
        assert_same_as_cpu(&format!("{name}_orig"), orig, source.orig(name).unwrap());
    }
    let out = model.forward(&Tensor::ones([2, 8], (Kind::Float, cuda))).unwrap();
    assert_on("forward output", &out, cuda);
}

cuda_tests! {
    every_method_masks_on_the_cuda_device,
    random_structured_draws_on_the_cpu_and_masks_on_cuda,
    pruned_model_trains_on_cuda,
    global_unstructured_on_cuda_matches_cpu,
    pruned_checkpoint_loads_onto_cuda,
}
