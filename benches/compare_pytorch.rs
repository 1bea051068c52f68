//! Side-by-side benchmark: the workloads of docs/benchmarks.md with tch-prune and with PyTorch
//! (the pinned torch, through `scripts/bench_pytorch.py`), each workload in its own process so
//! that its peak RSS is its own. Prints a table: workload, PyTorch median, ours median, ratio, peak
//! RSS of each, and peak minus base RSS of each.
//!
//! ```sh
//! scripts/env.sh cargo bench --bench compare_pytorch            # all workloads, 3 repeats
//! scripts/env.sh cargo bench --bench compare_pytorch -- 5 lenet  # 5 repeats, some workloads
//! ```
//!
//! `l1_lowest_index` and `global_all_lowest_index` run `l1_unstructured` and `global_all` with
//! the crate's opt-in `TieBreak::LowestIndex` (not PyTorch's mask where ties straddle the cut);
//! their PyTorch column is PyTorch's own algorithm, the same as in those two rows.
//!
//! Both sides use the same number of threads (libtorch's default: one per core). Every workload
//! but `forward` (which has its own warm-up calls) runs once untimed before the timed repeats,
//! on both sides: the first run of a process pays for first-touch page faults on memory that
//! the allocator reuses afterwards, which would make the median depend on the repeat count.
//!
//! **Memory.** Each child records its RSS (`VmRSS`) once libtorch is loaded and before any
//! model is built (`base_rss_mb`), and its peak RSS (`VmHWM`, `peak_rss_mb`) at the end. The
//! "peak - base" columns are then what the workload itself (models included) added, to check
//! the target "peak memory <= 1.25 x (weights + masks)" against the sizes printed under
//! the table for the BERT-shaped workloads: 12 x (4 x 768x768 + 2 x 768x3072) = 84.9 M f32
//! parameters, 324 MB of weights, and as much again of masks (f32, the weight's kind, as in
//! PyTorch). What a model legitimately holds after pruning every weight is **three** copies:
//! `<name>_orig` (the original tensor), `<name>_mask`, and the effective `orig * mask` the layer
//! computes with (PyTorch materializes it too: `prune` sets `module.weight` to it), so 972 MB,
//! above the bound's 810 MB on either side; the bound can only hold if the effective weights
//! are left out of it. Above that come transient buffers of the mask computation and whatever
//! the allocator keeps. (MB here and in the table are MiB: `VmRSS` kB / 1024.)
//!
//! **Forward.** The `forward` workload measures the forward overhead of a pruned layer (target:
//! "no worse than PyTorch's (+7 % on a 768->3072 Linear with 4096 rows); in evaluation without
//! gradients ... ~0"). A `Linear(768, 3072)` and a 4096 x 768 f32 input on the CPU; each case
//! is timed per call over 20 calls after 3 warm-up calls (x repeats, each with a fresh layer),
//! the cases interleaved (one call of each per round) so that a drifting load weighs on all
//! three alike: (a) the unpruned layer's forward (a copy of the layer, same weights); (b) after
//! `l1_unstructured(weight, 0.4)`, the forward with autograd on ([`PrunedModel::forward`],
//! which forms `orig * mask` anew, as PyTorch's forward pre-hook does); (c) the same under
//! `no_grad` (tch-prune reuses the cached product; PyTorch's hook recomputes it). Its
//! `median_s` in the main table is case (b); a second table, "forward overhead", gives the
//! three medians and the overheads (b)/(a) - 1 and (c)/(a) - 1.

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};
use tch_prune::{prunable, L1Unstructured, PrunedModel, Pruner, TieBreak};

const WORKLOADS: [&str; 11] = [
    "l1_unstructured",
    "l1_lowest_index",
    "global_all",
    "global_all_lowest_index",
    "global_qkv",
    "random_unstructured",
    "ln_structured",
    "iterative",
    "remove",
    "lenet",
    "forward",
];

