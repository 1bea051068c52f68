//! PyTorch's pruning tutorial
//! (<https://pytorch.org/tutorials/intermediate/pruning_tutorial.html>) ported to Rust, section
//! by section, on the tutorial's LeNet.
//!
//! Run with:
//!
//! ```text
//! scripts/env.sh cargo run --example pruning_tutorial
//! ```
//!
//! It runs in a couple of seconds on CPU and shows:
//!
//! 1. conv1's parameters and buffers before pruning (no buffers);
//! 2. `random_unstructured` of 30% of `conv1.weight`: the `VarStore` now holds
//!    `conv1.weight_orig` (trainable) and `conv1.weight_mask`, and the layer computes with
//!    `orig * mask`; then `l1_unstructured` of the 3 smallest entries of `conv1.bias`;
//! 3. iterative pruning: `ln_structured` (50% of the output channels, L2 norm, `dim = 0`) on top,
//!    and the pruning history kept for `conv1.weight` (PyTorch's `PruningContainer` hook);
//! 4. the "state dict" keys (the `VarStore` names);
//! 5. `remove` on `conv1.weight`, which makes the pruning permanent;
//! 6. pruning every `Conv2d` weight by 20% and every `Linear` weight by 40%, found by layer kind
//!    (the tutorial's `named_modules()` + `isinstance` loop);
//! 7. global pruning of 20% of all the weights, with the tutorial's sparsity printout;
//! 8. a custom method, `FooBarPruningMethod`, that prunes every other entry.
//!
//! Each pruned model runs a forward pass to show that it still works. The tutorial never calls
//! `forward`; its `fc1` takes `16 * 5 * 5` inputs, which is what a 28x28 image gives with 3x3
//! kernels (a 32x32 one gives `16 * 6 * 6`), so the input here is a random `1x1x28x28` batch.
//!
//! Everything is seeded (`tch::manual_seed(42)`), so the output is the same on every run with
//! the same libtorch; it differs from the tutorial's because the weights are initialised by tch,
//! not by PyTorch.

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};
use tch_prune::{
    prunable, L1Unstructured, Prunable, PrunedModel, Pruner, PruningMethod, PruningType,
};

/// The tutorial's LeNet.
#[derive(Debug)]
struct LeNet {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc3: nn::Linear,
}

// Lists the parameter slots (`conv1.weight`, `conv1.bias`, ...) so pruning reaches the layers.
prunable!(LeNet { conv1, conv2, fc1, fc2, fc3 });

/// PyTorch's default initialisation of `Conv2d` and `Linear` (weight and bias uniform in
/// `±1/sqrt(fan_in)`); tch's defaults differ (its conv biases start at zero, which would make
/// the bias pruning below uninteresting).
fn torch_init(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

fn conv2d(path: nn::Path, c_in: i64, c_out: i64, k: i64) -> nn::Conv2D {
    let init = torch_init(c_in * k * k);
    nn::conv2d(
        path,
        c_in,
        c_out,
        k,
        nn::ConvConfig { ws_init: init, bs_init: init, ..Default::default() },
    )
}

fn linear(path: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    let init = torch_init(d_in);
    nn::linear(
        path,
        d_in,
        d_out,
        nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true },
    )
}

impl LeNet {
    fn new(vs: &nn::VarStore) -> Self {
        let root = vs.root();
        LeNet {
            // 1 input image channel, 6 output channels, 3x3 square conv kernel
            conv1: conv2d(&root / "conv1", 1, 6, 3),
            conv2: conv2d(&root / "conv2", 6, 16, 3),
            fc1: linear(&root / "fc1", 16 * 5 * 5, 120), // 5x5 image dimension
            fc2: linear(&root / "fc2", 120, 84),
            fc3: linear(&root / "fc3", 84, 10),
        }
    }
}

impl Module for LeNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let xs = xs.apply(&self.conv1).relu().max_pool2d_default(2);
        let xs = xs.apply(&self.conv2).relu().max_pool2d_default(2);
        xs.flat_view().apply(&self.fc1).relu().apply(&self.fc2).relu().apply(&self.fc3)
    }
}

/// The tutorial's custom method: prunes every other entry of the tensor.
#[derive(Debug)]
struct FooBarPruningMethod;

impl PruningMethod for FooBarPruningMethod {
    fn compute_mask(&self, _t: &Tensor, default_mask: &Tensor) -> tch_prune::Result<Tensor> {
        // mask = default_mask.clone(); mask.view(-1)[::2] = 0
        let mask = default_mask.f_contiguous()?.f_detach()?.copy();
        let _ = mask.f_view([-1])?.f_slice(0, 0, None, 2)?.f_fill_(0)?;
        Ok(mask)
    }

