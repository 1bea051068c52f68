//! Global pruning's histogram path (CPU f32, L1) against PyTorch's concatenating algorithm,
//! which the crate runs for any other method: same masks on distinct magnitudes, across
//! repeated rounds and with importance scores.

use tch::nn;
use tch::{Device, Kind, Tensor};
use tch_prune::{
    prunable, Amount, L1Unstructured, PrunedModel, Pruner, PruningMethod, PruningType, Result,
};

#[derive(Debug)]
struct Mlp {
    a: nn::Linear,
    b: nn::Linear,
    c: nn::Linear,
}
prunable!(Mlp { a, b, c });

/// L1Unstructured without the magnitude hint: global pruning then concatenates, as PyTorch.
#[derive(Debug)]
struct PlainL1(L1Unstructured);

impl PruningMethod for PlainL1 {
    fn compute_mask(&self, importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
        self.0.compute_mask(importance, default_mask)
    }
    fn pruning_type(&self) -> PruningType {
        PruningType::Unstructured
    }
}

const NAMES: [&str; 3] = ["a.weight", "b.weight", "c.weight"];

/// Two identical models with distinct weight magnitudes across all three layers.
fn twin_models() -> (nn::VarStore, PrunedModel<Mlp>, nn::VarStore, PrunedModel<Mlp>) {
    let build = |vs: &nn::VarStore| Mlp {
        a: nn::linear(vs.root() / "a", 128, 256, Default::default()),
        b: nn::linear(vs.root() / "b", 64, 128, Default::default()),
        c: nn::linear(vs.root() / "c", 10, 64, Default::default()),
    };
    let vs1 = nn::VarStore::new(Device::Cpu);
    let vs2 = nn::VarStore::new(Device::Cpu);
    let (m1, m2) = (build(&vs1), build(&vs2));
    let total = 256 * 128 + 128 * 64 + 64 * 10;
    // Above the 32768 entries from which the crate selects in linear time.
    assert!(total >= 1 << 15);
    tch::manual_seed(3);
    let values = (Tensor::randperm(total, (Kind::Int64, Device::Cpu)) + 1).to_kind(Kind::Float)
        / total as f64
        * (Tensor::randint(2, [total], (Kind::Int64, Device::Cpu)) * 2 - 1);
    let mut offset = 0;
    for m in [&m1, &m2] {
        offset = 0;
        for w in [&m.a.ws, &m.b.ws, &m.c.ws] {
            let n = w.numel() as i64;
            tch::no_grad(|| w.shallow_clone().copy_(&values.narrow(0, offset, n).view_as(w)));
            offset += n;
        }
    }
    assert_eq!(offset, total);
    let (p1, p2) = (PrunedModel::new(m1, &vs1).unwrap(), PrunedModel::new(m2, &vs2).unwrap());
    (vs1, p1, vs2, p2)
}

fn assert_same_masks(fast: &PrunedModel<Mlp>, plain: &PrunedModel<Mlp>) {
    for name in NAMES {
        let (f, p) = (fast.mask(name).unwrap(), plain.mask(name).unwrap());
        assert_eq!(f.kind(), p.kind(), "{name}");
        assert!(f.equal(p), "{name}: masks differ");
    }
}

#[test]
fn histogram_path_equals_concatenation_over_rounds() {
    let (_vs1, mut fast, _vs2, mut plain) = twin_models();
    for amount in [Amount::Fraction(0.2), Amount::Fraction(0.5), Amount::Count(1000)] {
        fast.global_unstructured(&NAMES, L1Unstructured::new(amount).unwrap(), &[]).unwrap();
        plain
            .global_unstructured(&NAMES, PlainL1(L1Unstructured::new(amount).unwrap()), &[])
            .unwrap();
        assert_same_masks(&fast, &plain);
    }
    let pruned: i64 =
        NAMES.iter().map(|n| fast.mask(n).unwrap().eq(0.0).sum(Kind::Int64).int64_value(&[])).sum();
    let total = 256 * 128 + 128 * 64 + 64 * 10;
    let after_two = total - (total as f64 * 0.8).round_ties_even() as i64;
    let remaining = total - after_two;
    let second = (0.5 * remaining as f64).round_ties_even() as i64;
    assert_eq!(pruned, after_two + second + 1000);
}

#[test]
fn histogram_path_mixes_pruned_and_unpruned_parameters_and_scores() {
    let (_vs1, mut fast, _vs2, mut plain) = twin_models();
    fast.l1_unstructured("b.weight", 0.3, None).unwrap();
    plain.l1_unstructured("b.weight", 0.3, None).unwrap();
    let scores = Tensor::rand([256, 128], (Kind::Float, Device::Cpu));
    let importance = [("a.weight", &scores)];
    fast.global_unstructured(&NAMES, L1Unstructured::new(0.4).unwrap(), &importance).unwrap();
    plain
        .global_unstructured(&NAMES, PlainL1(L1Unstructured::new(0.4).unwrap()), &importance)
        .unwrap();
    assert_same_masks(&fast, &plain);
    assert_eq!(fast.history("b.weight").unwrap().len(), 2);
}

#[test]
fn histogram_path_count_larger_than_remaining_is_an_error_and_changes_nothing() {
    let (vs1, mut fast, _vs2, _plain) = twin_models();
    fast.global_unstructured(&NAMES, L1Unstructured::new(0.9).unwrap(), &[]).unwrap();
    let before: Vec<Tensor> = NAMES.iter().map(|n| fast.mask(n).unwrap().copy()).collect();
    let keys_before = vs1.variables().len();
    let total = 256 * 128 + 128 * 64 + 64 * 10;
    let err = fast
        .global_unstructured(&NAMES, L1Unstructured::new(total as i64).unwrap(), &[])
        .unwrap_err();
    assert!(
        matches!(err, tch_prune::PruneError::AmountTooLarge { requested, .. } if requested == total as i64)
    );
    for (name, mask) in NAMES.iter().zip(before) {
        assert!(fast.mask(name).unwrap().equal(&mask));
        assert_eq!(fast.history(name).unwrap().len(), 1);
    }
    assert_eq!(vs1.variables().len(), keys_before);
}
