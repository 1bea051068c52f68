//! Side-by-side benchmark: the workloads of issue #4 with tch-prune and with PyTorch (the
//! pinned torch, through `scripts/bench_pytorch.py`), each workload in its own process so that
//! its peak RSS is its own. Prints a table: workload, PyTorch median, ours median, ratio, peak
//! RSS of each.
//!
//! ```sh
//! scripts/env.sh cargo bench --bench compare_pytorch            # all workloads, 3 repeats
//! scripts/env.sh cargo bench --bench compare_pytorch -- 5 lenet  # 5 repeats, some workloads
//! ```
//!
//! Both sides use the same number of threads (libtorch's default: one per core).

use std::process::Command;
use std::time::Instant;

use tch::nn::{self, Module};
use tch::{Device, Tensor};
use tch_prune::{prunable, L1Unstructured, PrunedModel};

const WORKLOADS: [&str; 8] = [
    "l1_unstructured",
    "global_all",
    "global_qkv",
    "random_unstructured",
    "ln_structured",
    "iterative",
    "remove",
    "lenet",
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
            let m = PrunedModel::new(lenet(&vs), &vs);
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

/// Runs one workload `repeats` times in this process; returns the timed seconds. Each repeat
/// builds fresh models first (untimed, as on the PyTorch side).
fn run_workload(name: &str, repeats: usize) -> tch_prune::Result<Vec<f64>> {
    let mut times = Vec::with_capacity(repeats);
    let all = weight_names(false);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let qkv = weight_names(true);
    let qkv: Vec<&str> = qkv.iter().map(String::as_str).collect();
    for _ in 0..repeats {
        if name == "lenet" {
            let mut models = lenets();
            let start = Instant::now();
            lenet_sequence(&mut models)?;
            times.push(start.elapsed().as_secs_f64());
            continue;
        }
        let vs = nn::VarStore::new(Device::Cpu);
        let mut m = PrunedModel::new(encoder(&vs), &vs);
        if name == "remove" {
            for w in &all {
                m.l1_unstructured(w, 0.4, None)?;
            }
        }
        let start = Instant::now();
        match name {
            "l1_unstructured" => {
                for w in &all {
                    m.l1_unstructured(w, 0.4, None)?;
                }
            }
            "global_all" => m.global_unstructured(&all, L1Unstructured::new(0.2)?, &[])?,
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
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(times)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// `(median seconds, peak RSS MB)` from a child's JSON line.
fn parse(line: &str) -> Option<(f64, f64)> {
    let field = |key: &str| -> Option<f64> {
        let at = line.find(&format!("\"{key}\": "))? + key.len() + 4;
        let rest = &line[at..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end].trim().parse().ok()
    };
    Some((field("median_s")?, field("peak_rss_mb")?))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    // Child mode: `--workload NAME REPEATS`.
    if args.first().map(String::as_str) == Some("--workload") {
        let (name, repeats) = (&args[1], args[2].parse().unwrap_or(3));
        tch::manual_seed(0);
        let times = run_workload(name, repeats).unwrap_or_else(|e| panic!("{name}: {e}"));
        println!(
            "{{\"workload\": \"{name}\", \"median_s\": {}, \"peak_rss_mb\": {}}}",
            median(&times),
            peak_rss_mb()
        );
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
        "| workload | PyTorch median (s) | tch-prune median (s) | speed-up | PyTorch peak RSS (MB) | tch-prune peak RSS (MB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for w in chosen {
        let run = |cmd: &mut Command| -> Option<(f64, f64)> {
            let out = cmd.output().ok()?;
            if !out.status.success() {
                eprintln!("{w}: {}", String::from_utf8_lossy(&out.stderr));
                return None;
            }
            String::from_utf8_lossy(&out.stdout).lines().rev().find_map(parse)
        };
        let theirs = run(Command::new(&python).arg(script).arg(w).arg(repeats.to_string()));
        let ours = run(Command::new(&exe).args(["--workload", w, &repeats.to_string()]));
        match (theirs, ours) {
            (Some((pt, prss)), Some((rt, rrss))) => {
                println!("| {w} | {pt:.3} | {rt:.3} | {:.1}x | {prss:.0} | {rrss:.0} |", pt / rt)
            }
            _ => println!("| {w} | failed | failed | - | - | - |"),
        }
    }
}
