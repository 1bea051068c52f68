//! Prunes one `nn::Linear` layer with each built-in method and prints what changed.
//!
//! Run with `scripts/env.sh cargo run --example prune_layer`.

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};
use tch_prune::{
    L1Unstructured, LnStructured, PruningContainer, PruningMethod, RandomStructured,
    RandomUnstructured,
};

fn sparsity(mask: &Tensor) -> f64 {
    100.0 * mask.eq(0.0).sum(Kind::Float).double_value(&[]) / mask.numel() as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tch::manual_seed(42);
    let vs = nn::VarStore::new(Device::Cpu);
    let layer = nn::linear(vs.root() / "fc", 6, 4, Default::default());
    let x = Tensor::randn([2, 6], (Kind::Float, Device::Cpu));
    println!("fc.weight before pruning:\n{}", layer.ws);

    // PyTorch: prune.l1_unstructured(fc, "weight", amount=0.3)
    let l1 = L1Unstructured::new(0.3)?;
    let mask = l1.compute_mask(&layer.ws, &layer.ws.ones_like())?;
    println!("{l1:?}: mask ({:.1}% zeros)\n{mask}", sparsity(&mask));

    // PyTorch: prune.ln_structured(fc, "weight", amount=1, n=2, dim=0) on top of it
    let mut history = PruningContainer::new();
    history.add_pruning_method(Box::new(l1));
    history.add_pruning_method(Box::new(LnStructured::new(1, 2, 0)?));
    let importance = &layer.ws * &mask;
    let mask = history.compute_mask(&importance, &mask)?;
    println!("history {history:?}: mask ({:.1}% zeros)\n{mask}", sparsity(&mask));

    // The pruned layer computes with weight * mask.
    let pruned = tch::no_grad(|| x.matmul(&(&layer.ws * &mask).tr()) + layer.bs.as_ref().unwrap());
    println!("output before: {}", layer.forward(&x));
    println!("output pruned: {pruned}");

    // The random methods reproduce PyTorch's masks after the same seed.
    tch::manual_seed(0);
    let random = RandomUnstructured::new(0.5)?.compute_mask(&layer.ws, &layer.ws.ones_like())?;
    tch::manual_seed(0);
    let channels = RandomStructured::new(2, 1)?.compute_mask(&layer.ws, &layer.ws.ones_like())?;
    println!("random_unstructured 50% ({:.1}% zeros):\n{random}", sparsity(&random));
    println!("random_structured 2 columns ({:.1}% zeros):\n{channels}", sparsity(&channels));
    Ok(())
}
