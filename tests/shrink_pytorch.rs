//! A model shrunk in Rust loads into PyTorch at its new sizes: the shrunk `VarStore` saved with
//! `vs.save("model.safetensors")` and the `ShrinkManifest` as JSON go to
//! `scripts/shrink_parity.py`, which builds the PyTorch model from the manifest's widths, loads
//! the checkpoint strictly and checks that it computes the Rust model's output.
//!
//! Run with the python of `$TCH_PRUNE_PYTHON` (set by `scripts/env.sh`; `python3` otherwise),
//! through `tests/common/python.rs`.
//! The test never skips: without a python that imports torch and safetensors it fails and says
//! why.

mod common;

use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};
use tch_prune::{presets, prunable, ChannelPruning, Coupling, Shrink};

use common::python::{run_script, TempDir};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// `SmallNet` of `scripts/shrink_parity.py`, at its full widths (16, 16, 8, 32).
#[derive(Debug)]
struct SmallNet {
    stem: nn::Conv2D,
    bn_stem: nn::BatchNorm,
    conv_a: nn::Conv2D,
    bn_a: nn::BatchNorm,
    conv_b: nn::Conv2D,
    bn_b: nn::BatchNorm,
    conv_c: nn::Conv2D,
    bn_c: nn::BatchNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
}
prunable!(SmallNet { stem, bn_stem, conv_a, bn_a, conv_b, bn_b, conv_c, bn_c, fc1, fc2 });

impl SmallNet {
    fn new(vs: &VarStore) -> Self {
        let r = vs.root();
        let conv = |name: &str, i, o, stride, bias| {
            let config = nn::ConvConfig { stride, padding: 1, bias, ..Default::default() };
            nn::conv2d(&r / name, i, o, 3, config)
        };
        let bn = |name: &str, c| nn::batch_norm2d(&r / name, c, Default::default());
        Self {
            stem: conv("stem", 3, 16, 1, false),
            bn_stem: bn("bn_stem", 16),
            conv_a: conv("conv_a", 16, 16, 1, false),
            bn_a: bn("bn_a", 16),
            conv_b: conv("conv_b", 16, 16, 1, false),
            bn_b: bn("bn_b", 16),
            conv_c: conv("conv_c", 16, 8, 2, true),
            bn_c: bn("bn_c", 8),
            fc1: nn::linear(&r / "fc1", 8 * 16, 32, Default::default()),
            fc2: nn::linear(&r / "fc2", 32, 5, Default::default()),
        }
    }
}

impl Module for SmallNet {
    fn forward(&self, x: &Tensor) -> Tensor {
        let s = x.apply(&self.stem).apply_t(&self.bn_stem, false).relu();
        let y = s
            .apply(&self.conv_a)
            .apply_t(&self.bn_a, false)
            .relu()
            .apply(&self.conv_b)
            .apply_t(&self.bn_b, false);
        let s = (s + y).relu();
        let h = s.apply(&self.conv_c).apply_t(&self.bn_c, false).relu().flatten(1, -1);
        h.apply(&self.fc1).relu().apply(&self.fc2)
    }
}

fn coupling() -> Coupling {
    Coupling::new(vec![
        presets::residual_stream(
            "stream",
            &[("stem", "bn_stem"), ("conv_b", "bn_b")],
            &["conv_a", "conv_c"],
        ),
        presets::conv_bn_chain("inner", "conv_a", false, "bn_a", &["conv_b"]),
        presets::conv_flatten_linear("head", "conv_c", true, Some("bn_c"), "fc1", 16),
        presets::ffn("ffn", "fc1", "fc2"),
    ])
    .expect("a valid coupling")
}

#[test]
fn a_shrunk_model_loads_into_pytorch_built_from_the_manifest_and_computes_the_same() -> TestResult {
    tch::manual_seed(11);
    let vs = VarStore::new(Device::Cpu);
    let mut net = SmallNet::new(&vs);
    // Trained-looking BatchNorm statistics and affine parameters.
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.contains("bn") {
                let noise = Tensor::rand(t.size().as_slice(), (Kind::Float, Device::Cpu));
                t.copy_(&(noise + 0.5));
            }
        }
    });
    let coupling = coupling();
    let selection = ChannelPruning::global(0.5)?.select(&coupling, &vs)?;
    let report = Shrink::new(&coupling, &selection).check_input(&[2, 3, 8, 8]).apply(
        &vs,
        &mut net,
        |m, x| m.forward(x),
    )?;
    assert!(report.params_after() < report.params_before());

    let dir = TempDir::new("shrink");
    vs.save(dir.join("model.safetensors"))?;
    report.manifest().write_json(dir.join("manifest.json"))?;
    let input = Tensor::randn([4, 3, 8, 8], (Kind::Float, Device::Cpu));
    let output = tch::no_grad(|| net.forward(&input));
    Tensor::write_safetensors(
        &[("input", &input), ("output", &output)],
        dir.join("io.safetensors"),
    )?;

    // run_script panics (the test fails) with the script's output when it fails.
    let stdout = run_script("shrink_parity.py", &[dir.arg()]);
    assert!(stdout.starts_with("max_abs_diff"), "{stdout}");
    Ok(())
}
