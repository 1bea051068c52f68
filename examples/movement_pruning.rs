//! Movement pruning against magnitude pruning when fine-pruning a pre-trained model, the
//! setting of Sanh, Wolf & Rush (2020), on a synthetic task that runs on a CPU in a minute or
//! two.
//!
//! * **Pre-training** (dense): a 64-128-128-4 MLP learns a *source* task whose labels depend on
//!   inputs 0–31, so the first layer's weights on those inputs grow (it prints by how much).
//! * **Fine-pruning** (each method, from the same pre-trained weights): the *target* task's
//!   labels depend on inputs 48–55 only. The two hidden layers are pruned to 10 % and 3 % of
//!   their weights with the crate's cubic schedule (`ThresholdSchedule`), the classifier stays
//!   dense, as the paper's heads do. Weights train at a fine-tuning rate, scores at 1e-2 in
//!   their own group, as the reference.
//! * Magnitude pruning keeps the large pre-trained weights, movement pruning the weights that
//!   move away from zero while fine-tuning. Each row prints the test accuracy of the folded
//!   model (a plain model again) and the fraction of the pruned layers' weights it keeps.
//!
//! Everything is generated from fixed seeds, so the table is the same on every run (up to
//! libtorch's floating-point reduction order on other machines).
//!
//! ```sh
//! scripts/env.sh cargo run --release --example movement_pruning
//! ```

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};
use tch_prune::movement::{Binarizer, MovementConfig, MovementPruner, ThresholdSchedule};
use tch_prune::{prunable, PrunedModel};

const INPUTS: i64 = 64;
const HIDDEN: i64 = 128;
const CLASSES: i64 = 4;
const TRAIN: i64 = 8192;
const TEST: i64 = 4096;
const BATCH: i64 = 128;
const PRETRAIN_STEPS: i64 = 1500;
const FINE_STEPS: i64 = 2000;
/// The fine-tuning learning rate of the weights (and of the dense classifier).
const WEIGHT_LR: f64 = 1e-4;
/// The scores' learning rate (the reference's `mask_scores_learning_rate`).
const SCORE_LR: f64 = 1e-2;
const PRUNED: [&str; 2] = ["a.weight", "b.weight"];
/// Soft movement's final `λ` for about 10 % and 3 % kept: its sparsity follows from `λ` (the
/// reference tunes `final_lambda` per target too); picked once, by hand, for this task.
const SOFT_LAMBDA_10: f64 = 145.0;
const SOFT_LAMBDA_3: f64 = 300.0;

#[derive(Debug)]
struct Mlp {
    a: nn::Linear,
    b: nn::Linear,
    c: nn::Linear,
}
prunable!(Mlp { a, b, c });

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.c.forward(&self.b.forward(&self.a.forward(x).relu()).relu())
    }
}

fn mlp(vs: &nn::VarStore) -> Mlp {
    Mlp {
        a: nn::linear(vs.root() / "a", INPUTS, HIDDEN, Default::default()),
        b: nn::linear(vs.root() / "b", HIDDEN, HIDDEN, Default::default()),
        c: nn::linear(vs.root() / "c", HIDDEN, CLASSES, Default::default()),
    }
}

/// A task: Gaussian inputs, labels from a random linear teacher on `inputs` (a range of
/// feature indices), a training and a test split.
struct Task {
    train: (Tensor, Tensor),
    test: (Tensor, Tensor),
}

fn task(first: i64, count: i64, seed: i64) -> Task {
    tch::manual_seed(seed);
    let opts = (Kind::Float, Device::Cpu);
    let teacher = Tensor::randn([count, CLASSES], opts);
    let split = |n: i64| {
        let x = Tensor::randn([n, INPUTS], opts);
        let y = x.narrow(1, first, count).matmul(&teacher).argmax(1, false);
        (x, y)
    };
    Task { train: split(TRAIN), test: split(TEST) }
}

fn accuracy(f: impl Fn(&Tensor) -> Tensor, (x, y): &(Tensor, Tensor)) -> f64 {
    let predicted = tch::no_grad(|| f(x)).argmax(1, false);
    predicted.eq_tensor(y).to_kind(Kind::Float).mean(Kind::Float).double_value(&[])
}

/// The `step`-th minibatch of a split (a fixed cyclic order).
fn batch((x, y): &(Tensor, Tensor), step: i64) -> (Tensor, Tensor) {
    let start = (step * BATCH) % x.size()[0];
    (x.narrow(0, start, BATCH), y.narrow(0, start, BATCH))
}

