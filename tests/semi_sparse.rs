//! CPU tests of `tch_prune::semi_sparse`: every eligibility rule, the dense fallback against
//! the masked `Linear`, the conversion report, and the dense/sparse choice with an injected
//! timer (never the wall clock). The CUDA side is in tests/cuda_semi_sparse.rs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};
use tch_prune::semi_sparse::{
    check_weight, convert_linears, ineligible, Candidate, ChoiceCache, ChoiceKey, Ineligible,
    SemiSparseLinear, Timer,
};
use tch_prune::{prunable, PruneError, PrunedModel, Pruner, SemiStructured};

/// A 2:4 weight `[rows, cols]` of `kind`: every group of 4 is `[a, 0, b, 0]`.
fn two_four(rows: i64, cols: i64, kind: Kind) -> Tensor {
    let w = Tensor::arange(rows * cols, (Kind::Float, Device::Cpu)).reshape([rows, cols]) + 1.0;
    let keep = Tensor::from_slice(&[1.0f32, 0.0, 1.0, 0.0]).repeat([rows, cols / 4]);
    (w * keep).to_kind(kind)
}

fn reason(w: &Tensor) -> String {
    ineligible(w).unwrap().map(|r| r.to_string()).unwrap_or_default()
}

#[test]
fn each_rule_has_its_reason() {
    let w = two_four(32, 64, Kind::Half);
    assert_eq!(reason(&w), "device is CPU");
    assert_eq!(reason(&w.reshape([2, 16, 64])), "weight has shape [2, 16, 64], needs 2-D");
    assert_eq!(reason(&w.tr()), "weight is not contiguous");
    assert_eq!(reason(&w.to_kind(Kind::Float)), "dtype Float not supported: needs f16 or bf16");
    assert_eq!(reason(&w.to_kind(Kind::Int8)), "dtype Int8 not supported: needs f16 or bf16");
    assert_eq!(reason(&w.to_kind(Kind::BFloat16)), "device is CPU");
    assert_eq!(reason(&w.narrow(1, 0, 48).contiguous()), "device is CPU");
    assert_eq!(reason(&two_four(32, 40, Kind::Half)), "in_features 40 not a multiple of 16");
    assert_eq!(reason(&two_four(30, 64, Kind::Half)), "out_features 30 not a multiple of 16");
    let dense = w.copy();
    let _ = dense.get(3).narrow(0, 68 - 64, 4).fill_(1.0); // group 1 of row 3: 4 non-zeros
    let _ = dense.get(5).narrow(0, 4 * 7, 4).fill_(1.0);
    assert_eq!(
        ineligible(&dense).unwrap(),
        Some(Ineligible::TooManyNonZeros { row: 3, group: 1, count: 4 })
    );
    let three = w.copy();
    let _ = three.get(0).narrow(0, 4 * 5 + 1, 1).fill_(f64::NAN); // NaN counts as non-zero
    assert_eq!(reason(&three), "group 5 of row 0 holds 3 non-zeros (at most 2 of 4)");
}

#[test]
fn check_weight_names_the_parameter() {
    let err = check_weight("enc.fc1.weight", &two_four(16, 40, Kind::Half)).unwrap_err();
    assert!(
        matches!(&err, PruneError::NotSemiSparse { parameter, .. } if parameter == "enc.fc1.weight")
    );
    assert_eq!(
        err.to_string(),
        "enc.fc1.weight: not 2:4 sparse-capable: in_features 40 not a multiple of 16"
    );
}

#[derive(Debug)]
struct Net {
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc3: nn::Linear,
}
prunable!(Net { fc1, fc2, fc3 });

impl Module for Net {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.fc1).relu().apply(&self.fc2).relu().apply(&self.fc3)
    }
}

fn pruned_net(vs: &nn::VarStore) -> PrunedModel<Net> {
    tch::manual_seed(7);
    let net = Net {
        fc1: nn::linear(vs.root() / "fc1", 64, 32, Default::default()),
        fc2: nn::linear(vs.root() / "fc2", 32, 32, Default::default()),
        fc3: nn::linear(vs.root() / "fc3", 32, 30, Default::default()),
    };
    let mut model = PrunedModel::new(net, vs).unwrap();
    let nm = SemiStructured::new(2, 4).unwrap();
    for layer in model.layers_of::<nn::Linear>() {
        model.apply(&format!("{layer}.weight"), nm, None).unwrap();
    }
    model
}

#[test]
fn dense_fallback_equals_the_masked_linear_exactly() {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = pruned_net(&vs);
    let x = Tensor::randn([5, 7, 64], (Kind::Float, Device::Cpu));
    let expected = model.forward(&x).unwrap();
    let (layers, _) = convert_linears(model.refreshed().unwrap()).unwrap();
    let y = x.apply(&layers["fc1"]).relu().apply(&layers["fc2"]).relu().apply(&layers["fc3"]);
    assert_eq!(y.size(), [5, 7, 30]);
    assert!(y.equal(&expected));
    let fc1 = &layers["fc1"];
    assert!(fc1.f_forward(&x).unwrap().equal(&model.refreshed().unwrap().fc1.forward(&x)));
    assert!(fc1.decision(&x.reshape([-1, 64])).unwrap().is_none());
}

