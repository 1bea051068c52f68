//! Movement pruning with structured scores (block, row, column) in a training loop, the score
//! initialisations against the reference's formulas, and a movement-managed parameter pruned
//! again another way.

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};
use tch_prune::movement::{
    Binarizer, Granularity, MovementConfig, MovementPruner, ScoreInit, ThresholdSchedule,
};
use tch_prune::{prunable, L1Unstructured, PruneError, PrunedModel, Pruner};

#[derive(Debug)]
struct Net {
    a: nn::Linear,
    b: nn::Linear,
}
prunable!(Net { a, b });

/// Each `(br, bc)` block of `mask` (2-D) is all ones or all zeros.
fn blocks_uniform(mask: &Tensor, br: i64, bc: i64) -> bool {
    let (r, c) = (mask.size()[0], mask.size()[1]);
    let sums = mask.reshape([r / br, br, c / bc, bc]).sum_dim_intlist(
        [1, 3].as_slice(),
        false,
        Kind::Float,
    );
    Vec::<f32>::try_from(&sums.reshape([-1]))
        .unwrap()
        .iter()
        .all(|&s| s == 0.0 || s == (br * bc) as f32)
}

/// Trains a 16-32-4 MLP for 200 steps with Top-K on `granularity` scores; `block(shape)` is the
/// block of a weight of that shape.
fn train_structured(granularity: Granularity, block: impl Fn(&[i64]) -> (i64, i64)) {
    tch::manual_seed(21);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net {
        a: nn::linear(vs.root() / "a", 16, 32, Default::default()),
        b: nn::linear(vs.root() / "b", 32, 4, Default::default()),
    };
    let mut model = PrunedModel::new(net, &vs).unwrap();
    let names = ["a.weight", "b.weight"];
    let config = MovementConfig::new(Binarizer::TopK).with_granularity(granularity);
    let mp = MovementPruner::new(&mut model, &vs, &names, config).unwrap();
    let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
    opt.set_lr_group(1, 1e-2);
    let total = 200;
    let schedule = ThresholdSchedule::new(1.0, 0.25, 10, total, 1, 2).unwrap();
    let x = Tensor::randn([64, 16], (Kind::Float, Device::Cpu));
    let y = x.narrow(1, 0, 4).argmax(1, false);
    let forward = |model: &mut PrunedModel<Net>| {
        model.forward_with(|net| net.b.forward(&net.a.forward(&x).relu())).unwrap()
    };
    let shapes = [vec![32i64, 16], vec![4, 32]];
    let mut grads = [false, false];
    for step in 0..total {
        let t = schedule.threshold(step);
        mp.set_threshold(t).unwrap();
        let loss = forward(&mut model).cross_entropy_for_logits(&y);
        opt.zero_grad();
        loss.backward();
        for (seen, name) in grads.iter_mut().zip(names) {
            let g = mp.scores(name).unwrap().grad();
            *seen |= g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0;
        }
        opt.step();
        // Kept: `int(t · blocks)` whole blocks per weight.
        let want: i64 = shapes
            .iter()
            .map(|s| {
                let (br, bc) = block(s);
                let blocks = (s[0] / br) * (s[1] / bc);
                (t * blocks as f64) as i64 * br * bc
            })
            .sum();
        assert_eq!(mp.kept_fraction().unwrap(), want as f64 / 640.0, "{granularity:?} step {step}");
        for (name, s) in names.iter().zip(&shapes) {
            let (br, bc) = block(s);
            assert!(blocks_uniform(model.mask(name).unwrap(), br, bc), "{name} step {step}");
        }
    }
    assert_eq!(grads, [true, true], "{granularity:?}: scores never received gradient");
    let masks: Vec<Tensor> = names.iter().map(|n| model.mask(n).unwrap().copy()).collect();
    assert!(masks.iter().all(|m| m.eq(0.0).any().int64_value(&[]) == 1), "nothing pruned");
    mp.set_training(false);
    let before = tch::no_grad(|| forward(&mut model));
    mp.fold(&mut model, &vs).unwrap();
    let vars = vs.variables();
    for (name, mask) in names.iter().zip(&masks) {
        assert!(!vars.contains_key(&format!("{name}_scores")));
        let pruned = vars[*name].masked_select(&mask.eq(0.0));
        assert!(pruned.numel() > 0);
        assert_eq!(pruned.abs().max().double_value(&[]), 0.0, "{name}: folded entries not zero");
    }
    let plain = tch::no_grad(|| model.model().b.forward(&model.model().a.forward(&x).relu()));
    assert!(plain.allclose(&before, 1e-6, 1e-6, false));
}

#[test]
fn training_block_scores() {
    train_structured(Granularity::Block(4, 4), |_| (4, 4));
}

#[test]
fn training_row_scores_whole_rows() {
    train_structured(Granularity::Row, |s| (1, s[1]));
}

#[test]
fn training_column_scores_whole_columns() {
    train_structured(Granularity::Column, |s| (s[0], 1));
}

