//! Side by side with Torch-Pruning: the same ResNet-18 (torchvision's shapes, 224x224 inputs),
//! the same channel ratio and the same importance (group L2 magnitude), pruned and shrunk by
//! tch-prune here and by Torch-Pruning's `BasePruner` in `scripts/bench_torch_pruning.py`
//! (which pip-installs `torch-pruning` into the venv when it is missing). The PyTorch model
//! loads the tch model's initial weights, so both sides rank the same numbers.
//!
//! ```text
//! scripts/env.sh cargo bench --bench shrink_vs_torch_pruning
//! TCH_PRUNE_BENCH_RUNS=3 TCH_PRUNE_BENCH_REPEATS=1 scripts/env.sh cargo bench --bench shrink_vs_torch_pruning
//! ```
//!
//! For each setting (local 50 %, and global 50 %; no rounding, since Torch-Pruning rounds kept
//! counts down and tch-prune rounds them up) it prints a
//! markdown table: parameters and MACs after pruning (MACs of convolutions and Linear layers,
//! counted the same way on both sides, plus Torch-Pruning's own `count_ops_and_params`
//! figure), the time to prune (the fastest of several fresh models; tch-prune: rank, select, shrink and
//! the equivalence check on one 224x224 input; Torch-Pruning: dependency-graph tracing,
//! ranking and pruning), and the CPU latency at batch 1 and 32 (the fastest of the runs) of the
//! dense model (the masked model has the dense shapes and cost) and of the result, interleaved
//! in each process so that the ratio holds under load from other processes. Both sides report
//! the fastest run: on a shared machine it is the least disturbed one. Takes a few minutes on two cores.

use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tch::nn::{self, ModuleT, VarStore};
use tch::{Device, Kind, Tensor};
use tch_prune::{presets, ChannelPruning, Coupling, ModelStats, Shrink};

const SIZE: i64 = 224;

struct Side {
    params: i64,
    macs: i64,
    /// Fastest time to prune over the repeats (tch-prune: select, then shrink and check).
    prune: Duration,
    /// tch-prune only: the split of `prune` into select and shrink-and-check.
    split: Option<(Duration, Duration)>,
    /// Latency at batch 1 and 32: `[dense, pruned]` each, interleaved in one process.
    latency: [[Duration; 2]; 2],
}

/// The fastest of `times`: on a shared machine the least disturbed run, the best estimate of
/// the uncontended cost (both sides use the same statistic).
fn fastest(times: Vec<Duration>) -> Duration {
    times.into_iter().min().unwrap_or_default()
}

/// The fastest latencies of `a` and `b` at `batch`, their runs interleaved (a, b, a, b, ...) so
/// that load from other processes weighs on both alike (one warm-up each).
fn latencies(
    a: &dyn Fn(&Tensor) -> Tensor,
    b: &dyn Fn(&Tensor) -> Tensor,
    batch: i64,
    runs: usize,
) -> [Duration; 2] {
    let x = Tensor::randn([batch, 3, SIZE, SIZE], (Kind::Float, Device::Cpu));
    let time = |f: &dyn Fn(&Tensor) -> Tensor| {
        let start = Instant::now();
        let _ = tch::no_grad(|| f(&x));
        start.elapsed()
    };
    let (_, _) = (time(a), time(b));
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        times[0].push(time(a));
        times[1].push(time(b));
    }
    times.map(fastest)
}

/// A fresh ResNet-18 with the weights of seed 0.
fn fresh() -> (VarStore, nn::FuncT<'static>) {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let net = tch::vision::resnet::resnet18(&vs.root(), 1000);
    (vs, net)
}

