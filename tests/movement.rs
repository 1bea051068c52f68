//! Movement pruning against the reference (`scripts/movement_reference.py`, written from the
//! paper's code): masks bit for bit on tie-free scores for every variant, gradients to weights
//! and scores `allclose`, the schedule sequence identical; then training checks.

mod common;

use std::collections::BTreeMap;

use common::python::{read_safetensors, run_script, TempDir};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};
use tch_prune::movement::{
    noise_value, Binarizer, Granularity, MovementConfig, MovementPruner, ThresholdSchedule,
};
use tch_prune::{prunable, PruneError, PrunedModel, Pruner};

#[derive(Debug)]
struct Net {
    a: nn::Linear,
    b: nn::Linear,
}
prunable!(Net { a, b });

fn reference() -> BTreeMap<String, Tensor> {
    let dir = TempDir::new("movement");
    let report = run_script("movement_reference.py", &[dir.arg()]);
    assert!(report.starts_with("movement: ok"), "{report}");
    read_safetensors(&dir.join("movement.safetensors"))
}

/// A two-layer net holding the fixture's weights, under movement pruning with the fixture's
/// scores.
fn setup(
    r: &BTreeMap<String, Tensor>,
    binarizer: Binarizer,
) -> (nn::VarStore, PrunedModel<Net>, MovementPruner) {
    let vs = nn::VarStore::new(Device::Cpu);
    let lin = |name: &str| {
        let w = &r[&format!("{name}.weight")];
        let (o, i) = (w.size()[0], w.size()[1]);
        nn::linear(vs.root() / name, i, o, nn::LinearConfig { bias: false, ..Default::default() })
    };
    let net = Net { a: lin("a"), b: lin("b") };
    tch::no_grad(|| {
        net.a.ws.shallow_clone().copy_(&r["a.weight"]);
        net.b.ws.shallow_clone().copy_(&r["b.weight"]);
    });
    let mut model = PrunedModel::new(net, &vs).unwrap();
    let config = MovementConfig::new(binarizer).with_seed(5);
    let mp = MovementPruner::new(&mut model, &vs, &["a.weight", "b.weight"], config).unwrap();
    if binarizer.has_scores() {
        tch::no_grad(|| {
            mp.scores("a.weight").unwrap().copy_(&r["a.scores"]);
            mp.scores("b.weight").unwrap().copy_(&r["b.scores"]);
        });
    }
    (vs, model, mp)
}

/// One forward and backward per layer as in the fixture; checks mask, weight and score
/// gradients against `{prefix}.{layer}.*`.
fn check_against(r: &BTreeMap<String, Tensor>, binarizer: Binarizer, threshold: f64, prefix: &str) {
    let (vs, mut model, mp) = setup(r, binarizer);
    mp.set_threshold(threshold).unwrap();
    for layer in ["a", "b"] {
        let name = format!("{layer}.weight");
        let (x, g) = (&r[&format!("{layer}.x")], &r[&format!("{layer}.g")]);
        let y = model
            .forward_with(|net| if layer == "a" { net.a.forward(x) } else { net.b.forward(x) })
            .unwrap();
        (y * g).sum(Kind::Float).backward();
        let mask = model.mask(&name).unwrap();
        assert_eq!(mask, &r[&format!("{prefix}.{layer}.mask")], "{prefix} {layer} mask");
        let orig = model.orig(&name).unwrap();
        let gw = orig.grad();
        assert!(
            gw.allclose(&r[&format!("{prefix}.{layer}.gw")], 1e-5, 1e-5, false),
            "{prefix} {layer} weight grad"
        );
        if binarizer.has_scores() {
            let gs = mp.scores(&name).unwrap().grad();
            assert!(
                gs.allclose(&r[&format!("{prefix}.{layer}.gs")], 1e-5, 1e-5, false),
                "{prefix} {layer} score grad"
            );
        }
    }
    drop(vs);
}