#[test]
fn conversion_report_on_the_cpu() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let mut model = pruned_net(&vs);
    let (layers, report) = convert_linears(model.refreshed().unwrap()).unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!(report.sparse().count(), 0);
    assert_eq!(
        report.to_string(),
        "fc1: [32, 64] dense: dtype Float not supported: needs f16 or bf16\n\
         fc2: [32, 32] dense: dtype Float not supported: needs f16 or bf16\n\
         fc3: [30, 32] dense: dtype Float not supported: needs f16 or bf16\n"
    );
    vs.half();
    let (_, report) = convert_linears(model.refreshed().unwrap()).unwrap();
    let reasons: Vec<String> =
        report.layers.iter().map(|l| l.reason.as_ref().unwrap().to_string()).collect();
    assert_eq!(reasons, ["device is CPU", "device is CPU", "out_features 30 not a multiple of 16"]);
    // Unpruned, the 2:4 rule is what fails.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let fc = nn::linear(vs.root() / "fc", 16, 16, Default::default());
    vs.half();
    let layer = SemiSparseLinear::from_linear(&fc).unwrap();
    assert!(matches!(
        layer.fallback_reason(),
        Some(Ineligible::TooManyNonZeros { row: 0, group: 0, .. })
    ));
}

#[test]
fn layer_rejects_bad_arguments() {
    let w = two_four(16, 16, Kind::Half);
    let bad_bias = Tensor::zeros([15], (Kind::Half, Device::Cpu));
    assert!(matches!(
        SemiSparseLinear::new(&w, Some(&bad_bias)),
        Err(PruneError::ShapeMismatch { parameter: "bias", .. })
    ));
    assert!(matches!(
        SemiSparseLinear::new(&w.reshape([-1]), None),
        Err(PruneError::NotSemiSparse { reason: Ineligible::NotTwoD { .. }, .. })
    ));
    let layer = SemiSparseLinear::new(&w, None).unwrap();
    let x = Tensor::ones([2, 8], (Kind::Half, Device::Cpu));
    assert!(matches!(
        layer.f_forward(&x),
        Err(PruneError::ShapeMismatch { parameter: "input", .. })
    ));
    let x = Tensor::ones([2, 16], (Kind::Float, Device::Cpu));
    assert!(matches!(
        layer.f_forward(&x),
        Err(PruneError::UnsupportedKind { parameter: "input", .. })
    ));
}

/// A timer with fixed times per candidate, counting its calls.
struct Fake {
    dense_us: u64,
    sparse_us: u64,
    calls: Arc<Mutex<Vec<Candidate>>>,
}

impl Timer for Fake {
    fn time(
        &mut self,
        c: Candidate,
        run: &mut dyn FnMut() -> tch_prune::Result<()>,
    ) -> tch_prune::Result<Duration> {
        run()?;
        self.calls.lock().unwrap().push(c);
        let us = if c == Candidate::Dense { self.dense_us } else { self.sparse_us };
        Ok(Duration::from_micros(us))
    }
}

#[test]
fn choice_keeps_the_faster_and_caches_it() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut fast_sparse = Fake { dense_us: 100, sparse_us: 70, calls: Arc::clone(&calls) };
    let key = |batch| ChoiceKey { out_features: 3072, in_features: 768, batch, kind: Kind::Half };
    let mut cache = ChoiceCache::default();
    let mut ran = Vec::new();
    let mut searches = 0;
    let d = cache
        .decide(
            key(64),
            &mut fast_sparse,
            || {
                searches += 1;
                Ok(3)
            },
            &mut |c| {
                ran.push(c);
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(d.choice, Candidate::Sparse { alg_id: 3 });
    assert_eq!((d.dense, d.sparse), (Duration::from_micros(100), Duration::from_micros(70)));
    assert_eq!(ran, [Candidate::Dense, Candidate::Sparse { alg_id: 3 }]);
    // Cached: no search, no timing, no run.
    let again = cache
        .decide(key(64), &mut fast_sparse, || panic!("searched twice"), &mut |_| {
            panic!("ran twice")
        })
        .unwrap();
    assert_eq!(again, d);
    assert_eq!(calls.lock().unwrap().len(), 2);
    // Another batch is another decision; slower sparse (and a tie) stays dense.
    let mut slow_sparse = Fake { dense_us: 50, sparse_us: 90, calls: Arc::clone(&calls) };
    let d4 = cache.decide(key(8), &mut slow_sparse, || Ok(0), &mut |_| Ok(())).unwrap();
    assert_eq!(d4.choice, Candidate::Dense);
    let mut tie = Fake { dense_us: 50, sparse_us: 50, calls };
    assert_eq!(
        cache.decide(key(16), &mut tie, || Ok(0), &mut |_| Ok(())).unwrap().choice,
        Candidate::Dense
    );
    assert_eq!(cache.len(), 3);
    assert_eq!(searches, 1);
}

#[test]
fn failures_are_not_cached() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut t = Fake { dense_us: 1, sparse_us: 0, calls };
    let key = ChoiceKey { out_features: 16, in_features: 16, batch: 8, kind: Kind::BFloat16 };
    let mut cache = ChoiceCache::default();
    let failed = cache.decide(key, &mut t, || Err(PruneError::EmptyContainer), &mut |_| Ok(()));
    assert!(failed.is_err());
    assert!(cache.is_empty());
    let ok = cache.decide(key, &mut t, || Ok(1), &mut |_| Ok(())).unwrap();
    assert_eq!(ok.choice, Candidate::Sparse { alg_id: 1 });
}