fn rust_side(
    global: bool,
    runs: usize,
    repeats: usize,
    weights: &Path,
) -> Result<Side, Box<dyn Error>> {
    let coupling = Coupling::new(presets::resnet_basic("", [2, 2, 2, 2], true))?;
    let (dense_vs, dense) = fresh();
    dense_vs.save(weights)?;
    let mut splits = Vec::new();
    let mut last = None;
    for _ in 0..repeats {
        let (vs, net) = fresh();
        let start = Instant::now();
        let pruning =
            if global { ChannelPruning::global(0.5)? } else { ChannelPruning::local(0.5)? };
        let selection = pruning.select(&coupling, &vs)?;
        let selected = start.elapsed();
        Shrink::new(&coupling, &selection)
            .check_input(&[1, 3, SIZE, SIZE])
            .apply_to_var_store(&vs, |x| net.forward_t(x, false))?;
        splits.push((selected, start.elapsed() - selected));
        last = Some((vs, net));
    }
    let (vs, net) = last.ok_or("no repeat")?;
    let stats = ModelStats::of(&vs).with_macs(presets::resnet_positions(SIZE, SIZE));
    let dense_fwd = |x: &Tensor| dense.forward_t(x, false);
    let shrunk_fwd = |x: &Tensor| net.forward_t(x, false);
    let best = splits.iter().min_by_key(|s| s.0 + s.1).copied().unwrap_or_default();
    Ok(Side {
        params: stats.params(),
        macs: stats.macs(),
        prune: best.0 + best.1,
        split: Some(best),
        latency: [
            latencies(&dense_fwd, &shrunk_fwd, 1, runs),
            latencies(&dense_fwd, &shrunk_fwd, 32, runs),
        ],
    })
}

fn python_side(
    global: bool,
    runs: usize,
    repeats: usize,
    weights: &Path,
) -> Result<(Side, f64), Box<dyn Error>> {
    let python = std::env::var("TCH_PRUNE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_torch_pruning.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).args(["--ratio", "0.5", "--size", &SIZE.to_string()]);
    cmd.args(["--runs", &runs.to_string(), "--repeats", &repeats.to_string()]);
    cmd.arg("--weights").arg(weights);
    if global {
        cmd.arg("--global");
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
        split: None,
        latency: [
            [secs("dense_latency_b1_s")?, secs("latency_b1_s")?],
            [secs("dense_latency_b32_s")?, secs("latency_b32_s")?],
        ],
    };
    Ok((side, f("macs_after")?))
}

fn main() -> Result<(), Box<dyn Error>> {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let env = |name: &str, default: usize| {
        std::env::var(name).ok().and_then(|r| r.parse().ok()).unwrap_or(default)
    };
    let (runs, repeats) = (env("TCH_PRUNE_BENCH_RUNS", 5), env("TCH_PRUNE_BENCH_REPEATS", 3));
    println!(
        "ResNet-18, {SIZE}x{SIZE}, ratio 0.5, group L2 magnitude, {} threads; time to prune: fastest \
         of {repeats} fresh models; latency: fastest of {runs} runs, dense and pruned interleaved\n",
        tch::get_num_threads()
    );
    let weights =
        std::env::temp_dir().join(format!("tch-prune-resnet18-{}.safetensors", std::process::id()));
    for global in [false, true] {
        let ours = rust_side(global, runs, repeats, &weights)?;
        let (theirs, tp_macs) = python_side(global, runs, repeats, &weights)?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "### {}\n",
            if global {
                "global (mean-normalised importance)"
            } else {
                "local (uniform per group)"
            }
        );
        println!("| | tch-prune | Torch-Pruning |");
        println!("|---|---:|---:|");
        println!(
            "| parameters after (M) | {:.3} | {:.3} |",
            ours.params as f64 / 1e6,
            theirs.params as f64 / 1e6
        );
        println!(
            "| conv + Linear MACs after (G) | {:.3} | {:.3} (its own counter: {:.3}) |",
            ours.macs as f64 / 1e9,
            theirs.macs as f64 / 1e9,
            tp_macs / 1e9
        );
        let split = ours.split.map_or(String::new(), |(a, b)| {
            format!(" (select {:.3}, shrink + check {:.3})", a.as_secs_f64(), b.as_secs_f64())
        });
        println!(
            "| time to prune (s) | {:.3}{split} | {:.3} |",
            ours.prune.as_secs_f64(),
            theirs.prune.as_secs_f64()
        );
        for (i, batch) in [1, 32].iter().enumerate() {
            let cell = |s: &Side| {
                let [dense, pruned] = s.latency[i];
                format!(
                    "{:.1} -> {:.1} ({:.2}x)",
                    ms(dense),
                    ms(pruned),
                    dense.as_secs_f64() / pruned.as_secs_f64()
                )
            };
            println!(
                "| CPU latency batch {batch} (ms), dense -> pruned | {} | {} |",
                cell(&ours),
                cell(&theirs)
            );
        }
        println!();
    }
    let _ = std::fs::remove_file(&weights);
    Ok(())
}