#[test]
fn every_variant_matches_the_reference() {
    let r = reference();
    for t in ["0.5", "0.1", "0.03"] {
        let tf: f64 = t.parse().unwrap();
        check_against(&r, Binarizer::TopK, tf, &format!("topk.{t}"));
        check_against(&r, Binarizer::Magnitude, tf, &format!("magnitude.{t}"));
    }
    for tau in ["0.3", "0.999"] {
        check_against(
            &r,
            Binarizer::SigmoidThreshold,
            tau.parse().unwrap(),
            &format!("soft.{tau}"),
        );
    }
    // L0 in evaluation: deterministic gate.
    {
        let (_vs, mut model, mp) = setup(&r, Binarizer::L0);
        mp.set_training(false);
        model.refresh().unwrap();
        for layer in ["a", "b"] {
            let mask = model.mask(&format!("{layer}.weight")).unwrap();
            assert_eq!(mask, &r[&format!("l0eval.{layer}.mask")]);
        }
    }
    check_l0_eval_gradients(&r);
    check_l0_training(&r);
    // Global Top-K: int(n·t)+1 kept over both tensors, everything at t = 1.
    for t in ["0.5", "0.1", "0.03", "1.0"] {
        let (_vs, mut model, mp) = setup(&r, Binarizer::GlobalTopK);
        mp.set_threshold(t.parse().unwrap()).unwrap();
        model.refresh().unwrap();
        for layer in ["a", "b"] {
            let mask = model.mask(&format!("{layer}.weight")).unwrap();
            assert_eq!(mask, &r[&format!("global.{t}.{layer}.mask")], "global {t} {layer}");
        }
    }
    // Regularisers.
    for (binarizer, key) in [(Binarizer::SigmoidThreshold, "regu.l1"), (Binarizer::L0, "regu.l0")] {
        let (_vs, _model, mp) = setup(&r, binarizer);
        let got = mp.regularization().unwrap().reshape([1]);
        assert!(got.allclose(&r[key], 1e-6, 1e-6, false), "{key}: {got} vs {}", r[key]);
    }
}

fn check_l0_eval_gradients(r: &BTreeMap<String, Tensor>) {
    let (_vs, mut model, mp) = setup(r, Binarizer::L0);
    mp.set_training(false);
    for layer in ["a", "b"] {
        let name = format!("{layer}.weight");
        let (x, g) = (&r[&format!("{layer}.x")], &r[&format!("{layer}.g")]);
        let y = model
            .forward_with(|net| if layer == "a" { net.a.forward(x) } else { net.b.forward(x) })
            .unwrap();
        (y * g).sum(Kind::Float).backward();
        let gs = mp.scores(&name).unwrap().grad();
        assert!(gs.allclose(&r[&format!("l0eval.{layer}.gs")], 1e-5, 1e-5, false));
        let gw = model.orig(&name).unwrap().grad();
        assert!(gw.allclose(&r[&format!("l0eval.{layer}.gw")], 1e-5, 1e-5, false));
    }
}

/// L0 in training: one refresh draws the noise for both parameters in order (seed 5); the
/// effective weights and gradients match the reference given the same draws.
fn check_l0_training(r: &BTreeMap<String, Tensor>) {
    let (_vs, mut model, mp) = setup(r, Binarizer::L0);
    let net = model.refreshed().unwrap();
    let ya = net.a.forward(&r["a.x"]);
    let yb = net.b.forward(&r["b.x"]);
    let loss = (ya * &r["a.g"]).sum(Kind::Float) + (yb * &r["b.g"]).sum(Kind::Float);
    loss.backward();
    for layer in ["a", "b"] {
        let name = format!("{layer}.weight");
        let w_eff = model.model().a.ws.shallow_clone();
        if layer == "a" {
            let want = &r["a.weight"] * &r["l0train.a.mask"];
            assert_eq!(w_eff.detach(), want, "l0 train effective weight");
        }
        let gs = mp.scores(&name).unwrap().grad();
        assert!(
            gs.allclose(&r[&format!("l0train.{layer}.gs")], 1e-5, 1e-5, false),
            "l0 train {layer}"
        );
    }
    assert!((0.0..1.0).contains(&noise_value(5, 0)));
}

#[test]
fn schedule_matches_the_reference_bit_for_bit() {
    let r = reference();
    let cases = [
        (1.0, 0.15, 54, 1000, 1, 2, 0.0),
        (0.0, 0.1, 30, 777, 1, 2, 400.0),
        (1.0, 0.03, 7, 100, 2, 3, 1.0),
    ];
    for (i, (ti, tf, w, total, iw, fw, lam)) in cases.into_iter().enumerate() {
        let s = ThresholdSchedule::new(ti, tf, w, total, iw, fw).unwrap().with_final_lambda(lam);
        let (t, l): (Vec<f64>, Vec<f64>) =
            (-2..total + 5).map(|step| (s.threshold(step), s.lambda(step))).unzip();
        let want_t = Vec::<f64>::try_from(&r[&format!("schedule.{i}.threshold")]).unwrap();
        let want_l = Vec::<f64>::try_from(&r[&format!("schedule.{i}.lambda")]).unwrap();
        assert_eq!(t, want_t, "schedule {i} thresholds");
        assert_eq!(l, want_l, "schedule {i} lambdas");
    }
}

