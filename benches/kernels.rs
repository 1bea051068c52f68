//! Criterion benchmarks: mask computation throughput (elements/s) for sizes 1e4 to 1e8, and the
//! forward overhead of a pruned layer.
//!
//! ```sh
//! scripts/env.sh cargo bench --bench kernels              # everything (1e8 takes a while)
//! scripts/env.sh cargo bench --bench kernels -- l1/1e6    # one case
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};
use tch_prune::{L1Unstructured, LnStructured, PrunedModel, PruningMethod, RandomUnstructured};

const SIZES: [(i64, &str); 5] = [
    (10_000, "1e4"),
    (100_000, "1e5"),
    (1_000_000, "1e6"),
    (10_000_000, "1e7"),
    (100_000_000, "1e8"),
];

fn masks(c: &mut Criterion) {
    for (name, method) in [
        ("l1", Box::new(L1Unstructured::new(0.4).unwrap()) as Box<dyn PruningMethod>),
        ("random", Box::new(RandomUnstructured::new(0.3).unwrap())),
        ("ln_structured", Box::new(LnStructured::new(0.3, 2, 0).unwrap())),
    ] {
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        for (n, label) in SIZES {
            let t = Tensor::randn([n / 1000, 1000], (Kind::Float, Device::Cpu));
            let ones = t.ones_like();
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::from_parameter(label), &t, |b, t| {
                b.iter(|| method.compute_mask(t, &ones).unwrap())
            });
            if name == "l1" {
                // PyTorch's algorithm for the same mask: a full `topk`.
                let k = (0.4 * n as f64).round_ties_even() as i64;
                group.bench_with_input(BenchmarkId::new("topk", label), &t, |b, t| {
                    b.iter(|| {
                        let mask = ones.copy();
                        let (_, idx) = t.abs().reshape([-1]).topk(k, 0, false, true);
                        let _ = mask.view([-1]).index_fill_(0, &idx, 0);
                        mask
                    })
                });
            }
        }
        group.finish();
    }
}

fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward_linear_768x3072_rows4096");
    group.sample_size(20);
    let x = Tensor::randn([4096, 768], (Kind::Float, Device::Cpu));
    let vs = nn::VarStore::new(Device::Cpu);
    let fc = nn::linear(vs.root() / "fc", 768, 3072, Default::default());
    group.bench_function("unpruned", |b| b.iter(|| fc.forward(&x)));
    let mut pruned = PrunedModel::new(fc, &vs).with_prefix("fc");
    pruned.l1_unstructured("fc.weight", 0.4, None).unwrap();
    group.bench_function("pruned_train", |b| b.iter(|| pruned.forward(&x).unwrap()));
    group.bench_function("pruned_eval_no_grad", |b| {
        b.iter(|| tch::no_grad(|| pruned.forward(&x).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, masks, forward);
criterion_main!(benches);
