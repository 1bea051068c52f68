//! The PyTorch pruning tutorial's LeNet, for the recipe tests.
#![allow(dead_code)]

use tch::nn::{self, VarStore};
use tch::{Device, Kind, Tensor};
use tch_prune::{prunable, PrunedModel, Pruner};

/// The PyTorch pruning tutorial's LeNet (1 input channel, 3x3 convolutions).
#[derive(Debug)]
pub struct LeNet {
    pub conv1: nn::Conv2D,
    pub conv2: nn::Conv2D,
    pub fc1: nn::Linear,
    pub fc2: nn::Linear,
    pub fc3: nn::Linear,
}
prunable!(LeNet { conv1, conv2, fc1, fc2, fc3 });

/// A LeNet whose weights depend only on `seed`: two calls under [`super::rng::rng_lock`] give
/// identical models.
pub fn lenet(seed: i64) -> (VarStore, PrunedModel<LeNet>) {
    tch::manual_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let net = LeNet {
        conv1: nn::conv2d(&root / "conv1", 1, 6, 3, Default::default()),
        conv2: nn::conv2d(&root / "conv2", 6, 16, 3, Default::default()),
        fc1: nn::linear(&root / "fc1", 16 * 5 * 5, 120, Default::default()),
        fc2: nn::linear(&root / "fc2", 120, 84, Default::default()),
        fc3: nn::linear(&root / "fc3", 84, 10, Default::default()),
    };
    // tch starts convolution biases at zero; give them values so that zeros mean pruning.
    // In a fixed order (the map's is random), so that equal seeds give equal models.
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (name, mut var) in vars {
            if name.ends_with("bias") {
                let _ = var.uniform_(-0.5, 0.5);
            }
        }
    });
    let model = PrunedModel::new(net, &vs).unwrap();
    (vs, model)
}

pub const NAMES: [&str; 10] = [
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv2.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
    "fc3.weight",
    "fc3.bias",
];

pub fn zeros(model: &PrunedModel<LeNet>, name: &str) -> i64 {
    model.value(name).unwrap().eq(0.0).sum(Kind::Int64).int64_value(&[])
}
