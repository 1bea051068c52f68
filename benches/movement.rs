//! The per-step mask refresh of movement pruning on BERT-base-sized scores (72 tensors, 85 M
//! scores), local and global Top-K, against the reference's sort-based refresh in PyTorch
//! (`scripts/movement_bench.py`, same scores) in the same run. Results: docs/benchmarks.md.
//!
//! ```sh
//! scripts/env.sh cargo bench --bench movement            # 5 repeats
//! scripts/env.sh cargo bench --bench movement -- 9       # 9 repeats
//! ```

use std::process::Command;
use std::time::Instant;

use tch::nn;
use tch::{Device, Kind, Tensor};
use tch_prune::movement::{Binarizer, MovementConfig, MovementPruner};
use tch_prune::{PrunedModel, Pruner};

const KEPT: f64 = 0.1;

fn shapes() -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for _ in 0..12 {
        out.extend([(768, 768); 4]);
        out.extend([(3072, 768), (768, 3072)]);
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of `repeats` refreshes at `KEPT` and at `KEPT · 1.01` (for the global
/// selection a cut through tied scores: 85 M normal `f32`s hold several values per ulp there),
/// and the number of scores kept at `KEPT`.
fn ours(binarizer: Binarizer, repeats: usize) -> (f64, f64, i64) {
    let vs = nn::VarStore::new(Device::Cpu);
    let no_bias = nn::LinearConfig { bias: false, ..Default::default() };
    let layers: Vec<nn::Linear> = shapes()
        .iter()
        .enumerate()
        .map(|(i, &(o, n))| nn::linear(vs.root() / i, n, o, no_bias))
        .collect();
    let mut model = PrunedModel::new(layers, &vs).expect("model");
    let names: Vec<String> = (0..72).map(|i| format!("{i}.weight")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mp = MovementPruner::new(&mut model, &vs, &refs, MovementConfig::new(binarizer))
        .expect("movement pruner");
    tch::manual_seed(0);
    tch::no_grad(|| {
        for (name, (o, n)) in refs.iter().zip(shapes()) {
            mp.scores(name)
                .expect("scores")
                .copy_(&Tensor::randn([o, n], (Kind::Float, Device::Cpu)));
        }
    });
    // Alternate between two thresholds so that every refresh recomputes.
    let (mut times, mut tied) = (Vec::new(), Vec::new());
    for r in 0..=repeats {
        mp.set_threshold(KEPT * 1.01).expect("threshold");
        let start = Instant::now();
        mp.refresh_masks().expect("refresh");
        let alternate = start.elapsed().as_secs_f64();
        mp.set_threshold(KEPT).expect("threshold");
        let start = Instant::now();
        mp.refresh_masks().expect("refresh");
        if r > 0 {
            times.push(start.elapsed().as_secs_f64());
            tied.push(alternate);
        }
    }
    let kept: f64 =
        refs.iter().map(|n| model.mask(n).expect("mask").sum(Kind::Float).double_value(&[])).sum();
    (median(times), median(tied), kept as i64)
}

fn main() {
    let repeats: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5);
    let python = std::env::var("TCH_PRUNE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/movement_bench.py");
    let out = Command::new(&python)
        .args([script, &repeats.to_string(), &KEPT.to_string()])
        .output()
        .expect("run the PyTorch reference");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = |name: &str| -> (f64, i64) {
        let line = reference.lines().find(|l| l.starts_with(name)).expect("reference row");
        let f: Vec<&str> = line.split_whitespace().collect();
        (f[1].parse().expect("seconds"), f[2].parse().expect("kept"))
    };
    println!("movement mask refresh, 85 M scores (BERT-base encoder), kept {KEPT}, {repeats} repeats, median");
    println!(
        "{:<8} {:>14} {:>12} {:>8} {:>12} {:>12}",
        "mode", "reference (s)", "ours (s)", "speedup", "kept (ref)", "kept (ours)"
    );
    let mut alternates = Vec::new();
    for (name, binarizer) in [("local", Binarizer::TopK), ("global", Binarizer::GlobalTopK)] {
        let (ref_s, ref_kept) = row(name);
        let (our_s, alternate, our_kept) = ours(binarizer, repeats);
        alternates.push(format!("{name} {alternate:.4} s"));
        println!(
            "{name:<8} {ref_s:>14.4} {our_s:>12.4} {:>7.1}x {ref_kept:>12} {our_kept:>12}",
            ref_s / our_s
        );
    }
    println!(
        "ours at kept {} (global: a cut through tied scores): {}",
        KEPT * 1.01,
        alternates.join(", ")
    );
}