/// BERT-base's encoder Linear layers: 12 x (query, key, value, attention output 768x768,
/// intermediate 768->3072, output 3072->768).
#[derive(Debug)]
struct Encoder {
    layers: Vec<Vec<nn::Linear>>,
}
prunable!(Encoder { layers });

fn encoder(vs: &nn::VarStore) -> Encoder {
    let root = vs.root();
    let layers = (0..12)
        .map(|i| {
            let p = &root / "layers" / i;
            let mut l: Vec<nn::Linear> =
                (0..4).map(|j| nn::linear(&p / j, 768, 768, Default::default())).collect();
            l.push(nn::linear(&p / 4, 768, 3072, Default::default()));
            l.push(nn::linear(&p / 5, 3072, 768, Default::default()));
            l
        })
        .collect();
    Encoder { layers }
}

fn weight_names(qkv_only: bool) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..12 {
        for j in 0..6 {
            if !qkv_only || j < 3 {
                names.push(format!("layers.{i}.{j}.weight"));
            }
        }
    }
    names
}

#[derive(Debug)]
struct LeNet {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc3: nn::Linear,
}
prunable!(LeNet { conv1, conv2, fc1, fc2, fc3 });

impl Module for LeNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.conv1)
            .relu()
            .max_pool2d_default(2)
            .apply(&self.conv2)
            .relu()
            .max_pool2d_default(2)
            .flatten(1, -1)
            .apply(&self.fc1)
            .relu()
            .apply(&self.fc2)
            .relu()
            .apply(&self.fc3)
    }
}

fn lenet(vs: &nn::VarStore) -> LeNet {
    let r = vs.root();
    LeNet {
        conv1: nn::conv2d(&r / "conv1", 1, 6, 3, Default::default()),
        conv2: nn::conv2d(&r / "conv2", 6, 16, 3, Default::default()),
        fc1: nn::linear(&r / "fc1", 16 * 5 * 5, 120, Default::default()),
        fc2: nn::linear(&r / "fc2", 120, 84, Default::default()),
        fc3: nn::linear(&r / "fc3", 84, 10, Default::default()),
    }
}

/// 100 fresh LeNets (built before the timed region, as on the PyTorch side).
fn lenets() -> Vec<(nn::VarStore, PrunedModel<LeNet>)> {
    (0..100)
        .map(|_| {
            let vs = nn::VarStore::new(Device::Cpu);
            let m = PrunedModel::new(lenet(&vs), &vs).unwrap();
            (vs, m)
        })
        .collect()
}

fn lenet_sequence(models: &mut [(nn::VarStore, PrunedModel<LeNet>)]) -> tch_prune::Result<()> {
    for (_, m) in models {
        m.random_unstructured("conv1.weight", 0.3)?;
        m.l1_unstructured("conv1.bias", 3, None)?;
        m.ln_structured("conv1.weight", 0.5, 2, 0, None)?;
        m.remove("conv1.weight")?;
        let names = ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"];
        m.global_unstructured(&names, L1Unstructured::new(0.2)?, &[])?;
    }
    Ok(())
}