/// Scores of a `[64, 256]` weight under `init` and `granularity`.
fn initial_scores(init: ScoreInit, granularity: Granularity) -> Tensor {
    let vs = nn::VarStore::new(Device::Cpu);
    let fc = nn::linear(vs.root() / "fc", 256, 64, Default::default());
    let mut model = PrunedModel::with_prefix(fc, &vs, "fc").unwrap();
    let config = MovementConfig::new(Binarizer::TopK).with_init(init).with_granularity(granularity);
    let mp = MovementPruner::new(&mut model, &vs, &["fc.weight"], config).unwrap();
    mp.scores("fc.weight").unwrap().detach()
}

/// Uniform in `[-bound, bound]`: inside the bounds, reaching near both, mean near 0 and
/// standard deviation near `bound / sqrt(3)` (tolerances a few standard errors wide).
fn check_uniform(s: &Tensor, bound: f64) {
    let n = s.numel() as f64;
    let (min, max) = (s.min().double_value(&[]), s.max().double_value(&[]));
    assert!(min >= -bound && max <= bound, "[{min}, {max}] outside ±{bound}");
    assert!(min < -bound * (1.0 - 20.0 / n) && max > bound * (1.0 - 20.0 / n), "[{min}, {max}]");
    let mean = s.mean(Kind::Double).double_value(&[]);
    let sd = bound / 3f64.sqrt();
    assert!(mean.abs() < 5.0 * sd / n.sqrt(), "mean {mean}");
    let std = s.std(true).double_value(&[]);
    assert!((std / sd - 1.0).abs() < 5.0 / (2.0 * n).sqrt() * 1.2, "std {std} vs {sd}");
}

#[test]
fn uniform_scores_lie_in_the_scale() {
    tch::manual_seed(1);
    check_uniform(&initial_scores(ScoreInit::Uniform(0.3), Granularity::Weight), 0.3);
    let s = initial_scores(ScoreInit::Constant(-1.25), Granularity::Weight);
    assert_eq!(s, s.full_like(-1.25));
}

#[test]
fn kaiming_scores_follow_kaiming_uniform_with_a_sqrt5() {
    tch::manual_seed(2);
    // `kaiming_uniform_(t, a=sqrt(5))`: bound = gain · sqrt(3 / fan_in), gain = sqrt(2 / (1 + a²)),
    // fan_in = the size of the second dimension of the scores.
    let bound = |fan_in: f64| (2.0 / (1.0 + 5.0f64)).sqrt() * (3.0 / fan_in).sqrt();
    check_uniform(&initial_scores(ScoreInit::Kaiming, Granularity::Weight), bound(256.0));
    let blocks = initial_scores(ScoreInit::Kaiming, Granularity::Block(1, 4));
    assert_eq!(blocks.size(), [64, 64]);
    check_uniform(&blocks, bound(64.0));
}

#[test]
fn pruning_a_movement_parameter_another_way_is_refused_until_folded() {
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net {
        a: nn::linear(vs.root() / "a", 8, 8, Default::default()),
        b: nn::linear(vs.root() / "b", 8, 2, Default::default()),
    };
    let mut model = PrunedModel::new(net, &vs).unwrap();
    let config = MovementConfig::new(Binarizer::TopK).with_init(ScoreInit::Uniform(1.0));
    let mp = MovementPruner::new(&mut model, &vs, &["a.weight"], config).unwrap();
    mp.set_threshold(0.5).unwrap();
    mp.refresh_masks().unwrap();
    let mask = model.mask("a.weight").unwrap().copy();
    let snapshot = |vs: &nn::VarStore| {
        let mut vars: Vec<(String, Tensor)> =
            vs.variables().into_iter().map(|(n, t)| (n, t.copy())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    };
    let before = snapshot(&vs);
    let managed =
        |e: PruneError| matches!(e, PruneError::MovementManaged { ref name } if name == "a.weight");
    assert!(managed(model.l1_unstructured("a.weight", 0.75, None).unwrap_err()));
    let err = model
        .global_unstructured(&["b.weight", "a.weight"], L1Unstructured::new(0.5).unwrap(), &[])
        .unwrap_err();
    assert!(managed(err));
    assert!(managed(model.remove("a.weight").unwrap_err()));
    // Nothing changed: the same mask, one method in the history, b still unpruned, and the
    // movement mask still drives the forward.
    assert_eq!(model.mask("a.weight").unwrap(), &mask);
    assert_eq!(model.history("a.weight").unwrap().len(), 1);
    assert!(!model.is_parameter_pruned("b.weight"));
    assert_eq!(mp.kept_fraction().unwrap(), 0.5);
    // The VarStore too: the same variables (names and values).
    let after = snapshot(&vs);
    assert_eq!(before.len(), after.len());
    for ((n0, t0), (n1, t1)) in before.iter().zip(&after) {
        assert_eq!(n0, n1);
        assert!(t0.equal(t1), "{n0} changed");
    }
    // Other parameters prune as usual; after the fold, so does the folded one.
    model.l1_unstructured("b.weight", 0.5, None).unwrap();
    mp.fold(&mut model, &vs).unwrap();
    model.l1_unstructured("a.weight", 0.75, None).unwrap();
    let zeros = model.mask("a.weight").unwrap().eq(0.0).sum(Kind::Int64).int64_value(&[]);
    assert_eq!(zeros, 48);
}
