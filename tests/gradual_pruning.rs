//! `GradualPruner`: at each pruning step every parameter (local) or all of them together
//! (global) reach exactly `round(target * numel)` pruned entries of the whole tensor, never
//! compounding; the entries pruned are the smallest magnitudes still alive; masks never revive;
//! training with an optimizer built before pruning goes on; errors change nothing.

use tch::nn::{self, Module, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};
use tch_prune::{
    prunable, ConstantSparsity, Cubic, FromFn, GradualPruner, PolynomialDecay, PruneError,
    PrunedModel, Pruner, PruningSchedule, PruningScope,
};

#[derive(Debug)]
struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
}
prunable!(Mlp { fc1, fc2 });

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.fc1).relu().apply(&self.fc2)
    }
}

const NAMES: [&str; 2] = ["fc1.weight", "fc2.weight"];

fn model(seed: i64) -> (VarStore, PrunedModel<Mlp>) {
    tch::manual_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let net = Mlp {
        fc1: nn::linear(vs.root() / "fc1", 20, 30, Default::default()),
        fc2: nn::linear(vs.root() / "fc2", 30, 7, Default::default()),
    };
    let model = PrunedModel::new(net, &vs).unwrap();
    (vs, model)
}

/// Python's `round` (half to even) of `target * numel`.
fn expected_count(target: f64, numel: i64) -> i64 {
    (target * numel as f64).round_ties_even() as i64
}

/// The mask of `name`, or ones when it is not pruned.
fn mask_of(model: &PrunedModel<Mlp>, name: &str) -> Tensor {
    match model.mask(name) {
        Some(mask) => mask.copy(),
        None => model.value(name).unwrap().ones_like(),
    }
}

fn zeros(mask: &Tensor) -> i64 {
    mask.eq(0.0).sum(Kind::Int64).int64_value(&[])
}

/// One Adam step on random data, so that `orig` moves between pruning steps.
fn train_step(model: &mut PrunedModel<Mlp>, opt: &mut nn::Optimizer) {
    let x = Tensor::randn([16, 20], (Kind::Float, Device::Cpu));
    let loss = model.forward(&x).unwrap().square().mean(Kind::Float);
    opt.backward_step(&loss);
}

/// Whether every entry pruned by the last step had a magnitude no larger than every entry
/// kept: `before` / `after` are masks, `scores` the magnitudes they were chosen by, all
/// flattened and concatenated over the parameters that compete.
fn smallest_were_pruned(scores: &Tensor, before: &Tensor, after: &Tensor) -> bool {
    let newly = before.ne(0.0).logical_and(&after.eq(0.0));
    let kept = after.ne(0.0);
    if newly.sum(Kind::Int64).int64_value(&[]) == 0 || kept.sum(Kind::Int64).int64_value(&[]) == 0 {
        return true;
    }
    let pruned_max = scores.abs().masked_select(&newly).max().double_value(&[]);
    let kept_min = scores.abs().masked_select(&kept).min().double_value(&[]);
    pruned_max <= kept_min
}

/// Drives `pruner` over `steps` with an Adam step after each, checking at every pruning step
/// that the masks only lose entries, that the smallest alive magnitudes went, and handing the
/// progress to `check`.
fn run(
    pruner: &mut GradualPruner,
    model: &mut PrunedModel<Mlp>,
    vs: &VarStore,
    steps: std::ops::Range<i64>,
    mut check: impl FnMut(&PrunedModel<Mlp>, &tch_prune::PruneProgress),
) -> usize {
    let mut opt = nn::Adam::default().build(vs, 1e-2).unwrap();
    let mut prunes = 0;
    for step in steps {
        let before: Vec<Tensor> = NAMES.iter().map(|n| mask_of(model, n)).collect();
        let scores: Vec<Tensor> = NAMES.iter().map(|n| model.value(n).unwrap()).collect();
        match pruner.step(model, step).unwrap() {
            None => {
                for (name, old) in NAMES.iter().zip(&before) {
                    assert!(mask_of(model, name).equal(old), "step {step} changed {name}");
                }
            }
            Some(progress) => {
                prunes += 1;
                assert_eq!(progress.step(), step);
                assert_eq!(pruner.schedule().prune_at(step), Some(progress.target()));
                let after: Vec<Tensor> = NAMES.iter().map(|n| mask_of(model, n)).collect();
                for ((name, old), new) in NAMES.iter().zip(&before).zip(&after) {
                    // Monotone: nothing pruned comes back.
                    let revived = old.eq(0.0).logical_and(&new.ne(0.0));
                    assert_eq!(revived.sum(Kind::Int64).int64_value(&[]), 0, "{name} at {step}");
                }
                let flat = |ts: &[Tensor]| {
                    Tensor::cat(&ts.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(), 0)
                };
                match pruner.scope() {
                    PruningScope::Local => {
                        for i in 0..NAMES.len() {
                            assert!(
                                smallest_were_pruned(&scores[i], &before[i], &after[i]),
                                "{} at {step}",
                                NAMES[i]
                            );
                        }
                    }
                    PruningScope::Global => {
                        assert!(smallest_were_pruned(
                            &flat(&scores),
                            &flat(&before),
                            &flat(&after)
                        ));
                    }
                    // `PruningScope` is `#[non_exhaustive]`.
                    other => panic!("untested scope {other:?}"),
                }
                for (p, name) in progress.parameters().iter().zip(NAMES) {
                    assert_eq!(p.name(), name);
                    assert_eq!(p.pruned(), zeros(&mask_of(model, name)));
                    // The layer computes with zeros there.
                    assert_eq!(zeros(&model.value(name).unwrap()), p.pruned());
                }
                check(model, &progress);
            }
        }
        train_step(model, &mut opt);
    }
    prunes
}

