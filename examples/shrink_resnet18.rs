//! A ResNet-18 made really smaller and faster: half of its channels removed, globally.
//!
//! Run with:
//!
//! ```text
//! scripts/env.sh cargo run --release --example shrink_resnet18            # ImageNet shapes
//! scripts/env.sh cargo run --release --example shrink_resnet18 -- cifar   # 32x32 inputs, 10 classes
//! ```
//!
//! The model is tch's own `tch::vision::resnet::resnet18` (torchvision's names and shapes,
//! randomly initialised; no download), reached through its `VarStore` only. Its coupling
//! comes from `presets::resnet_basic` (4 residual streams, one group per block). The steps:
//!
//! 1. rank every group's channels by group L2 magnitude and select 50 % of all channels
//!    globally (importances normalised by their group's mean, kept counts rounded up to
//!    multiples of 8);
//! 2. mask the selected channels in place (`HardMask`): the masked model, same shapes, same
//!    cost; fine-tuning would happen here;
//! 3. shrink: remove the channels from every member of every group, with the equivalence
//!    check on a seeded input;
//! 4. print parameters, MACs, size and CPU latency (batch 1 and 32) of the masked and the
//!    shrunk model, and write the manifest. A copy of the masked model is kept so that the two
//!    are timed in alternation (masked, shrunk, masked, ...); each figure is the fastest of
//!    `RUNS` runs, the least disturbed by other processes on a shared machine.
//!
//! Latencies depend on the machine; the run takes about a minute on two cores.

use std::time::{Duration, Instant};

use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};
use tch_prune::{presets, ChannelPruning, Coupling, HardMask, ModelStats, Shrink};

const RUNS: usize = 5;

/// The fastest of `RUNS` forwards of `a` and of `b` on `x`, interleaved, after one warm-up each.
fn fastest_pair(
    a: &dyn Fn(&Tensor) -> Tensor,
    b: &dyn Fn(&Tensor) -> Tensor,
    x: &Tensor,
) -> [Duration; 2] {
    let time = |f: &dyn Fn(&Tensor) -> Tensor| {
        let start = Instant::now();
        let _ = tch::no_grad(|| f(x));
        start.elapsed()
    };
    let (_, _) = (time(a), time(b));
    let mut best = [Duration::MAX; 2];
    for _ in 0..RUNS {
        best[0] = best[0].min(time(a));
        best[1] = best[1].min(time(b));
    }
    best
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cifar = std::env::args().any(|a| a == "cifar");
    let (size, classes) = if cifar { (32, 10) } else { (224, 1000) };
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let net = tch::vision::resnet::resnet18(&vs.root(), classes);
    let coupling = Coupling::new(presets::resnet_basic("", [2, 2, 2, 2], true))?;
    let positions = || presets::resnet_positions(size, size);
    let before = ModelStats::of(&vs).with_macs(positions());

    let start = Instant::now();
    let selection = ChannelPruning::global(0.5)?.round_to(8).select(&coupling, &vs)?;
    let select_time = start.elapsed();
    selection.mask(&coupling, &vs, &mut HardMask::new(&vs))?;
    // A copy of the masked model, to time beside the shrunk one.
    let mut masked_vs = VarStore::new(Device::Cpu);
    let masked_net = tch::vision::resnet::resnet18(&masked_vs.root(), classes);
    masked_vs.copy(&vs)?;
    let forward = |x: &Tensor| net.forward_t(x, false);

    let start = Instant::now();
    let report = Shrink::new(&coupling, &selection)
        .check_input(&[2, 3, size, size])
        .apply_to_var_store(&vs, forward)?;
    let shrink_time = start.elapsed();
    let after = ModelStats::of(&vs).with_macs(positions());
    let masked_fwd = |x: &Tensor| masked_net.forward_t(x, false);
    let [b1, b32] = [1, 32].map(|batch| {
        let x = Tensor::randn([batch, 3, size, size], (Kind::Float, Device::Cpu));
        fastest_pair(&masked_fwd, &forward, &x)
    });
    let (masked, shrunk) = ([b1[0], b32[0]], [b1[1], b32[1]]);

    println!("ResNet-18, {size}x{size} inputs, 50 % of channels removed globally (round_to 8)\n");
    println!("{report}\n");
    println!("| | masked | shrunk | ratio |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, a: f64, b: f64, unit: &str| {
        println!("| {name} | {a:.3}{unit} | {b:.3}{unit} | {:.2}x |", a / b);
    };
    row("parameters (M)", before.params() as f64 / 1e6, after.params() as f64 / 1e6, "");
    row("MACs (G)", before.macs() as f64 / 1e9, after.macs() as f64 / 1e9, "");
    row("size (MB)", before.bytes() as f64 / 1e6, after.bytes() as f64 / 1e6, "");
    for (i, batch) in [1, 32].iter().enumerate() {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        row(&format!("CPU latency, batch {batch} (ms)"), ms(masked[i]), ms(shrunk[i]), "");
    }
    println!(
        "\nselect {:.3} s, shrink and check {:.3} s",
        select_time.as_secs_f64(),
        shrink_time.as_secs_f64()
    );
    let path = std::env::temp_dir().join("resnet18_shrunk.manifest.json");
    report.manifest().write_json(&path)?;
    println!("manifest: {}", path.display());
    Ok(())
}
