//! `tch_prune::semi_sparse` on a CUDA device: compression, the sparse kernel against the dense
//! fallback, the timed choice, conversion, and a printed (never asserted) benchmark of a
//! BERT-base FFN stack in fp16. The same skip convention as tests/cuda.rs: without
//! `--features cuda-tests` or a CUDA device each test prints `skipped: ...` and passes;
//! `TCH_PRUNE_REQUIRE_CUDA=1` turns a skip into a failure.

use std::time::Instant;

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};
use tch_prune::semi_sparse::{convert_linears, Candidate, SemiSparseLinear};
use tch_prune::{prunable, PrunedModel, Pruner, SemiStructured};

fn cuda_or_skip(test: &str) -> Option<Device> {
    let reason = if !cfg!(feature = "cuda-tests") {
        "skipped: the cuda-tests feature is off (build with --features cuda-tests)"
    } else if !tch::Cuda::is_available() {
        "skipped: no CUDA device"
    } else {
        return Some(Device::Cuda(0));
    };
    assert!(
        std::env::var_os("TCH_PRUNE_REQUIRE_CUDA").is_none(),
        "{test}: TCH_PRUNE_REQUIRE_CUDA is set but the test would be {reason}"
    );
    eprintln!("{test}: {reason}");
    None
}

/// A 2:4-pruned fp16 weight `[out, in]` and bias on `device`.
fn pruned(out: i64, inp: i64, device: Device) -> (Tensor, Tensor) {
    tch::manual_seed(0);
    let w = Tensor::randn([out, inp], (Kind::Float, device)) * 0.05;
    let mask = tch_prune::PruningMethod::compute_mask(
        &SemiStructured::new(2, 4).unwrap(),
        &w,
        &w.ones_like(),
    )
    .unwrap();
    let b = Tensor::randn([out], (Kind::Float, device)) * 0.1;
    ((w * mask).to_kind(Kind::Half), b.to_kind(Kind::Half))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Float) - b.to_kind(Kind::Float)).abs().max().double_value(&[])
}

#[test]
fn sparse_kernel_matches_dense_with_padding_bias_and_batch_dims() {
    let Some(cuda) = cuda_or_skip("sparse_kernel_matches_dense") else { return };
    let (w, b) = pruned(3072, 768, cuda);
    let layer = SemiSparseLinear::new(&w, Some(&b)).unwrap();
    assert!(layer.is_sparse(), "not compressed: {:?}", layer.fallback_reason());
    for rows in [1, 3, 8, 13, 64] {
        let x = Tensor::randn([rows, 2, 768], (Kind::Half, cuda));
        let x2d = x.reshape([-1, 768]);
        let d = layer.decision(&x2d).unwrap().unwrap();
        eprintln!("rows {}: {d:?}", rows * 2);
        let dense = x.linear(&w, Some(&b));
        let y = layer.f_forward(&x).unwrap();
        assert_eq!(y.size(), [rows, 2, 3072]);
        let diff = max_abs_diff(&y, &dense);
        assert!(diff < 2e-2, "rows {rows}: |sparse - dense| = {diff}");
    }
}

#[test]
fn dense_weight_on_cuda_is_refused_with_its_group() {
    let Some(cuda) = cuda_or_skip("dense_weight_on_cuda_is_refused") else { return };
    let w = Tensor::ones([64, 64], (Kind::Half, cuda));
    let layer = SemiSparseLinear::new(&w, None).unwrap();
    assert!(!layer.is_sparse());
    assert_eq!(
        layer.fallback_reason().unwrap().to_string(),
        "group 0 of row 0 holds 4 non-zeros (at most 2 of 4)"
    );
}

#[derive(Debug)]
struct Ffn {
    up: nn::Linear,
    down: nn::Linear,
    head: nn::Linear,
}
prunable!(Ffn { up, down, head });