#[test]
fn local_pruning_reaches_the_target_of_each_whole_tensor() {
    let (vs, mut model) = model(0);
    let schedule = PolynomialDecay::new(0.0, 0.9, 0, 100).unwrap().with_frequency(10).unwrap();
    let mut pruner = GradualPruner::new(schedule, NAMES).unwrap();
    let mut targets = Vec::new();
    let prunes = run(&mut pruner, &mut model, &vs, 0..130, |_, progress| {
        for p in progress.parameters() {
            assert_eq!(p.pruned(), expected_count(progress.target(), p.numel()), "{p:?}");
        }
        targets.push(progress.target());
    });
    assert_eq!(prunes, 11);
    assert!(targets.windows(2).all(|w| w[0] <= w[1]));
    let last = pruner.last_progress().unwrap();
    assert_eq!(last.step(), 100);
    assert_eq!(last.parameters()[0].pruned(), 540); // 0.9 * 600
    assert_eq!(last.parameters()[1].pruned(), 189); // 0.9 * 210
}

#[test]
fn a_constant_target_does_not_compound() {
    let (vs, mut model) = model(1);
    let mut pruner =
        GradualPruner::new(ConstantSparsity::new(0.5, 0, None, 1).unwrap(), NAMES).unwrap();
    let prunes = run(&mut pruner, &mut model, &vs, 0..5, |_, progress| {
        // 50% of the whole tensor every time, not 50%, 75%, 87.5%, ...
        assert_eq!(progress.parameters()[0].pruned(), 300);
        assert_eq!(progress.parameters()[1].pruned(), 105);
        assert_eq!(progress.sparsity(), 0.5);
    });
    assert_eq!(prunes, 5);
    // The first step pruned, the later ones had nothing to add: one method in the history.
    assert_eq!(model.history("fc1.weight").unwrap().len(), 1);
}

#[test]
fn global_pruning_reaches_the_target_over_all_tensors() {
    let (vs, mut model) = model(2);
    // fc2's weights are scaled down, so global pruning takes more of them.
    let mut w = model.model().fc2.ws.shallow_clone();
    tch::no_grad(|| {
        let _ = w.g_mul_scalar_(0.1);
    });
    let schedule = Cubic::new(0.0, 0.8, 5, 4, 7).unwrap();
    let mut pruner = GradualPruner::new(schedule, NAMES).unwrap().with_scope(PruningScope::Global);
    let prunes = run(&mut pruner, &mut model, &vs, 0..60, |_, progress| {
        assert_eq!(progress.numel(), 810);
        assert_eq!(progress.pruned(), expected_count(progress.target(), 810), "{progress:?}");
    });
    assert_eq!(prunes, 5);
    let last = pruner.last_progress().unwrap();
    assert_eq!(last.pruned(), 648);
    let (fc1, fc2) = (last.parameters()[0].sparsity(), last.parameters()[1].sparsity());
    assert!(fc2 > fc1, "fc1 {fc1}, fc2 {fc2}");
}

