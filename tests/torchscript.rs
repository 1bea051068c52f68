//! TorchScript round trip in hard-mask mode: a module traced in Python is loaded into a
//! `VarStore` with `tch::TrainableCModule::load`, pruned with [`HardMask`], trained with
//! [`MaskedOptimizer`], saved with `TrainableCModule::save`, and loaded back in Python.
//!
//! `scripts/torchscript_roundtrip.py` (run with `$TCH_PRUNE_PYTHON`, else `python3`, through
//! `tests/common/python.rs`) traces
//! `Conv2d(1, 4, 3) -> ReLU -> flatten -> Linear(144, 3)` and, after the Rust side, checks with
//! `torch.jit.load` that the pruned entries (at the positions of the masks Rust wrote to a
//! safetensors file) are exactly zero and that the module's forward equals Rust's within 1e-5.
//! If the script cannot run, the test fails (never skips).

mod common;

use tch::nn::{self, OptimizerConfig, VarStore};
use tch::{Device, Kind, Reduction, Tensor, TrainableCModule};
use tch_prune::{
    FromFn, GradualPruner, HardMask, MaskedOptimizer, Pruner, PruningRecipe, PruningScope,
    SparsityReport,
};

use common::python::{run_script, TempDir};

#[test]
fn traced_module_pruned_trained_and_saved_in_rust_loads_in_pytorch() {
    let dir = TempDir::new("torchscript");
    let dir_arg = dir.arg();
    let names = run_script("torchscript_roundtrip.py", &["trace", dir_arg]);
    assert_eq!(
        names.split_whitespace().collect::<Vec<_>>(),
        ["conv.weight", "conv.bias", "fc.weight", "fc.bias"]
    );

    let vs = VarStore::new(Device::Cpu);
    let mut module = TrainableCModule::load(dir.join("traced.pt"), vs.root()).unwrap();
    // `TrainableCModule::load` names the variables after the parameters, `.` replaced by `_`.
    let mut var_names: Vec<String> = vs.variables().into_keys().collect();
    var_names.sort();
    assert_eq!(var_names, ["conv_bias", "conv_weight", "fc_bias", "fc_weight"]);

    let mut masks = HardMask::new(&vs);
    masks.l1_unstructured("fc_weight", 0.5, None).unwrap();
    masks.ln_structured("conv_weight", 1, 2, 0, None).unwrap(); // one of the 4 filters
    assert_eq!(masks.sparsity("fc_weight").unwrap(), 0.5);
    assert_eq!(masks.sparsity("conv_weight").unwrap(), 0.25);

    tch::manual_seed(7);
    let x = Tensor::randn([16, 1, 8, 8], (Kind::Float, Device::Cpu));
    let y = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
    module.set_train();
    let mut opt = MaskedOptimizer::new(nn::Adam::default().build(&vs, 1e-2).unwrap(), masks);
    let loss = |m: &TrainableCModule| m.forward_ts(&[&x]).unwrap().mse_loss(&y, Reduction::Mean);
    let start = tch::no_grad(|| loss(&module)).double_value(&[]);
    for _ in 0..20 {
        opt.backward_step(&loss(&module)).unwrap();
    }
    let end = tch::no_grad(|| loss(&module)).double_value(&[]);
    assert!(end < start, "loss {start} -> {end}");

    module.set_eval();
    let input = Tensor::randn([3, 1, 8, 8], (Kind::Float, Device::Cpu));
    let output = tch::no_grad(|| module.forward_ts(&[&input])).unwrap();
    module.save(dir.join("trained.pt")).unwrap();
    let masks = opt.into_parts().1;
    let pairs: Vec<(&str, &Tensor)> = masks.masks().collect();
    Tensor::write_safetensors(&pairs, dir.join("masks.safetensors")).unwrap();
    Tensor::write_safetensors(
        &[("input", &input), ("output", &output)],
        dir.join("io.safetensors"),
    )
    .unwrap();

    let report = run_script("torchscript_roundtrip.py", &["check", dir_arg]);
    assert!(report.contains("forward matches"), "unexpected report: {report}");
    eprintln!("{report}");
}

#[test]
fn traced_module_gets_schedules_recipes_and_reports_in_hard_mask_mode() {
    let dir = TempDir::new("torchscript_schedule");
    let dir_arg = dir.arg();
    run_script("torchscript_roundtrip.py", &["trace", dir_arg]);
    let vs = VarStore::new(Device::Cpu);
    let module = TrainableCModule::load(dir.join("traced.pt"), vs.root()).unwrap();
    let mut masks = HardMask::new(&vs);

    // A global schedule over both weights: 30 % at step 10, 60 % at step 20.
    let schedule = FromFn::new(|t| match t {
        10 => Some(0.3),
        20 => Some(0.6),
        _ => None,
    });
    let mut pruner = GradualPruner::new(schedule, ["conv_weight", "fc_weight"])
        .unwrap()
        .with_scope(PruningScope::Global);
    for step in 0..=20 {
        pruner.step(&mut masks, step).unwrap();
    }
    let numel = (36 + 432) as f64;
    let zeros = |name: &str| vs.variables()[name].eq(0.0).sum(Kind::Int64).int64_value(&[]);
    assert_eq!(zeros("conv_weight") + zeros("fc_weight"), (0.6 * numel).round() as i64);

    let recipe = PruningRecipe::from_json_str(
        r#"{"steps": [{"parameters": ["fc_bias"], "method": "l1_unstructured", "amount": 1}]}"#,
    )
    .unwrap();
    recipe.apply(&mut masks).unwrap();
    assert_eq!(zeros("fc_bias"), 1);

    let report = SparsityReport::from_model(&masks, None).unwrap();
    assert_eq!(report.get("fc_bias").unwrap().zeros, 1);
    assert!(report.get("conv_weight").unwrap().masked);
    let out = module.forward_ts(&[Tensor::ones([1, 1, 8, 8], (Kind::Float, Device::Cpu))]).unwrap();
    assert_eq!(out.size(), [1, 3]);
}
