//! One pruning surface ([`Pruner`]) for every kind of pruned model: schedules, recipes and
//! reports on hard-masked models (`nn::seq()` and a struct whose layers are private, as in a
//! third-party model crate; TorchScript in `tests/torchscript.rs`), recipe rollback in hard-mask mode, a bespoke
//! `forward_t(&self, x, mask, train)` driven through `PrunedModel::forward_with`, and slot
//! mappings checked when a `PrunedModel` is made.

use tch::nn::{self, Module, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};
use tch_prune::{
    prunable, FromFn, GradualPruner, HardMask, LnStructured, PruneError, PrunedModel, Pruner,
    PruningRecipe, PruningScope, SparsityReport,
};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

/// A model as a third-party crate ships it: layers in private fields, no `Prunable`.
mod third_party {
    use tch::nn::{self, Module};
    use tch::Tensor;

    #[derive(Debug)]
    pub struct Encoder {
        proj: nn::Linear,
        out: nn::Linear,
    }

    impl Encoder {
        pub fn new(p: nn::Path) -> Self {
            Self {
                proj: nn::linear(&p / "proj", 16, 32, Default::default()),
                out: nn::linear(&p / "out", 32, 4, Default::default()),
            }
        }
    }

    impl Module for Encoder {
        fn forward(&self, xs: &Tensor) -> Tensor {
            xs.apply(&self.proj).relu().apply(&self.out)
        }
    }
}

fn zeros_of(t: &Tensor) -> i64 {
    t.eq(0.0).sum(Kind::Int64).int64_value(&[])
}

/// A schedule and a recipe, run on any `Pruner`; returns the report after both.
fn schedule_and_recipe<P: Pruner>(model: &mut P, weight: &str, other: &str) -> SparsityReport {
    let mut pruner =
        GradualPruner::new(FromFn::new(|t| (t % 2 == 0).then_some(0.1 * t as f64)), [weight])
            .unwrap()
            .with_scope(PruningScope::Local);
    for step in 0..=4 {
        pruner.step(model, step).unwrap();
    }
    let numel = model.value(weight).unwrap().numel() as i64;
    assert_eq!(zeros_of(model.mask(weight).unwrap()), (0.4 * numel as f64).round() as i64);

    let recipe = PruningRecipe::from_json_str(&format!(
        r#"{{"steps": [{{"parameters": ["{other}"], "method": "l1_unstructured", "amount": 0.5}}]}}"#
    ))
    .unwrap();
    let outcome = recipe.apply(model).unwrap();
    assert_eq!(outcome.steps.len(), 1);
    assert!(model.is_parameter_pruned(other));
    SparsityReport::from_model(model, Some(&[weight, other])).unwrap()
}

#[test]
fn hard_masked_seq_runs_schedules_recipes_and_reports() {
    let vs = VarStore::new(Device::Cpu);
    let net = nn::seq()
        .add(nn::linear(vs.root() / "0", 16, 32, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(vs.root() / "2", 32, 4, Default::default()));
    let mut masks = HardMask::new(&vs);
    let report = schedule_and_recipe(&mut masks, "0.weight", "2.weight");
    assert_eq!(report.get("0.weight").unwrap().zeros, 205); // round(0.4 * 512)
    assert_eq!(report.get("2.weight").unwrap().zeros, 64);
    assert!(report.get("2.weight").unwrap().masked);
    // The tensors the layers compute with hold the zeros.
    assert_eq!(zeros_of(&vs.variables()["0.weight"]), 205);
    let _ = net.forward(&Tensor::ones([1, 16], CPU));
}

#[test]
fn hard_masked_private_fields_model_runs_schedules_and_recipes() {
    let vs = VarStore::new(Device::Cpu);
    let enc = third_party::Encoder::new(vs.root() / "enc");
    let mut masks = HardMask::new(&vs);
    let report = schedule_and_recipe(&mut masks, "enc.proj.weight", "enc.out.weight");
    assert_eq!(report.get("enc.out.weight").unwrap().zeros, 64);
    let y = enc.forward(&Tensor::ones([2, 16], CPU));
    assert_eq!(y.size(), [2, 4]);
}

#[test]
fn failed_hard_mask_recipe_restores_values_and_masks() {
    let vs = VarStore::new(Device::Cpu);
    let _net = nn::seq()
        .add(nn::linear(vs.root() / "a", 8, 8, Default::default()))
        .add(nn::linear(vs.root() / "b", 8, 2, Default::default()));
    let mut masks = HardMask::new(&vs);
    masks.l1_unstructured("a.weight", 0.25, None).unwrap();
    let before: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(n, t)| (n, t.copy())).collect();
    let mask_before = masks.mask("a.weight").unwrap().copy();

    // Step 0 prunes a.weight again and b.weight in place; step 1 fails (dim out of range).
    let recipe = PruningRecipe::from_json_str(
        r#"{"steps": [
            {"parameters": ["a.weight", "b.weight"], "method": "l1_unstructured", "amount": 0.5},
            {"parameters": ["b.weight"], "method": "ln_structured", "amount": 1, "n": 2, "dim": 5}
        ]}"#,
    )
    .unwrap();
    let err = recipe.apply(&mut masks).unwrap_err();
    assert!(matches!(err, PruneError::RecipeStepFailed { .. }), "{err:?}");

    for (name, value) in before {
        assert!(vs.variables()[&name].equal(&value), "{name} was not restored");
    }
    assert!(masks.mask("a.weight").unwrap().equal(&mask_before));
    assert!(!masks.is_parameter_pruned("b.weight"));
}