#[test]
fn zeros_from_earlier_pruning_count_towards_the_target() {
    let (_vs, mut model) = model(3);
    // One of fc1's 30 rows: 20 of 600 entries.
    model.ln_structured("fc1.weight", 1, 2, 0, None).unwrap();
    let mut pruner =
        GradualPruner::new(ConstantSparsity::new(0.1, 0, None, 1).unwrap(), ["fc1.weight"])
            .unwrap();
    let progress = pruner.step(&mut model, 0).unwrap().unwrap();
    assert_eq!(progress.pruned(), 60);
    assert_eq!(model.history("fc1.weight").unwrap().len(), 2);
}

#[test]
fn a_zero_or_falling_target_prunes_nothing() {
    let (_vs, mut model) = model(4);
    let schedule = FromFn::new(|t| match t {
        0 => Some(0.0),
        1 => Some(0.6),
        2 => Some(0.3),
        _ => None,
    });
    let mut pruner = GradualPruner::new(schedule, NAMES).unwrap();
    let first = pruner.step(&mut model, 0).unwrap().unwrap();
    assert_eq!(first.pruned(), 0);
    assert!(!model.is_pruned(), "a target of 0 leaves the parameters as they are");
    assert_eq!(pruner.step(&mut model, 1).unwrap().unwrap().pruned(), 360 + 126);
    let mask = model.mask("fc1.weight").unwrap().copy();
    let third = pruner.step(&mut model, 2).unwrap().unwrap();
    assert_eq!((third.target(), third.pruned()), (0.3, 486));
    assert!(model.mask("fc1.weight").unwrap().equal(&mask));
    assert!(pruner.step(&mut model, 3).unwrap().is_none());
    assert_eq!(pruner.last_progress().unwrap().step(), 2);
}

#[test]
fn errors_change_nothing() {
    let (_vs, mut model) = model(5);
    // An unknown parameter after a valid one: the valid one is not pruned either.
    let always = ConstantSparsity::new(0.5, 0, None, 1).unwrap();
    let mut pruner = GradualPruner::new(always, ["fc1.weight", "fc3.weight"]).unwrap();
    let err = pruner.step(&mut model, 0).unwrap_err();
    assert!(matches!(err, PruneError::UnknownParameter { ref name } if name == "fc3.weight"));
    assert!(!model.is_pruned());
    assert!(pruner.last_progress().is_none());

    let mut global = GradualPruner::new(always, ["fc1.weight", "fc3.weight"])
        .unwrap()
        .with_scope(PruningScope::Global);
    assert!(matches!(global.step(&mut model, 0), Err(PruneError::UnknownParameter { .. })));
    assert!(!model.is_pruned());

    // A custom schedule's target outside [0, 1].
    for bad in [1.5, -0.1, f64::NAN] {
        let mut pruner = GradualPruner::new(FromFn::new(move |_| Some(bad)), NAMES).unwrap();
        let err = pruner.step(&mut model, 0).unwrap_err();
        assert!(matches!(err, PruneError::InvalidSchedule { parameter: "target_sparsity", .. }));
        assert!(!model.is_pruned());
    }

    assert!(matches!(
        GradualPruner::new(always, Vec::<String>::new()),
        Err(PruneError::EmptyParameterList)
    ));
    assert!(matches!(
        GradualPruner::new(always, ["a", "b", "a"]),
        Err(PruneError::DuplicateParameter { ref name }) if name == "a"
    ));
}

#[test]
fn a_target_of_one_prunes_everything() {
    let (_vs, mut model) = model(6);
    let mut pruner =
        GradualPruner::new(Cubic::new(0.0, 1.0, 0, 1, 1).unwrap(), ["fc2.weight"]).unwrap();
    assert_eq!(pruner.step(&mut model, 0).unwrap().unwrap().pruned(), 0);
    let last = pruner.step(&mut model, 1).unwrap().unwrap();
    assert_eq!(last.sparsity(), 1.0);
    assert_eq!(zeros(&model.value("fc2.weight").unwrap()), 210);
}

#[test]
fn the_pruner_is_send_and_takes_boxed_schedules() {
    fn assert_send<T: Send>(_: &T) {}
    let boxed: Box<dyn PruningSchedule> = Box::new(ConstantSparsity::new(0.2, 0, None, 1).unwrap());
    let pruner = GradualPruner::new(boxed, NAMES).unwrap();
    assert_send(&pruner);
    assert_eq!(pruner.names(), NAMES);
    assert_eq!(pruner.scope(), PruningScope::Local);
    assert_eq!(pruner.schedule().prune_at(3), Some(0.2));
}
