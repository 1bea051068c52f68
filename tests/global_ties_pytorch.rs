//! Global pruning of large layers whose scores tie at the threshold, against the real
//! `torch.nn.utils.prune`: `scripts/global_ties_parity.py` (run with `$TCH_PRUNE_PYTHON`, set by
//! `scripts/env.sh`, else `python3`) prunes a three-layer net globally (L1 0.5, `remove`, L1 0.3
//! with 32,000 zeros tied, L1 0.2 with zeros tied in the container's slice, then a seeded
//! RandomUnstructured 0.3) and writes the initial weights and every mask; this test repeats the
//! calls with [`PrunedModel`] from the same weights and requires the same masks, bit for bit.
//! It never skips: without a python that imports torch and safetensors it fails and says why.

use std::collections::BTreeMap;
use tch::nn;
use tch::{Device, Kind, Tensor};
use tch_prune::{prunable, L1Unstructured, PrunedModel, Pruner, RandomUnstructured};

mod common;

use common::python::{run_script, TempDir};

/// The Python side of this test.
const SCRIPT: &str = "global_ties_parity.py";

/// `RANDOM_SEED` of the script.
const RANDOM_SEED: i64 = 2024;

#[derive(Debug)]
struct Net {
    a: nn::Linear,
    b: nn::Linear,
    c: nn::Linear,
}
prunable!(Net { a, b, c });

const LAYERS: [&str; 3] = ["a", "b", "c"];
const NAMES: [&str; 3] = ["a.weight", "b.weight", "c.weight"];

#[test]
fn global_pruning_with_ties_matches_pytorch() {
    let version = run_script(SCRIPT, &["check-env"]);
    assert!(version.starts_with("torch "), "unexpected check-env output: {version:?}");
    let dir = TempDir::new("global-ties");
    run_script(SCRIPT, &["run", dir.arg()]);
    let path = dir.join("global_ties.safetensors");
    let stored: BTreeMap<String, Tensor> = Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect();
    let get = |key: String| stored.get(&key).unwrap_or_else(|| panic!("no {key}")).shallow_clone();

    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net {
        a: nn::linear(vs.root() / "a", 200, 240, Default::default()),
        b: nn::linear(vs.root() / "b", 240, 64, Default::default()),
        c: nn::linear(vs.root() / "c", 64, 10, Default::default()),
    };
    for (layer, w) in LAYERS.iter().zip([&net.a.ws, &net.b.ws, &net.c.ws]) {
        tch::no_grad(|| w.shallow_clone().copy_(&get(format!("init.{layer}.weight"))));
    }
    let mut model = PrunedModel::new(net, &vs).unwrap();

    let check = |model: &PrunedModel<Net>, step: usize| {
        for (layer, name) in LAYERS.iter().zip(NAMES) {
            let expected = get(format!("step{step}.{layer}.weight_mask"));
            let ours = model.mask(name).unwrap_or_else(|| panic!("{name} is not pruned"));
            assert_eq!(ours.kind(), Kind::Float, "step {step} {name}");
            let differ = ours.ne_tensor(&expected).sum(Kind::Int64).int64_value(&[]);
            assert_eq!(
                differ, 0,
                "step {step} {name}: {differ} mask entries differ from PyTorch's"
            );
        }
    };
    let l1 = |amount: f64| L1Unstructured::new(amount).unwrap();
    model.global_unstructured(&NAMES, l1(0.5), &[]).unwrap();
    check(&model, 1);
    for name in NAMES {
        model.remove(name).unwrap();
    }
    model.global_unstructured(&NAMES, l1(0.3), &[]).unwrap();
    check(&model, 2);
    model.global_unstructured(&NAMES, l1(0.2), &[]).unwrap();
    check(&model, 3);
    tch::manual_seed(RANDOM_SEED);
    model.global_unstructured(&NAMES, RandomUnstructured::new(0.3).unwrap(), &[]).unwrap();
    check(&model, 4);
}