/// Dense pre-training on the source task; returns the weights.
fn pretrain(source: &Task) -> Result<nn::VarStore, Box<dyn std::error::Error>> {
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = mlp(&vs);
    let mut opt = nn::Adam::default().build(&vs, 3e-3)?;
    for step in 0..PRETRAIN_STEPS {
        let (x, y) = batch(&source.train, step);
        opt.backward_step(&net.forward(&x).cross_entropy_for_logits(&y));
    }
    println!(
        "pre-trained: source-task test accuracy {:.3}",
        accuracy(|x| net.forward(x), &source.test)
    );
    let mean_abs =
        |first, count| net.a.ws.narrow(1, first, count).abs().mean(Kind::Float).double_value(&[]);
    println!(
        "first layer, mean |w|: {:.4} on the source inputs (0-31), {:.4} on the target inputs (48-55)",
        mean_abs(0, 32),
        mean_abs(48, 8)
    );
    Ok(vs)
}

/// How a method prunes to `kept`.
#[derive(Clone, Copy)]
enum Method {
    Dense,
    Magnitude,
    HardMovement,
    /// Soft movement with this final `λ` (the sparsity it reaches follows from it).
    SoftMovement(f64),
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Dense => "dense fine-tuning",
            Method::Magnitude => "magnitude",
            Method::HardMovement => "hard movement (TopK)",
            Method::SoftMovement(_) => "soft movement (SigmoidThreshold)",
        }
    }
}

/// Fine-prunes a copy of the pre-trained weights on the target task; returns the test
/// accuracy of the folded model and the kept fraction of the pruned layers.
fn fine_prune(
    pretrained: &nn::VarStore,
    target: &Task,
    method: Method,
    kept: f64,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    tch::manual_seed(2);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let mut model = PrunedModel::new(mlp(&vs), &vs)?;
    vs.copy(pretrained)?;
    let (binarizer, schedule) = match method {
        Method::Dense => (None, ThresholdSchedule::new(1.0, 1.0, 1, FINE_STEPS, 1, 2)?),
        Method::Magnitude => {
            (Some(Binarizer::Magnitude), ThresholdSchedule::new(1.0, kept, 200, FINE_STEPS, 1, 2)?)
        }
        Method::HardMovement => {
            (Some(Binarizer::TopK), ThresholdSchedule::new(1.0, kept, 200, FINE_STEPS, 1, 2)?)
        }
        Method::SoftMovement(lambda) => (
            Some(Binarizer::SigmoidThreshold),
            ThresholdSchedule::new(0.0, 0.1, 200, FINE_STEPS, 1, 2)?.with_final_lambda(lambda),
        ),
    };
    let mp = match binarizer {
        Some(b) => Some(MovementPruner::new(&mut model, &vs, &PRUNED, MovementConfig::new(b))?),
        None => None,
    };
    let mut opt = nn::Adam::default().build(&vs, WEIGHT_LR)?;
    if binarizer.is_some_and(|b| b.has_scores()) {
        opt.set_lr_group(1, SCORE_LR);
    }
    for step in 0..FINE_STEPS {
        let (x, y) = batch(&target.train, step);
        if let Some(mp) = &mp {
            mp.set_threshold(schedule.threshold(step))?;
        }
        let task_loss = model.forward(&x)?.cross_entropy_for_logits(&y);
        let loss = match &mp {
            Some(mp) => task_loss + mp.regularization()? * schedule.lambda(step),
            None => task_loss,
        };
        opt.zero_grad();
        loss.backward();
        opt.step();
    }
    let mut fraction = 1.0;
    if let Some(mp) = mp {
        mp.set_training(false);
        fraction = mp.kept_fraction()?;
        mp.fold(&mut model, &vs)?;
    }
    let net = model.model();
    Ok((accuracy(|x| net.forward(x), &target.test), fraction))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = std::time::Instant::now();
    let source = task(0, 32, 10);
    let target = task(48, 8, 20);
    let pretrained = pretrain(&source)?;
    let before = mlp_from(&pretrained)?;
    println!(
        "target task before fine-tuning: test accuracy {:.3}",
        accuracy(|x| before.forward(x), &target.test)
    );
    println!();
    println!("| method | kept (target) | kept (reached) | target test accuracy |");
    println!("|---|---|---|---|");
    let (acc, _) = fine_prune(&pretrained, &target, Method::Dense, 1.0)?;
    println!("| {} | 100 % | 100 % | {acc:.3} |", Method::Dense.name());
    for (kept, lambda) in [(0.10, SOFT_LAMBDA_10), (0.03, SOFT_LAMBDA_3)] {
        for method in [Method::Magnitude, Method::HardMovement, Method::SoftMovement(lambda)] {
            let (acc, reached) = fine_prune(&pretrained, &target, method, kept)?;
            println!(
                "| {} | {:.0} % | {:.1} % | {acc:.3} |",
                method.name(),
                kept * 100.0,
                reached * 100.0
            );
        }
    }
    println!("\n({:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// A plain model holding a copy of the weights of `vs`.
fn mlp_from(vs: &nn::VarStore) -> Result<Mlp, tch::TchError> {
    let mut copy = nn::VarStore::new(Device::Cpu);
    let net = mlp(&copy);
    copy.copy(vs)?;
    Ok(net)
}