/// A 2-layer MLP on a synthetic task, trained for 300 steps under each variant.
fn train(binarizer: Binarizer, granularity: Granularity) {
    tch::manual_seed(11);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net {
        a: nn::linear(vs.root() / "a", 16, 32, Default::default()),
        b: nn::linear(vs.root() / "b", 32, 4, Default::default()),
    };
    let mut model = PrunedModel::new(net, &vs).unwrap();
    let config = MovementConfig::new(binarizer).with_granularity(granularity).with_seed(3);
    let names = ["a.weight", "b.weight"];
    let mp = MovementPruner::new(&mut model, &vs, &names, config).unwrap();
    let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
    if binarizer.has_scores() {
        opt.set_lr_group(1, 1e-2); // no group 1 without scores: tch panics on it
    }
    let (initial, last) = match binarizer {
        Binarizer::SigmoidThreshold => (0.0, 0.1),
        Binarizer::L0 => (1.0, 1.0),
        _ => (1.0, 0.1),
    };
    let total = 300;
    let schedule =
        ThresholdSchedule::new(initial, last, 20, total, 1, 2).unwrap().with_final_lambda(1.0);
    let x = Tensor::randn([64, 16], (Kind::Float, Device::Cpu));
    let y = x.narrow(1, 0, 4).argmax(1, false);
    let forward = |model: &mut PrunedModel<Net>| {
        model.forward_with(|net| net.b.forward(&net.a.forward(&x).relu())).unwrap()
    };
    let mut score_grad_seen = false;
    for step in 0..total {
        let t = schedule.threshold(step);
        mp.set_threshold(t).unwrap();
        let logits = forward(&mut model);
        let loss = logits.cross_entropy_for_logits(&y)
            + mp.regularization().unwrap() * schedule.lambda(step);
        opt.zero_grad();
        loss.backward();
        if binarizer.has_scores() {
            let g = mp.scores("a.weight").unwrap().grad();
            score_grad_seen |= g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0;
        }
        opt.step();
        // The kept fraction follows the schedule (Top-K and magnitude: exactly the count rule).
        let kept = mp.kept_fraction().unwrap();
        match (binarizer, granularity) {
            (Binarizer::TopK | Binarizer::Magnitude, Granularity::Weight) => {
                let want = ((t * 512.0) as i64 + (t * 128.0) as i64) as f64 / 640.0;
                assert_eq!(kept, want, "{binarizer:?} step {step}");
            }
            (Binarizer::GlobalTopK, _) => {
                let n = 640.0;
                let want = if t >= 1.0 {
                    1.0
                } else {
                    (n - (n - ((n * t) as i64 + 1) as f64).max(1.0)) / n
                };
                assert_eq!(kept, want, "{binarizer:?} step {step}");
            }
            (Binarizer::TopK, Granularity::Row) => {
                let want = ((t * 32.0) as i64 * 16 + (t * 4.0) as i64 * 32) as f64 / 640.0;
                assert_eq!(kept, want, "rows step {step}");
            }
            _ => assert!((0.0..=1.0).contains(&kept)),
        }
    }
    if binarizer.has_scores() {
        assert!(score_grad_seen, "{binarizer:?}: scores never received gradient");
    }
    // Evaluation is deterministic.
    mp.set_training(false);
    let (e1, e2) = tch::no_grad(|| (forward(&mut model), forward(&mut model)));
    assert_eq!(e1, e2, "{binarizer:?}: evaluation differs");
    let masks: Vec<Tensor> = names.iter().map(|n| model.mask(n).unwrap().copy()).collect();
    if matches!(granularity, Granularity::Row) {
        // Whole rows kept or dropped.
        let m = &masks[0];
        let rows = m.sum_dim_intlist(1, false, Kind::Float);
        assert!(Vec::<f32>::try_from(&rows).unwrap().iter().all(|&r| r == 0.0 || r == 16.0));
    }
    mp.fold(&mut model, &vs).unwrap();
    let vars = vs.variables();
    for (name, mask) in names.iter().zip(&masks) {
        assert!(!vars.contains_key(&format!("{name}_scores")));
        let w = &vars[*name];
        // Pruned entries of the folded weights are exactly zero.
        let pruned = mask.eq(0.0);
        assert_eq!(w.masked_select(&pruned).abs().sum(Kind::Float).double_value(&[]), 0.0);
    }
    if binarizer != Binarizer::L0 {
        assert!(
            masks[0].eq(0.0).sum(Kind::Int64).int64_value(&[]) > 0,
            "{binarizer:?} pruned nothing"
        );
    }
    // The folded model computes what the pruned one did in evaluation.
    let plain = tch::no_grad(|| model.model().b.forward(&model.model().a.forward(&x).relu()));
    assert!(plain.allclose(&e1, 1e-6, 1e-6, false));
}