#[test]
fn hard_mask_recipe_with_layer_kinds_is_a_typed_error() {
    let vs = VarStore::new(Device::Cpu);
    let _fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    let mut masks = HardMask::new(&vs);
    let recipe = PruningRecipe::from_json_str(
        r#"{"steps": [{"layers": ["Linear"], "method": "l1_unstructured", "amount": 0.5}]}"#,
    )
    .unwrap();
    let err = recipe.apply(&mut masks).unwrap_err();
    assert!(
        matches!(&err, PruneError::InvalidRecipe { field, .. } if field == "steps[0].layers[0]"),
        "{err:?}"
    );
    assert!(!masks.is_pruned());
}

#[derive(Debug)]
struct Bespoke {
    proj: nn::Linear,
    head: nn::Linear,
}
prunable!(Bespoke { proj, head });

impl Bespoke {
    /// rust-bert style: extra inputs and a train flag, not `Module::forward`.
    fn forward_t(&self, x: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        (x.apply(&self.proj).relu() * mask).dropout(0.0, train).apply(&self.head)
    }
}

#[test]
fn bespoke_forward_t_is_pruned_and_trained_through_forward_with() {
    let vs = VarStore::new(Device::Cpu);
    let net = Bespoke {
        proj: nn::linear(vs.root() / "proj", 6, 12, Default::default()),
        head: nn::linear(vs.root() / "head", 12, 1, Default::default()),
    };
    let mut opt = nn::Sgd::default().build(&vs, 0.05).unwrap();
    let mut model = PrunedModel::new(net, &vs).unwrap();
    let method = LnStructured::builder().amount(0.5).n(2).dim(0).build().unwrap();
    model.apply("proj.weight", method, None).unwrap();
    model.l1_unstructured("head.weight", 0.25, None).unwrap();

    let x = Tensor::from_slice(
        &(0..48).map(|i| ((i * 7) % 11) as f32 / 11.0 - 0.5).collect::<Vec<_>>(),
    )
    .reshape([8, 6]);
    let y = x.sum_dim_intlist([1].as_slice(), true, Kind::Float);
    let keep = Tensor::ones([8, 12], CPU);
    let loss = |m: &mut PrunedModel<Bespoke>| {
        m.forward_with(|net| net.forward_t(&x, &keep, true))
            .unwrap()
            .mse_loss(&y, tch::Reduction::Mean)
    };
    let first = loss(&mut model).double_value(&[]);
    for _ in 0..50 {
        let l = loss(&mut model);
        opt.backward_step(&l);
    }
    let last = loss(&mut model).double_value(&[]);
    assert!(last < first, "loss {first} -> {last}");
    // Pruned entries stay zero in what the model computes with.
    let w = model.value("proj.weight").unwrap();
    assert_eq!(zeros_of(&w), 6 * 6);
    // `refreshed` hands out the model with the pruned slots set.
    let refreshed = model.refreshed().unwrap();
    assert!(refreshed.proj.ws.equal(&w));
}

#[test]
fn wrong_slot_mapping_is_reported_when_the_model_is_made() {
    let vs = VarStore::new(Device::Cpu);
    let fc = nn::linear(vs.root() / "encoder" / "fc", 4, 2, Default::default());
    let err = PrunedModel::with_prefix(fc, &vs, "fc").unwrap_err();
    assert!(
        matches!(&err, PruneError::UnmappedSlot { slot, prefix } if slot.starts_with("fc.") && prefix == "fc"),
        "{err:?}"
    );
    let fc = nn::linear(vs.root() / "encoder" / "fc2", 4, 2, Default::default());
    assert!(PrunedModel::with_prefix(fc, &vs, "encoder.fc2").is_ok());
}

#[test]
fn builders_cannot_swap_arguments() {
    let named = LnStructured::builder().dim(0).n(2).amount(0.5).build().unwrap();
    assert_eq!(named, LnStructured::new(0.5, 2, 0).unwrap());
    assert!(matches!(
        LnStructured::builder().n(2).build(),
        Err(PruneError::MissingArgument { parameter: "amount" })
    ));
}