    fn pruning_type(&self) -> PruningType {
        PruningType::Unstructured
    }
}

/// The tutorial's `foobar_unstructured(module, name)` helper.
fn foobar_unstructured<M: Prunable>(
    model: &mut PrunedModel<M>,
    name: &str,
) -> tch_prune::Result<()> {
    model.apply(name, FooBarPruningMethod, None)
}

fn section(title: &str) {
    println!("\n=== {title} {}", "=".repeat(72usize.saturating_sub(title.len())));
}

/// `module.named_parameters()` and `module.named_buffers()` for the layer stored under
/// `prefix`. A `VarStore` has no buffers: the masks are variables that do not require grad
/// (and are not trained), so that is how they are told apart here.
fn print_parameters_and_buffers(vs: &nn::VarStore, prefix: &str, show_values: bool) {
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter_map(|(name, t)| {
            name.strip_prefix(&format!("{prefix}.")).map(|n| (n.to_string(), t))
        })
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (label, trainable) in [("named_parameters", true), ("named_buffers", false)] {
        let selected: Vec<&(String, Tensor)> =
            vars.iter().filter(|(_, t)| t.requires_grad() == trainable).collect();
        let names: Vec<&str> = selected.iter().map(|(n, _)| n.as_str()).collect();
        println!("{prefix}.{label}(): {names:?}");
        if show_values {
            for (name, t) in selected {
                println!("  {name} =\n{t}");
            }
        }
    }
}

/// Percentage of entries of `t` that are exactly zero.
fn sparsity(t: &Tensor) -> f64 {
    100.0 * zeros(t) as f64 / t.numel() as f64
}

fn zeros(t: &Tensor) -> i64 {
    t.eq(0.0).sum(Kind::Int64).int64_value(&[])
}

