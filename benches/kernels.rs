//! Criterion benchmarks: mask computation throughput (elements/s) for sizes 1e4 to 1e8, and the
//! forward overhead of a pruned layer.
//!
//! ```sh
//! scripts/env.sh cargo bench --bench kernels              # everything (1e8 takes a while)
//! scripts/env.sh cargo bench --bench kernels -- l1/1e6    # one case
//! TCH_PRUNE_BENCH_DEVICE=cuda scripts/env.sh cargo bench --bench kernels  # on CUDA device 0
//! ```
//!
//! Beside each L1 mask, the same mask by the obvious standard-library route (the keys `|x|`
//! copied into a vector, `slice::select_nth_unstable` for the threshold, then one pass writing
//! the mask with ties lowest index first: `select_nth`), by PyTorch's algorithm (`topk`, then
//! `index_fill_`) and a `kthvalue` threshold followed by one comparison (what a threshold-based path costs; exact
//! tie handling would add a pass): on CUDA, where the methods use libtorch, these say which
//! libtorch route is fastest. On CUDA every iteration waits for the device to finish.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};
use tch_prune::{
    L1Unstructured, LnStructured, PrunedModel, Pruner, PruningMethod, RandomUnstructured,
};

const SIZES: [(i64, &str); 5] = [
    (10_000, "1e4"),
    (100_000, "1e5"),
    (1_000_000, "1e6"),
    (10_000_000, "1e7"),
    (100_000_000, "1e8"),
];

/// The device to benchmark on: `TCH_PRUNE_BENCH_DEVICE=cuda` picks CUDA device 0 when libtorch
/// sees one, anything else the CPU.
fn device() -> Device {
    match std::env::var("TCH_PRUNE_BENCH_DEVICE").as_deref() {
        Ok("cuda") if tch::Cuda::is_available() => Device::Cuda(0),
        Ok("cuda") => {
            eprintln!(
                "TCH_PRUNE_BENCH_DEVICE=cuda, but libtorch sees no CUDA device: using the CPU"
            );
            Device::Cpu
        }
        _ => Device::Cpu,
    }
}

/// `value`, once the device has finished the work queued for it (CUDA calls return early).
fn synced<T>(device: Device, value: T) -> T {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
    value
}

/// Group names carry the device when it is not the CPU, so that criterion keeps the results
/// apart.
fn group_name(name: &str, device: Device) -> String {
    match device {
        Device::Cpu => name.to_string(),
        other => format!("{name}@{other:?}"),
    }
}

fn masks(c: &mut Criterion) {
    let device = device();
    for (name, method) in [
        ("l1", Box::new(L1Unstructured::new(0.4).unwrap()) as Box<dyn PruningMethod>),
        ("random", Box::new(RandomUnstructured::new(0.3).unwrap())),
        ("ln_structured", Box::new(LnStructured::new(0.3, 2, 0).unwrap())),
    ] {
        let mut group = c.benchmark_group(group_name(name, device));
        group.sample_size(10);
        for (n, label) in SIZES {
            let t = Tensor::randn([n / 1000, 1000], (Kind::Float, device));
            let ones = t.ones_like();
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::from_parameter(label), &t, |b, t| {
                b.iter(|| synced(device, method.compute_mask(t, &ones).unwrap()))
            });
            if name == "l1" {
                let k = (0.4 * n as f64).round_ties_even() as i64;
                // The standard-library baseline the custom kernels must beat (CPU only).
                if device == Device::Cpu {
                    // Same mask as the crate's (checked where it is cheap to check).
                    if n <= 1_000_000 {
                        let ours = method.compute_mask(&t, &ones).unwrap();
                        assert!(ours.equal(&select_nth_mask(&t, k as usize)), "select_nth differs");
                    }
                    group.bench_with_input(BenchmarkId::new("select_nth", label), &t, |b, t| {
                        b.iter(|| select_nth_mask(t, k as usize))
                    });
                }
                // PyTorch's algorithm for the same mask: a full `topk`.
                group.bench_with_input(BenchmarkId::new("topk", label), &t, |b, t| {
                    b.iter(|| {
                        let mask = ones.copy();
                        let (_, idx) = t.abs().reshape([-1]).topk(k, 0, false, true);
                        let _ = mask.view([-1]).index_fill_(0, &idx, 0);
                        synced(device, mask)
                    })
                });
                // A threshold from `kthvalue`, then one comparison.
                group.bench_with_input(BenchmarkId::new("kthvalue", label), &t, |b, t| {
                    b.iter(|| {
                        let scores = t.abs().reshape([-1]);
                        let (threshold, _) = scores.kthvalue(k, 0, false);
                        let mask = scores.gt_tensor(&threshold).to_kind(Kind::Float);
                        synced(device, mask.reshape(t.size()))
                    })
                });
            }
        }
        group.finish();
    }
}

fn forward(c: &mut Criterion) {
    let device = device();
    let mut group = c.benchmark_group(group_name("forward_linear_768x3072_rows4096", device));
    group.sample_size(20);
    let x = Tensor::randn([4096, 768], (Kind::Float, device));
    let vs = nn::VarStore::new(device);
    let fc = nn::linear(vs.root() / "fc", 768, 3072, Default::default());
    group.bench_function("unpruned", |b| b.iter(|| synced(device, fc.forward(&x))));
    let mut pruned = PrunedModel::with_prefix(fc, &vs, "fc").unwrap();
    pruned.l1_unstructured("fc.weight", 0.4, None).unwrap();
    group
        .bench_function("pruned_train", |b| b.iter(|| synced(device, pruned.forward(&x).unwrap())));
    group.bench_function("pruned_eval_no_grad", |b| {
        b.iter(|| synced(device, tch::no_grad(|| pruned.forward(&x).unwrap())))
    });
    group.finish();
}

criterion_group!(benches, masks, forward);
criterion_main!(benches);

/// The L1 mask of the `k` smallest magnitudes by `select_nth_unstable` on a copied key vector,
/// then a pass writing the mask (entries tied with the threshold taken lowest index first).
fn select_nth_mask(t: &Tensor, k: usize) -> Tensor {
    let values = Vec::<f32>::try_from(t.reshape([-1])).unwrap();
    let mut keys: Vec<u32> = values.iter().map(|v| v.to_bits() & 0x7FFF_FFFF).collect();
    let mut mask = vec![1.0f32; values.len()];
    if k > 0 {
        let (below, &mut threshold, _) = keys.select_nth_unstable(k - 1);
        let mut ties = k - below.iter().filter(|&&key| key < threshold).count();
        for (m, v) in mask.iter_mut().zip(&values) {
            let key = v.to_bits() & 0x7FFF_FFFF;
            if key < threshold || (key == threshold && ties > 0) {
                if key == threshold {
                    ties -= 1;
                }
                *m = 0.0;
            }
        }
    }
    Tensor::from_slice(&mask).reshape(t.size())
}
