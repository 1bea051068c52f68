//! Gradual magnitude pruning during training: an MLP learns a three-arm spiral with Adam while
//! the sparsity of its weights rises from 0% to 90% along TF-MOT's `PolynomialDecay` (the cubic
//! curve of Zhu & Gupta), then fine-tunes at 90%.
//!
//! The data are generated here with a fixed seed (no download). Each epoch prints the mean
//! training loss, the train and test accuracy, the schedule's target and the sparsity reached
//! over all the pruned weights.
//!
//! Run with `scripts/env.sh cargo run --example gradual_pruning`: a debug build, which runs in
//! about 7 s on two busy CPU cores (plus the build and `env.sh`'s start); `--release` changes
//! little, the work is in libtorch.

use std::f64::consts::PI;

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};
use tch_prune::{prunable, GradualPruner, PolynomialDecay, PrunedModel};

const CLASSES: i64 = 3;
const HIDDEN: i64 = 128;
const BATCH: i64 = 60;
const EPOCHS: i64 = 30;

#[derive(Debug)]
struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc3: nn::Linear,
}
prunable!(Mlp { fc1, fc2, fc3 });

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.fc1).relu().apply(&self.fc2).relu().apply(&self.fc3)
    }
}

/// `n` points per class on `CLASSES` interleaved spiral arms, with Gaussian noise on the angle.
fn spirals(n: i64) -> (Tensor, Tensor) {
    let opts = (Kind::Float, Device::Cpu);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for class in 0..CLASSES {
        let r = Tensor::rand([n], opts) * 0.95 + 0.05;
        let theta =
            &r * 4.0 + class as f64 * 2.0 * PI / CLASSES as f64 + Tensor::randn([n], opts) * 0.2;
        xs.push(Tensor::stack(&[&r * theta.sin(), &r * theta.cos()], 1));
        ys.push(Tensor::full([n], class, (Kind::Int64, Device::Cpu)));
    }
    (Tensor::cat(&xs, 0), Tensor::cat(&ys, 0))
}

fn accuracy(model: &mut PrunedModel<Mlp>, xs: &Tensor, ys: &Tensor) -> tch_prune::Result<f64> {
    let logits = tch::no_grad(|| model.forward(xs))?;
    Ok(logits
        .argmax(-1, false)
        .eq_tensor(ys)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tch::manual_seed(0);
    let (train_x, train_y) = spirals(500);
    let (test_x, test_y) = spirals(200);
    let batches = train_x.size()[0] / BATCH;

    let vs = nn::VarStore::new(Device::Cpu);
    let net = Mlp {
        fc1: nn::linear(vs.root() / "fc1", 2, HIDDEN, Default::default()),
        fc2: nn::linear(vs.root() / "fc2", HIDDEN, HIDDEN, Default::default()),
        fc3: nn::linear(vs.root() / "fc3", HIDDEN, CLASSES, Default::default()),
    };
    // The optimizer is built before pruning: it keeps training `<name>_orig`.
    let mut opt = nn::Adam::default().build(&vs, 3e-3)?;
    let mut model = PrunedModel::new(net, &vs)?;

    // Every linear weight, each to the target on its own (PruningScope::Local). Sparsity rises
    // from 0% after epoch 5 to 90% after epoch 20, pruning every 5 steps (25 steps an epoch;
    // `end_step - begin_step` is a multiple of the frequency, so the last pruning step is
    // `end_step` and reaches the final sparsity exactly).
    let names: Vec<String> =
        model.layers_of::<nn::Linear>().iter().map(|layer| format!("{layer}.weight")).collect();
    let schedule = PolynomialDecay::new(0.0, 0.9, 5 * batches, 20 * batches)?.with_frequency(5)?;
    let mut pruner = GradualPruner::new(schedule, &names)?;

    println!("pruning {names:?}, {batches} steps an epoch");
    println!("epoch   loss  train   test  target  achieved");
    let mut step = 0;
    for epoch in 1..=EPOCHS {
        let order = Tensor::randperm(train_x.size()[0], (Kind::Int64, Device::Cpu));
        let mut total = 0.0;
        for b in 0..batches {
            pruner.step(&mut model, step)?;
            let idx = order.narrow(0, b * BATCH, BATCH);
            let logits = model.forward(&train_x.index_select(0, &idx))?;
            let loss = logits.cross_entropy_loss::<Tensor>(
                &train_y.index_select(0, &idx),
                None,
                Reduction::Mean,
                -100,
                0.0,
            );
            opt.backward_step(&loss);
            total += loss.double_value(&[]);
            step += 1;
        }
        let (target, achieved) =
            pruner.last_progress().map_or((0.0, 0.0), |p| (p.target(), p.sparsity()));
        println!(
            "{epoch:5} {:6.3} {:5.1}% {:5.1}%  {:5.1}%  {:7.1}%",
            total / batches as f64,
            100.0 * accuracy(&mut model, &train_x, &train_y)?,
            100.0 * accuracy(&mut model, &test_x, &test_y)?,
            100.0 * target,
            100.0 * achieved,
        );
    }
    for p in pruner.last_progress().map(|p| p.parameters()).unwrap_or_default() {
        println!(
            "{}: {} of {} pruned ({:.1}%)",
            p.name(),
            p.pruned(),
            p.numel(),
            100.0 * p.sparsity()
        );
    }
    Ok(())
}