/// Runs one workload `repeats` times in this process, after one untimed warm-up run (as on the
/// PyTorch side: the first run of a process pays for first-touch page faults of memory the
/// allocator later reuses); returns the timed seconds. Each repeat builds fresh models first
/// (untimed, as on the PyTorch side).
fn run_workload(name: &str, repeats: usize) -> tch_prune::Result<Vec<f64>> {
    let mut times = Vec::with_capacity(repeats);
    let all = weight_names(false);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let qkv = weight_names(true);
    let qkv: Vec<&str> = qkv.iter().map(String::as_str).collect();
    for run in 0..=repeats {
        if name == "lenet" {
            let mut models = lenets();
            let start = Instant::now();
            lenet_sequence(&mut models)?;
            if run > 0 {
                times.push(start.elapsed().as_secs_f64());
            }
            continue;
        }
        let vs = nn::VarStore::new(Device::Cpu);
        let mut m = PrunedModel::new(encoder(&vs), &vs).unwrap();
        if name == "remove" {
            for w in &all {
                m.l1_unstructured(w, 0.4, None)?;
            }
        }
        let lowest = TieBreak::LowestIndex;
        let start = Instant::now();
        match name {
            "l1_unstructured" => {
                for w in &all {
                    m.l1_unstructured(w, 0.4, None)?;
                }
            }
            // The opt-in tie rule (not PyTorch's mask where ties straddle the cut; the
            // PyTorch side runs `l1_unstructured` / `global_all`).
            "l1_lowest_index" => {
                for w in &all {
                    m.apply(w, L1Unstructured::new(0.4)?.with_tie_break(lowest), None)?;
                }
            }
            "global_all" => m.global_unstructured(&all, L1Unstructured::new(0.2)?, &[])?,
            "global_all_lowest_index" => {
                let method = L1Unstructured::new(0.2)?.with_tie_break(lowest);
                m.global_unstructured(&all, method, &[])?
            }
            "global_qkv" => m.global_unstructured(&qkv, L1Unstructured::new(0.2)?, &[])?,
            "random_unstructured" => {
                for w in &all {
                    m.random_unstructured(w, 0.3)?;
                }
            }
            "ln_structured" => {
                for w in &all {
                    m.ln_structured(w, 0.3, 2, 0, None)?;
                }
            }
            "iterative" => {
                for w in &all {
                    m.l1_unstructured(w, 0.2, None)?;
                    m.l1_unstructured(w, 0.2, None)?;
                    m.ln_structured(w, 0.1, 1, 1, None)?;
                }
            }
            "remove" => {
                for w in &all {
                    m.remove(w)?;
                }
            }
            other => panic!("unknown workload {other}"),
        }
        if run > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}

/// The `forward` workload's layer: `Linear(FWD_IN, FWD_OUT)` applied to `FWD_ROWS` rows.
const FWD_IN: i64 = 768;
const FWD_OUT: i64 = 3072;
const FWD_ROWS: i64 = 4096;
/// Untimed rounds, then timed rounds; a round calls each case once, each call timed on its own.
const FWD_WARMUP: usize = 3;
const FWD_ITERS: usize = 20;

/// Per-call seconds of the three cases of the `forward` workload.
#[derive(Default)]
struct ForwardTimes {
    /// (a) the unpruned layer.
    unpruned: Vec<f64>,
    /// (b) pruned, autograd on: `orig * mask` formed anew each call.
    pruned: Vec<f64>,
    /// (c) pruned, under `no_grad`: the cached `orig * mask` reused.
    pruned_no_grad: Vec<f64>,
}

/// One call of `f`, its seconds pushed to `times` when `timed` (dropping the output included,
/// as in Python, where `layer(x)`'s result is freed within the statement).
fn time_call(
    times: &mut Vec<f64>,
    timed: bool,
    f: impl FnOnce() -> tch_prune::Result<Tensor>,
) -> tch_prune::Result<()> {
    let start = Instant::now();
    drop(black_box(f()?));
    if timed {
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The `forward` workload, `repeats` times, each on a fresh layer and input. The three cases
/// are interleaved (each round calls (a), (b), (c) once), so that a load that drifts during the
/// run weighs on all three alike; (a) runs on an unpruned copy of the pruned layer.
fn run_forward(repeats: usize) -> tch_prune::Result<ForwardTimes> {
    let mut t = ForwardTimes::default();
    for _ in 0..repeats {
        let x = Tensor::randn([FWD_ROWS, FWD_IN], (Kind::Float, Device::Cpu));
        let mut vs = nn::VarStore::new(Device::Cpu);
        let fc = nn::linear(vs.root() / "fc", FWD_IN, FWD_OUT, Default::default());
        let plain_vs = nn::VarStore::new(Device::Cpu);
        let plain = nn::linear(plain_vs.root() / "fc", FWD_IN, FWD_OUT, Default::default());
        vs.copy(&plain_vs)?;
        let mut m = PrunedModel::with_prefix(fc, &vs, "fc").unwrap();
        m.l1_unstructured("fc.weight", 0.4, None)?;
        for round in 0..FWD_WARMUP + FWD_ITERS {
            let timed = round >= FWD_WARMUP;
            time_call(&mut t.unpruned, timed, || Ok(plain.forward(&x)))?;
            time_call(&mut t.pruned, timed, || m.forward(&x))?;
            time_call(&mut t.pruned_no_grad, timed, || tch::no_grad(|| m.forward(&x)))?;
        }
    }
    Ok(t)
}

/// A `/proc/self/status` field in MB (MiB): `VmRSS` (now) or `VmHWM` (peak so far).
fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The number under `"key": ` in a child's JSON line (the key is matched with its opening
/// quote, so it never matches the tail of a longer key).
fn field(line: &str, key: &str) -> Option<f64> {
    let at = line.find(&format!("\"{key}\": "))? + key.len() + 4;
    let rest = &line[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// What the parent reads from a child's JSON line.
struct Child {
    median_s: f64,
    peak_rss_mb: f64,
    /// `NaN` when the child did not report it.
    base_rss_mb: f64,
    line: String,
}

fn parse(line: &str) -> Option<Child> {
    Some(Child {
        median_s: field(line, "median_s")?,
        peak_rss_mb: field(line, "peak_rss_mb")?,
        base_rss_mb: field(line, "base_rss_mb").unwrap_or(f64::NAN),
        line: line.to_string(),
    })
}

/// Child mode: runs one workload and prints its JSON line.
fn child(name: &str, repeats: usize) {
    tch::manual_seed(0);
    // libtorch is loaded (and initialized by the seed) but nothing is built yet.
    let base = status_mb("VmRSS");
    if name == "forward" {
        let t = run_forward(repeats).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (a, b, c) = (median(&t.unpruned), median(&t.pruned), median(&t.pruned_no_grad));
        println!(
            "{{\"workload\": \"{name}\", \"median_s\": {b}, \"unpruned_s\": {a}, \
             \"pruned_s\": {b}, \"pruned_no_grad_s\": {c}, \"overhead_pct\": {}, \
             \"no_grad_overhead_pct\": {}, \"calls\": {}, \"peak_rss_mb\": {}, \
             \"base_rss_mb\": {base}}}",
            (b / a - 1.0) * 100.0,
            (c / a - 1.0) * 100.0,
            t.pruned.len(),
            status_mb("VmHWM"),
        );
        return;
    }
    let times = run_workload(name, repeats).unwrap_or_else(|e| panic!("{name}: {e}"));
    println!(
        "{{\"workload\": \"{name}\", \"median_s\": {}, \"peak_rss_mb\": {}, \
         \"base_rss_mb\": {base}}}",
        median(&times),
        status_mb("VmHWM"),
    );
}

/// Milliseconds, with the overhead over `base` when given.
fn ms(s: f64, base: Option<f64>) -> String {
    match base {
        Some(b) => format!("{:.1} ({:+.1} %)", s * 1e3, (s / b - 1.0) * 100.0),
        None => format!("{:.1}", s * 1e3),
    }
}

/// The "forward overhead" table from the two `forward` children's lines.
fn print_forward_table(theirs: Option<&Child>, ours: Option<&Child>) {
    let cases = |c: Option<&Child>| -> Option<[f64; 3]> {
        let line = &c?.line;
        Some([
            field(line, "unpruned_s")?,
            field(line, "pruned_s")?,
            field(line, "pruned_no_grad_s")?,
        ])
    };
    let (pt, rs) = (cases(theirs), cases(ours));
    println!();
    println!(
        "forward overhead: Linear({FWD_IN}, {FWD_OUT}), {FWD_ROWS} x {FWD_IN} f32 input, \
         l1_unstructured 0.4; median of {FWD_ITERS} calls per repeat after {FWD_WARMUP} warm-up, \
         cases interleaved"
    );
    println!("| case | PyTorch (ms) | tch-prune (ms) |");
    println!("|---|---:|---:|");
    let labels = ["unpruned", "pruned (autograd on)", "pruned, no_grad"];
    for (i, label) in labels.iter().enumerate() {
        let cell = |c: Option<[f64; 3]>| {
            c.map_or_else(|| "failed".to_string(), |v| ms(v[i], (i > 0).then_some(v[0])))
        };
        println!("| {label} | {} | {} |", cell(pt), cell(rs));
    }
}

/// The sizes the memory target refers to, for the BERT-shaped workloads.
fn print_memory_bound() {
    const MB: f64 = 1024.0 * 1024.0;
    let params: i64 = 12 * (4 * 768 * 768 + 2 * 768 * 3072);
    let weights = (params * 4) as f64 / MB;
    // Masks have the weight's kind (f32), as PyTorch's `torch.ones_like(weight)`.
    let masks = weights;
    println!();
    println!(
        "BERT-shaped memory: weights {:.1} M f32 params = {weights:.0} MB, masks (f32) \
         {masks:.0} MB; bound 1.25 x (weights + masks) = {:.0} MB. After pruning every weight \
         the model legitimately holds orig + mask + effective weight (orig * mask, which the \
         layer computes with; PyTorch materializes it too) = {:.0} MB.",
        params as f64 / 1e6,
        1.25 * (weights + masks),
        2.0 * weights + masks,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    // Child mode: `--workload NAME REPEATS`.
    if args.first().map(String::as_str) == Some("--workload") {
        child(&args[1], args[2].parse().unwrap_or(3));
        return;
    }
    let repeats: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3);
    let chosen: Vec<&str> = {
        let named: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
        WORKLOADS.iter().copied().filter(|w| named.is_empty() || named.contains(w)).collect()
    };
    let python = std::env::var("TCH_PRUNE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_pytorch.py");
    let exe = std::env::current_exe().expect("current exe");
    println!("threads: libtorch {} (both sides), repeats: {repeats}", tch::get_num_threads());
    println!(
        "| workload | PyTorch median (s) | tch-prune median (s) | speed-up | PyTorch peak RSS (MB) \
         | tch-prune peak RSS (MB) | PyTorch peak - base (MB) | tch-prune peak - base (MB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut forward: Option<(Option<Child>, Option<Child>)> = None;
    for w in &chosen {
        let run = |cmd: &mut Command| -> Option<Child> {
            let out = cmd.output().ok()?;
            if !out.status.success() {
                eprintln!("{w}: {}", String::from_utf8_lossy(&out.stderr));
                return None;
            }
            String::from_utf8_lossy(&out.stdout).lines().rev().find_map(parse)
        };
        let theirs = run(Command::new(&python).arg(script).arg(w).arg(repeats.to_string()));
        let ours = run(Command::new(&exe).args(["--workload", w, &repeats.to_string()]));
        match (&theirs, &ours) {
            (Some(p), Some(r)) => println!(
                "| {w} | {:.3} | {:.3} | {:.1}x | {:.0} | {:.0} | {:.0} | {:.0} |",
                p.median_s,
                r.median_s,
                p.median_s / r.median_s,
                p.peak_rss_mb,
                r.peak_rss_mb,
                p.peak_rss_mb - p.base_rss_mb,
                r.peak_rss_mb - r.base_rss_mb,
            ),
            _ => println!("| {w} | failed | failed | - | - | - | - | - |"),
        }
        if *w == "forward" {
            forward = Some((theirs, ours));
        }
    }
    if chosen.iter().any(|w| !matches!(*w, "lenet" | "forward")) {
        print_memory_bound();
    }
    if let Some((theirs, ours)) = &forward {
        print_forward_table(theirs.as_ref(), ours.as_ref());
    }
}