#[test]
fn training_top_k() {
    train(Binarizer::TopK, Granularity::Weight);
}

#[test]
fn training_global_top_k() {
    train(Binarizer::GlobalTopK, Granularity::Weight);
}

#[test]
fn training_soft_threshold() {
    train(Binarizer::SigmoidThreshold, Granularity::Weight);
}

#[test]
fn training_l0() {
    train(Binarizer::L0, Granularity::Weight);
}

#[test]
fn training_magnitude() {
    train(Binarizer::Magnitude, Granularity::Weight);
}

#[test]
fn training_row_scores() {
    train(Binarizer::TopK, Granularity::Row);
}

#[test]
fn scores_have_their_own_group() {
    let vs = nn::VarStore::new(Device::Cpu);
    let fc = nn::linear(vs.root() / "fc", 4, 3, Default::default());
    let mut model = PrunedModel::with_prefix(fc, &vs, "fc").unwrap();
    let config = MovementConfig::new(Binarizer::TopK).with_score_group(3);
    let mp = MovementPruner::new(&mut model, &vs, &["fc.weight"], config).unwrap();
    let scores = mp.scores("fc.weight").unwrap();
    let vars = vs.variables_.lock().unwrap();
    let var =
        vars.trainable_variables.iter().find(|v| v.tensor.data_ptr() == scores.data_ptr()).unwrap();
    assert_eq!(var.group, 3);
    assert!(vars.named_variables.contains_key("fc.weight_scores"));
}

#[test]
fn bad_input_is_a_typed_error_that_changes_nothing() {
    let vs = nn::VarStore::new(Device::Cpu);
    let fc = nn::linear(vs.root() / "fc", 4, 3, Default::default());
    let mut model = PrunedModel::with_prefix(fc, &vs, "fc").unwrap();
    let err =
        MovementPruner::new(&mut model, &vs, &["fc.nope"], MovementConfig::new(Binarizer::TopK))
            .unwrap_err();
    assert!(matches!(err, PruneError::UnknownParameter { .. }));
    let err = MovementPruner::new(
        &mut model,
        &vs,
        &["fc.weight", "fc.weight"],
        MovementConfig::new(Binarizer::TopK),
    )
    .unwrap_err();
    assert!(matches!(err, PruneError::DuplicateParameter { .. }));
    let config = MovementConfig::new(Binarizer::Magnitude).with_granularity(Granularity::Row);
    let err = MovementPruner::new(&mut model, &vs, &["fc.weight"], config).unwrap_err();
    assert!(matches!(err, PruneError::BlockMismatch { .. }));
    assert_eq!(vs.variables().len(), 2);
    assert!(!model.is_pruned());
    let mp =
        MovementPruner::new(&mut model, &vs, &["fc.weight"], MovementConfig::new(Binarizer::TopK))
            .unwrap();
    for bad in [1.5, -0.1, f64::NAN] {
        let err = mp.set_threshold(bad).unwrap_err();
        assert!(matches!(err, PruneError::InvalidThreshold { method: "topK", .. }));
    }
    assert_eq!(mp.threshold(), 1.0);
    assert!(matches!(
        ThresholdSchedule::new(1.0, 0.0, 1, 10, 1, 1).unwrap_err(),
        PruneError::InvalidSchedule { parameter: "final_threshold", .. }
    ));
}