#[test]
fn conversion_on_cuda_reports_each_layer() {
    let Some(cuda) = cuda_or_skip("conversion_on_cuda_reports_each_layer") else { return };
    let mut vs = nn::VarStore::new(cuda);
    let net = Ffn {
        up: nn::linear(vs.root() / "up", 768, 3072, Default::default()),
        down: nn::linear(vs.root() / "down", 3072, 768, Default::default()),
        head: nn::linear(vs.root() / "head", 768, 30, Default::default()),
    };
    vs.half();
    let mut model = PrunedModel::new(net, &vs).unwrap();
    let nm = SemiStructured::new(2, 4).unwrap();
    for l in model.layers_of::<nn::Linear>() {
        model.apply(&format!("{l}.weight"), nm, None).unwrap();
    }
    let (layers, report) = convert_linears(model.refreshed().unwrap()).unwrap();
    eprintln!("{report}");
    assert_eq!(report.sparse().collect::<Vec<_>>(), ["up", "down"]);
    assert_eq!(
        report.layers[2].reason.as_ref().unwrap().to_string(),
        "out_features 30 not a multiple of 16"
    );
    let x = Tensor::randn([16, 768], (Kind::Half, cuda));
    let m = model.refreshed().unwrap();
    let expected = x.apply(&m.up).relu().apply(&m.down);
    let y = x.apply(&layers["up"]).relu().apply(&layers["down"]);
    assert!(max_abs_diff(&y, &expected) < 5e-2);
}

/// Mean time of `f` over 50 runs after 10 warm-ups, in microseconds (synchronized).
fn time_us(f: &mut dyn FnMut()) -> f64 {
    for _ in 0..10 {
        f();
    }
    tch::Cuda::synchronize(0);
    let start = Instant::now();
    for _ in 0..50 {
        f();
    }
    tch::Cuda::synchronize(0);
    start.elapsed().as_secs_f64() * 1e6 / 50.0
}

/// BERT-base FFN (768 -> 3072 -> 768, 12 layers) in fp16: dense, always sparse, and the
/// layers' own choice, per batch (rows of 128 tokens). Printed, never asserted.
#[test]
fn bench_bert_base_ffn_fp16() {
    let Some(cuda) = cuda_or_skip("bench_bert_base_ffn_fp16") else { return };
    let _guard = tch::no_grad_guard();
    let stack: Vec<(SemiSparseLinear, SemiSparseLinear)> = (0..12)
        .map(|_| {
            let (w1, b1) = pruned(3072, 768, cuda);
            let (w2, b2) = pruned(768, 3072, cuda);
            (
                SemiSparseLinear::new(&w1, Some(&b1)).unwrap(),
                SemiSparseLinear::new(&w2, Some(&b2)).unwrap(),
            )
        })
        .collect();
    eprintln!(
        "bert-base ffn fp16, 12 layers, seq 128: batch, dense us, sparse us, chosen us, choices"
    );
    for batch in [1, 4, 16, 64, 256] {
        let x = Tensor::randn([batch * 128, 768], (Kind::Half, cuda));
        let mut choices = Vec::new();
        for (a, b) in &stack {
            choices.push(a.decision(&x).unwrap().map(|d| d.choice));
            let h = x.linear(a.weight(), a.bias());
            choices.push(b.decision(&h).unwrap().map(|d| d.choice));
        }
        let run = |pick: &dyn Fn(&SemiSparseLinear, &Tensor) -> Tensor| {
            let mut h = x.shallow_clone();
            for (a, b) in &stack {
                h = pick(b, &pick(a, &h).gelu("none"));
            }
            h
        };
        let dense = time_us(&mut || drop(run(&|l, h| h.linear(l.weight(), l.bias()))));
        let sparse = time_us(&mut || {
            drop(run(&|l, h| l.f_forward_with(h, Candidate::Sparse { alg_id: 0 }).unwrap()))
        });
        let chosen = time_us(&mut || drop(run(&|l, h| l.forward(h))));
        let n_sparse =
            choices.iter().filter(|c| matches!(c, Some(Candidate::Sparse { .. }))).count();
        eprintln!("{batch:>4} {dense:>10.1} {sparse:>10.1} {chosen:>10.1}  {n_sparse}/24 sparse");
    }
}
