//! Side by side with Torch-Pruning: the same ResNet-18 (torchvision's shapes, 224x224 inputs),
//! the same channel ratio and the same importance (group L2 magnitude), pruned and shrunk by
//! tch-prune here and by Torch-Pruning's `BasePruner` in `scripts/bench_torch_pruning.py`
//! (which pip-installs `torch-pruning` into the venv when it is missing).
//!
//! ```text
//! scripts/env.sh cargo bench --bench shrink_vs_torch_pruning
//! TCH_PRUNE_BENCH_RUNS=3 scripts/env.sh cargo bench --bench shrink_vs_torch_pruning   # quicker
//! ```
//!
//! For each setting (local 50 %, and global 50 % with kept counts rounded to 8) it prints a
//! markdown table: parameters and MACs after pruning (MACs of convolutions and Linear layers,
//! counted the same way on both sides, plus Torch-Pruning's own `count_ops_and_params`
//! figure), the time to prune (tch-prune: rank, select, shrink and the equivalence check;
//! Torch-Pruning: dependency-graph tracing, ranking and pruning), and the CPU latency of the
//! result (median of the runs after a warm-up) at batch 1 and 32, beside the masked (dense)
//! model's. Takes a few minutes on two cores.

use std::process::Command;
use std::time::{Duration, Instant};

use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};
use tch_prune::{median_latency, presets, ChannelPruning, Coupling, ModelStats, Shrink};

const SIZE: i64 = 224;

struct Side {
    params: i64,
    macs: i64,
    prune: Duration,
    latency: [Duration; 2],
}

fn latency(forward: &dyn Fn(&Tensor) -> Tensor, runs: usize) -> [Duration; 2] {
    [1, 32].map(|batch| {
        let x = Tensor::randn([batch, 3, SIZE, SIZE], (Kind::Float, Device::Cpu));
        median_latency(runs, || {
            let _ = tch::no_grad(|| forward(&x));
        })
    })
}

fn rust_side(global: bool, runs: usize) -> Result<(Side, [Duration; 2]), Box<dyn std::error::Error>> {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let net = tch::vision::resnet::resnet18(&vs.root(), 1000);
    let forward = |x: &Tensor| net.forward_t(x, false);
    let dense = latency(&forward, runs);
    let start = Instant::now();
    let coupling = Coupling::new(presets::resnet_basic("", [2, 2, 2, 2], true))?;
    let pruning = if global { ChannelPruning::global(0.5)?.round_to(8) } else { ChannelPruning::local(0.5)? };
    let selection = pruning.select(&coupling, &vs)?;
    Shrink::new(&coupling, &selection).check_input(&[1, 3, SIZE, SIZE]).apply_to_var_store(&vs, forward)?;
    let prune = start.elapsed();
    let stats = ModelStats::of(&vs).with_macs(presets::resnet_positions(SIZE, SIZE));
    let side = Side { params: stats.params(), macs: stats.macs(), prune, latency: latency(&forward, runs) };
    Ok((side, dense))
}

fn python_side(global: bool, runs: usize) -> Result<(Side, f64), Box<dyn std::error::Error>> {
    let python = std::env::var("TCH_PRUNE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_torch_pruning.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).args(["--ratio", "0.5", "--size", &SIZE.to_string(), "--runs", &runs.to_string()]);
    if global {
        cmd.args(["--global", "--round-to", "8"]);
    }
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{script} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().ok_or("no output from the python side")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let f = |k: &str| v[k].as_f64().ok_or_else(|| format!("missing {k} in {line}"));
    let secs = |k: &str| f(k).map(Duration::from_secs_f64);
    let side = Side {
        params: f("params_after")? as i64,
        macs: f("conv_fc_macs_after")? as i64,
        prune: secs("prune_s")?,
        latency: [secs("latency_b1_s")?, secs("latency_b32_s")?],
    };
    Ok((side, f("macs_after")?))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let runs: usize = std::env::var("TCH_PRUNE_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    println!("ResNet-18, {SIZE}x{SIZE}, ratio 0.5, group L2 magnitude; latency: median of {runs} runs, {} threads\n", tch::get_num_threads());
    for global in [false, true] {
        let (ours, dense) = rust_side(global, runs)?;
        let (theirs, tp_macs) = python_side(global, runs)?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!("### {}\n", if global { "global, round_to 8" } else { "local (uniform per group)" });
        println!("| | tch-prune | Torch-Pruning |");
        println!("|---|---:|---:|");
        println!("| parameters after (M) | {:.3} | {:.3} |", ours.params as f64 / 1e6, theirs.params as f64 / 1e6);
        println!(
            "| conv + Linear MACs after (G) | {:.3} | {:.3} (its own counter: {:.3}) |",
            ours.macs as f64 / 1e9,
            theirs.macs as f64 / 1e9,
            tp_macs / 1e9
        );
        println!("| time to prune (s) | {:.3} | {:.3} |", ours.prune.as_secs_f64(), theirs.prune.as_secs_f64());
        for (i, batch) in [1, 32].iter().enumerate() {
            println!(
                "| CPU latency batch {batch} (ms); dense/masked {:.1} | {:.1} | {:.1} |",
                ms(dense[i]),
                ms(ours.latency[i]),
                ms(theirs.latency[i])
            );
        }
        println!();
    }
    Ok(())
}