fn sorted_keys(vs: &nn::VarStore) -> Vec<String> {
    let mut keys: Vec<String> = vs.variables().into_keys().collect();
    keys.sort();
    keys
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tch::manual_seed(42);
    let device = Device::Cpu;
    let x = Tensor::randn([1, 1, 28, 28], (Kind::Float, device));

    section("Create a model");
    let vs = nn::VarStore::new(device);
    let mut model = PrunedModel::new(LeNet::new(&vs), &vs)?;
    let mut vars: Vec<(String, Vec<i64>)> =
        vs.variables().into_iter().map(|(name, t)| (name, t.size())).collect();
    vars.sort();
    println!("LeNet, {} parameters in the VarStore:", vars.len());
    for (name, shape) in vars {
        println!("  {name:<14} {shape:?}");
    }

    section("Inspect a Module");
    // module = model.conv1; print(list(module.named_parameters())); print(list(module.named_buffers()))
    print_parameters_and_buffers(&vs, "conv1", true);

    section("Pruning a Module");
    // prune.random_unstructured(module, name="weight", amount=0.3)
    model.random_unstructured("conv1.weight", 0.3)?;
    println!("after random_unstructured(conv1.weight, amount=0.3):");
    print_parameters_and_buffers(&vs, "conv1", false);
    println!("conv1.weight_mask =\n{}", model.mask("conv1.weight").unwrap());
    println!(
        "conv1.weight (orig * mask, what the layer computes with) =\n{}",
        model.model().conv1.ws
    );
    // print(module._forward_pre_hooks)
    println!("pruning history of conv1.weight: {:?}", model.history("conv1.weight").unwrap());

    // prune.l1_unstructured(module, name="bias", amount=3)
    model.l1_unstructured("conv1.bias", 3, None)?;
    println!("\nafter l1_unstructured(conv1.bias, amount=3):");
    print_parameters_and_buffers(&vs, "conv1", false);
    println!("conv1.bias_mask = {}", model.mask("conv1.bias").unwrap());
    println!("conv1.bias = {}", model.model().conv1.bs.as_ref().unwrap());
    println!("pruning history of conv1.bias: {:?}", model.history("conv1.bias").unwrap());

    section("Iterative Pruning");
    // prune.ln_structured(module, name="weight", amount=0.5, n=2, dim=0)
    model.ln_structured("conv1.weight", 0.5, 2, 0, None)?;
    println!(
        "conv1.weight after ln_structured(amount=0.5, n=2, dim=0) =\n{}",
        model.model().conv1.ws
    );
    // for hook in module._forward_pre_hooks.values(): ...; print(list(hook))
    let history = model.history("conv1.weight").unwrap();
    println!("pruning history of conv1.weight ({} methods):", history.len());
    for (i, method) in history.iter().enumerate() {
        println!("  {i}: {method:?}");
    }

    section("Serializing a pruned model");
    // print(model.state_dict().keys())
    println!("VarStore keys (what vs.save writes): {:?}", sorted_keys(&vs));

    section("Remove pruning re-parametrization");
    print_parameters_and_buffers(&vs, "conv1", false);
    // prune.remove(module, 'weight')
    model.remove("conv1.weight")?;
    println!("after remove(conv1.weight):");
    print_parameters_and_buffers(&vs, "conv1", false);
    println!(
        "conv1.weight keeps its zeros: {:.2}% sparsity",
        sparsity(&vs.variables()["conv1.weight"])
    );
    let y = model.forward(&x)?;
    println!("forward on a 1x1x28x28 input -> {:?}: {}", y.size(), y);

    section("Pruning multiple parameters in a model");
    let new_vs = nn::VarStore::new(device);
    let mut new_model = PrunedModel::new(LeNet::new(&new_vs), &new_vs)?;
    // for name, module in new_model.named_modules():
    //     if isinstance(module, torch.nn.Conv2d): prune.l1_unstructured(module, name='weight', amount=0.2)
    //     elif isinstance(module, torch.nn.Linear): prune.l1_unstructured(module, name='weight', amount=0.4)
    let plan: Vec<(String, f64)> = new_model
        .model()
        .named_modules() // Prunable::named_modules, generated by prunable!
        .into_iter()
        .filter_map(|(name, module)| {
            if module.is::<nn::Conv2D>() {
                Some((format!("{name}.weight"), 0.2)) // 20% of the connections of each Conv2d
            } else if module.is::<nn::Linear>() {
                Some((format!("{name}.weight"), 0.4)) // 40% of those of each Linear
            } else {
                None
            }
        })
        .collect();
    for (name, amount) in &plan {
        new_model.l1_unstructured(name, *amount, None)?;
    }
    // print(dict(new_model.named_buffers()).keys())
    let masks: Vec<String> =
        sorted_keys(&new_vs).into_iter().filter(|k| k.ends_with("_mask")).collect();
    println!("masks: {masks:?}");
    for (name, _) in &plan {
        let mask = new_model.mask(name).unwrap();
        println!("  {name}_mask: shape {:?}, {:.2}% zeros", mask.size(), sparsity(mask));
    }
    let y = new_model.forward(&x)?;
    println!("forward -> {:?}: {}", y.size(), y);

    section("Global pruning");
    let global_vs = nn::VarStore::new(device);
    let mut model = PrunedModel::new(LeNet::new(&global_vs), &global_vs)?;
    let parameters_to_prune =
        ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"];
    // prune.global_unstructured(parameters_to_prune, pruning_method=prune.L1Unstructured, amount=0.2)
    model.global_unstructured(&parameters_to_prune, L1Unstructured::new(0.2)?, &[])?;
    model.refresh()?; // the layers' weights are `orig * mask` (forward does this too)
    let net = model.model();
    let weights = [
        ("conv1.weight", &net.conv1.ws),
        ("conv2.weight", &net.conv2.ws),
        ("fc1.weight", &net.fc1.ws),
        ("fc2.weight", &net.fc2.ws),
        ("fc3.weight", &net.fc3.ws),
    ];
    for (name, w) in weights {
        println!("Sparsity in {name}: {:.2}%", sparsity(w));
    }
    let total_zeros: i64 = weights.iter().map(|(_, w)| zeros(w)).sum();
    let total: i64 = weights.iter().map(|(_, w)| w.numel() as i64).sum();
    println!("Global sparsity: {:.2}%", 100.0 * total_zeros as f64 / total as f64);
    let y = model.forward(&x)?;
    println!("forward -> {:?}: {}", y.size(), y);

    section("Extending torch.nn.utils.prune with custom pruning functions");
    let custom_vs = nn::VarStore::new(device);
    let mut model = PrunedModel::new(LeNet::new(&custom_vs), &custom_vs)?;
    // foobar_unstructured(model.fc3, name='bias'); print(model.fc3.bias_mask)
    foobar_unstructured(&mut model, "fc3.bias")?;
    println!("fc3.bias_mask = {}", model.mask("fc3.bias").unwrap());
    let y = model.forward(&x)?;
    println!("forward -> {:?}: {}", y.size(), y);
    Ok(())
}
