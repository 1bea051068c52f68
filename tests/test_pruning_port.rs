//! The tensor-level tests of PyTorch's `test/nn/test_pruning.py` (class `TestPruningNN`),
//! ported under the same names.
//!
//! Tests that need a module (`nn.Linear`, hooks, `remove`, pickling, `global_unstructured`)
//! belong to the model layer. Where a PyTorch test goes through a module only to reach the
//! masks (`test_l1_unstructured_pruning`, `test_ln_structured_pruning`,
//! `test_multiple_pruning_calls`, ...), its essence is kept here by doing what
//! `BasePruningMethod.apply` does: the first pruning is
//! `method.compute_mask(importance, ones_like(orig))`; every later one appends the method to a
//! [`PruningContainer`] and runs `container.compute_mask(importance, mask)`, where the importance
//! is the current masked weight `orig * mask` (or the given importance scores).
//!
//! Above each test is the PyTorch code its numbers come from.

mod common;

use approx::assert_abs_diff_eq;
use common::tensors::{
    assert_values, channel_abs_sums, dead_channels, keeps_zeros, tf, ti, values, zeros,
};
use tch::{Device, Kind, Tensor};
use tch_prune::{
    Amount, CustomFromMask, Identity, L1Unstructured, LnStructured, PruneError, PruningContainer,
    PruningMethod, PruningType, RandomStructured, RandomUnstructured,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A pruned parameter as `BasePruningMethod.apply` leaves it: the original tensor, the current
/// mask and the pruning history.
struct Reparam {
    orig: Tensor,
    mask: Option<Tensor>,
    history: PruningContainer,
}

impl Reparam {
    fn new(orig: Tensor) -> Self {
        Self { orig, mask: None, history: PruningContainer::new() }
    }

    /// `prune.<method>(module, name, ..., importance_scores=scores)`.
    fn prune(&mut self, method: Box<dyn PruningMethod>, scores: Option<&Tensor>) -> TestResult {
        let new_mask = match &self.mask {
            // First pruning: the method alone, on the parameter (or the scores), with ones.
            None => {
                let importance = scores.unwrap_or(&self.orig);
                let mask = method.compute_mask(importance, &self.orig.ones_like())?;
                self.history.add_pruning_method(method);
                mask
            }
            // Later pruning: the container, on the cached masked weight (or the scores).
            Some(mask) => {
                let weight = self.weight();
                let importance = scores.unwrap_or(&weight);
                self.history.add_pruning_method(method);
                self.history.compute_mask(importance, mask)?
            }
        };
        self.mask = Some(new_mask);
        Ok(())
    }

    fn mask(&self) -> &Tensor {
        self.mask.as_ref().expect("pruned")
    }

    /// `module.<name>`: `mask.to(orig.dtype) * orig`.
    fn weight(&self) -> Tensor {
        &self.orig * self.mask().to_kind(self.orig.kind())
    }
}

// PyTorch:
//     with self.assertRaises(TypeError):
//         prune._validate_pruning_amount_init(amount="I'm a string")
//     with self.assertRaises(ValueError):
//         prune._validate_pruning_amount_init(amount=1.1)
//     with self.assertRaises(ValueError):
//         prune._validate_pruning_amount_init(amount=20.0)
//     with self.assertRaises(ValueError):
//         prune._validate_pruning_amount_init(amount=-10)
//     prune._validate_pruning_amount_init(amount=0.34)
//     prune._validate_pruning_amount_init(amount=1500)
//     prune._validate_pruning_amount_init(amount=0)
//     prune._validate_pruning_amount_init(amount=0.0)
//     prune._validate_pruning_amount_init(amount=1)
//     prune._validate_pruning_amount_init(amount=1.0)
#[test]
fn test_validate_pruning_amount_init() {
    // The TypeError for a string amount has no runtime equivalent: `Amount` has no
    // `From<&str>`, so `L1Unstructured::new("I'm a string")` does not compile.
    let invalid = [Amount::Fraction(1.1), Amount::Fraction(20.0), Amount::Count(-10)];
    for amount in invalid {
        let check = |r: Result<(), PruneError>| match (amount, r) {
            (Amount::Fraction(f), Err(PruneError::FractionOutOfRange { value })) => {
                assert_eq!(value, f)
            }
            (Amount::Count(c), Err(PruneError::NegativeCount { value })) => assert_eq!(value, c),
            (amount, other) => panic!("{amount:?}: unexpected {other:?}"),
        };
        check(amount.validate().map(drop));
        check(L1Unstructured::new(amount).map(drop));
        check(RandomUnstructured::new(amount).map(drop));
        check(LnStructured::new(amount, 2, 0).map(drop));
        check(RandomStructured::new(amount, 0).map(drop));
    }

    let valid: [Amount; 6] = [0.34.into(), 1500.into(), 0.into(), 0.0.into(), 1.into(), 1.0.into()];
    assert_eq!(
        valid,
        [
            Amount::Fraction(0.34),
            Amount::Count(1500),
            Amount::Count(0),
            Amount::Fraction(0.0),
            Amount::Count(1),
            Amount::Fraction(1.0)
        ]
    );
    for amount in valid {
        assert_eq!(amount.validate().unwrap(), amount);
        assert_eq!(L1Unstructured::new(amount).unwrap().amount(), amount);
        assert_eq!(RandomUnstructured::new(amount).unwrap().amount(), amount);
        assert_eq!(LnStructured::new(amount, 2, 0).unwrap().amount(), amount);
        assert_eq!(RandomStructured::new(amount, 0).unwrap().amount(), amount);
    }
}

// PyTorch:
//     with self.assertRaises(ValueError):
//         prune._validate_pruning_amount(amount=20, tensor_size=19)
//     prune._validate_pruning_amount(amount=0.3, tensor_size=0)
//     prune._validate_pruning_amount(amount=19, tensor_size=20)
//     prune._validate_pruning_amount(amount=0, tensor_size=0)
//     prune._validate_pruning_amount(amount=1, tensor_size=1)
#[test]
fn test_validate_pruning_amount() {
    // `Amount::count_for` is `_compute_nparams_toprune` followed by `_validate_pruning_amount`.
    assert!(matches!(
        Amount::Count(20).count_for(19),
        Err(PruneError::AmountTooLarge { requested: 20, available: 19 })
    ));
    assert_eq!(Amount::Fraction(0.3).count_for(0).unwrap(), 0);
    assert_eq!(Amount::Count(19).count_for(20).unwrap(), 19);
    assert_eq!(Amount::Count(0).count_for(0).unwrap(), 0);
    assert_eq!(Amount::Count(1).count_for(1).unwrap(), 1);
}

// PyTorch:
//     self.assertEqual(prune._compute_nparams_toprune(amount=0, tensor_size=15), 0)
//     self.assertEqual(prune._compute_nparams_toprune(amount=10, tensor_size=15), 10)
//     # if 1 is int, means 1 unit
//     self.assertEqual(prune._compute_nparams_toprune(amount=1, tensor_size=15), 1)
//     # if 1. is float, means 100% of units
//     self.assertEqual(prune._compute_nparams_toprune(amount=1.0, tensor_size=15), 15)
//     self.assertEqual(prune._compute_nparams_toprune(amount=0.4, tensor_size=17), 7)
#[test]
fn test_compute_nparams_to_prune() {
    assert_eq!(Amount::from(0).count_for(15).unwrap(), 0);
    assert_eq!(Amount::from(10).count_for(15).unwrap(), 10);
    assert_eq!(Amount::from(1).count_for(15).unwrap(), 1);
    assert_eq!(Amount::from(1.0).count_for(15).unwrap(), 15);
    assert_eq!(Amount::from(0.4).count_for(17).unwrap(), 7);
}

// PyTorch:
//     container = prune.PruningContainer()
//     container._tensor_name = "test"
//     self.assertEqual(len(container), 0)
//     p = prune.L1Unstructured(amount=2)
//     p._tensor_name = "test"
//     container.add_pruning_method(p)
//     q = prune.L1Unstructured(amount=2)
//     q._tensor_name = "another_test"
//     with self.assertRaises(ValueError):
//         container.add_pruning_method(q)
//     with self.assertRaises(TypeError):
//         container.add_pruning_method(10)
//     with self.assertRaises(TypeError):
//         container.add_pruning_method("ugh")
#[test]
fn test_pruning_container() -> TestResult {
    let mut container = PruningContainer::new();
    assert_eq!(container.len(), 0);
    assert!(container.is_empty());

    container.add_pruning_method(Box::new(L1Unstructured::new(2)?));
    assert_eq!(container.len(), 1);
    assert!(format!("{:?}", &container[0]).starts_with("L1Unstructured"));
    assert_eq!(container.last().unwrap().pruning_type(), PruningType::Unstructured);

    // The ValueError (a method for another tensor name) cannot happen: the crate's container
    // has no tensor name, since at the model level every pruned parameter owns its container.
    // The TypeError (adding `10` or `"ugh"`) is a compile error, checked by the `compile_fail`
    // doctest on `PruningContainer` in src/container.rs.
    Ok(())
}

// PyTorch:
//     container = prune.PruningContainer()
//     container._tensor_name = "test"
//     p = prune.L1Unstructured(amount=2)
//     container.add_pruning_method(p)
//     t = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]]).to(dtype=torch.float32)
//     default_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 1]])
//     expected_mask = torch.tensor([[0, 0, 1, 0], [1, 1, 0, 1]], dtype=torch.float32)
//     computed_mask = container.compute_mask(t, default_mask)
//     q = prune.LnStructured(amount=1, n=2, dim=0)
//     container.add_pruning_method(q)
//     expected_mask = torch.tensor([[0, 0, 0, 0], [1, 1, 0, 1]], dtype=torch.float32)
//     r = prune.LnStructured(amount=1, n=2, dim=1)
//     container.add_pruning_method(r)
//     expected_mask = torch.tensor([[0, 1, 1, 0], [0, 1, 0, 1]], dtype=torch.float32)
#[test]
fn test_pruning_container_compute_mask() -> TestResult {
    let t = tf(&[1., 2., 3., 4., 5., 6., 7., 8.], &[2, 4]);
    let default_mask = ti(&[1, 1, 1, 0, 1, 1, 0, 1], &[2, 4]);
    let mut container = PruningContainer::new();

    // 1) unstructured
    container.add_pruning_method(Box::new(L1Unstructured::new(2)?));
    let mask = container.compute_mask(&t, &default_mask)?;
    assert_eq!(mask.kind(), Kind::Float);
    assert_values(&mask, &[0., 0., 1., 0., 1., 1., 0., 1.], &[2, 4]);

    // 2) structured, rows
    container.add_pruning_method(Box::new(LnStructured::new(1, 2, 0)?));
    let mask = container.compute_mask(&t, &default_mask)?;
    assert_eq!(mask.kind(), Kind::Float);
    assert_values(&mask, &[0., 0., 0., 0., 1., 1., 0., 1.], &[2, 4]);

    // 3) structured, columns
    container.add_pruning_method(Box::new(LnStructured::new(1, 2, 1)?));
    let mask = container.compute_mask(&t, &default_mask)?;
    assert_eq!(mask.kind(), Kind::Float);
    assert_values(&mask, &[0., 1., 1., 0., 0., 1., 0., 1.], &[2, 4]);

    // Each step combined with the original default mask, which is left as it was.
    assert_eq!(container.len(), 3);
    assert_eq!(default_mask.kind(), Kind::Int64);
    assert_values(&default_mask, &[1., 1., 1., 0., 1., 1., 0., 1.], &[2, 4]);
    Ok(())
}

// PyTorch:
//     m = nn.Linear(4, 2)
//     m.weight = torch.nn.Parameter(
//         torch.tensor([[1, 2, 3, 4], [-4, -3, -2, -1]], dtype=torch.float32))
//     prune.l1_unstructured(m, "weight", amount=2)
//     expected_weight = torch.tensor([[0, 2, 3, 4], [-4, -3, -2, 0]], dtype=m.weight.dtype)
//     prune.l1_unstructured(m, "weight", amount=2)
//     expected_weight = torch.tensor([[0, 0, 3, 4], [-4, -3, 0, 0]], dtype=m.weight.dtype)
#[test]
fn test_l1_unstructured_pruning() -> TestResult {
    let mut w = Reparam::new(tf(&[1., 2., 3., 4., -4., -3., -2., -1.], &[2, 4]));

    w.prune(Box::new(L1Unstructured::new(2)?), None)?;
    assert_values(&w.weight(), &[0., 2., 3., 4., -4., -3., -2., 0.], &[2, 4]);

    // Pruning again removes the next two smallest entries (of the remaining six).
    w.prune(Box::new(L1Unstructured::new(2)?), None)?;
    assert_values(&w.weight(), &[0., 0., 3., 4., -4., -3., 0., 0.], &[2, 4]);
    assert_eq!(w.history.len(), 2);
    Ok(())
}

// PyTorch:
//     m.weight = torch.nn.Parameter(
//         torch.tensor([[1, 2, 3, 4], [-4, -3, -2, -1]], dtype=torch.float32))
//     importance_scores = torch.tensor([[4, 2, 1, 3], [-3, -1, -2, -4]], dtype=torch.float32)
//     prune.l1_unstructured(m, "weight", amount=2, importance_scores=importance_scores)
//     expected_weight = torch.tensor([[1, 2, 0, 4], [-4, 0, -2, -1]], dtype=m.weight.dtype)
//     prune.l1_unstructured(m, "weight", amount=2, importance_scores=importance_scores)
//     expected_weight = torch.tensor([[1, 0, 0, 4], [-4, 0, 0, -1]], dtype=m.weight.dtype)
#[test]
fn test_l1_unstructured_pruning_with_importance_scores() -> TestResult {
    let mut w = Reparam::new(tf(&[1., 2., 3., 4., -4., -3., -2., -1.], &[2, 4]));
    let scores = tf(&[4., 2., 1., 3., -3., -1., -2., -4.], &[2, 4]);

    w.prune(Box::new(L1Unstructured::new(2)?), Some(&scores))?;
    assert_values(&w.weight(), &[1., 2., 0., 4., -4., 0., -2., -1.], &[2, 4]);

    // Again: the next two smallest |scores| among the entries still unpruned.
    w.prune(Box::new(L1Unstructured::new(2)?), Some(&scores))?;
    assert_values(&w.weight(), &[1., 0., 0., 4., -4., 0., 0., -1.], &[2, 4]);
    Ok(())
}

// PyTorch:
//     AMOUNT = 0.2
//     p = prune.L1Unstructured(amount=AMOUNT)
//     # create a random tensors with entries in {-2, 0, 2}
//     t = 2 * torch.randint(low=-1, high=2, size=(10, 7))
//     nparams_toprune = prune._compute_nparams_toprune(AMOUNT, t.nelement())
//     computed_mask = p.compute_mask(t, default_mask=torch.ones_like(t))
//     nparams_pruned = torch.sum(computed_mask == 0)
//     self.assertEqual(nparams_toprune, nparams_pruned)
#[test]
fn test_unstructured_pruning_same_magnitude() -> TestResult {
    let p = L1Unstructured::new(0.2)?;
    let nparams_toprune = Amount::Fraction(0.2).count_for(70)?;
    assert_eq!(nparams_toprune, 14);
    // Several random draws (PyTorch's test draws one); int64 like PyTorch's `randint`.
    for _ in 0..10 {
        let t = Tensor::randint_low(-1, 2, [10, 7], (Kind::Int64, Device::Cpu)) * 2;
        let computed_mask = p.compute_mask(&t, &t.ones_like())?;
        assert_eq!(computed_mask.kind(), Kind::Int64);
        assert_eq!(zeros(&computed_mask) as i64, nparams_toprune);
    }
    Ok(())
}

// PyTorch:
//     AMOUNT = 0.6
//     AXIS = 2
//     p = prune.RandomStructured(amount=AMOUNT, dim=AXIS)
//     t = 2 * torch.randint(low=-1, high=2, size=(5, 4, 2)).to(dtype=torch.float32)
//     computed_mask = p.compute_mask(t, default_mask=torch.ones_like(t))
//     remaining_axes = [_ for _ in range(len(t.shape)) if _ != AXIS]
//     per_column_sums = sorted(torch.sum(computed_mask == 0, axis=remaining_axes))
//     assert per_column_sums == [0, 20]
#[test]
fn test_random_structured_pruning_amount() -> TestResult {
    let p = RandomStructured::new(0.6, 2)?;
    for _ in 0..10 {
        let t = (Tensor::randint_low(-1, 2, [5, 4, 2], (Kind::Int64, Device::Cpu)) * 2)
            .to_kind(Kind::Float);
        let computed_mask = p.compute_mask(&t, &t.ones_like())?;
        let per_column_zeros =
            computed_mask.eq(0.).sum_dim_intlist(&[0i64, 1][..], false, Kind::Int64);
        let mut per_column_zeros = Vec::<i64>::try_from(&per_column_zeros)?;
        per_column_zeros.sort_unstable();
        assert_eq!(per_column_zeros, vec![0, 20]);
    }
    Ok(())
}

/// The weight of PyTorch's `test_ln_structured_pruning*` (a `Conv2d(3, 1, 2)`).
fn ln_conv_weight() -> Tensor {
    tf(&[1.0, 2.0, 1.0, 2.5, 0.5, 1.0, 0.1, 0.1, -3.0, -5.0, 0.1, -1.0], &[1, 3, 2, 2])
}

// PyTorch:
//     m = nn.Conv2d(3, 1, 2)
//     m.weight.data = torch.tensor([[[[1.0, 2.0], [1.0, 2.5]],
//                                    [[0.5, 1.0], [0.1, 0.1]],
//                                    [[-3.0, -5.0], [0.1, -1.0]]]])
//     expected_mask_axis1 = torch.ones_like(m.weight)
//     expected_mask_axis1[:, 1] = 0.0
//     prune.ln_structured(m, "weight", amount=1, n=2, dim=1)
//     self.assertEqual(expected_mask_axis1, m.weight_mask)
//     expected_mask_axis3 = expected_mask_axis1
//     expected_mask_axis3[:, :, :, 0] = 0.0
//     prune.ln_structured(m, "weight", amount=1, n=1, dim=-1)
//     self.assertEqual(expected_mask_axis3, m.weight_mask)
#[test]
fn test_ln_structured_pruning() -> TestResult {
    let mut w = Reparam::new(ln_conv_weight());

    w.prune(Box::new(LnStructured::new(1, 2, 1)?), None)?;
    assert_values(w.mask(), &[1., 1., 1., 1., 0., 0., 0., 0., 1., 1., 1., 1.], &[1, 3, 2, 2]);
    assert_eq!(dead_channels(w.mask(), 1), vec![false, true, false]);

    // The L1 norms of the two columns of the last axis, over the masked weight: 5.1 and 10.5.
    let norms = channel_abs_sums(&w.weight(), -1);
    assert_abs_diff_eq!(norms[0], 5.1, epsilon = 1e-5);
    assert_abs_diff_eq!(norms[1], 10.5, epsilon = 1e-5);

    w.prune(Box::new(LnStructured::new(1, 1, -1)?), None)?;
    assert_values(w.mask(), &[0., 1., 0., 1., 0., 0., 0., 0., 0., 1., 0., 1.], &[1, 3, 2, 2]);
    assert_eq!(w.mask().kind(), Kind::Float);
    Ok(())
}

// PyTorch:
//     importance_scores = torch.tensor([[[[10.0, 1.0], [10.0, 1.0]],
//                                        [[30.0, 3.0], [30.0, 3.0]],
//                                        [[-20.0, -2.0], [-20.0, -2.0]]]])
//     expected_mask_axis1 = torch.ones_like(m.weight)
//     expected_mask_axis1[:, 0] = 0.0
//     prune.ln_structured(m, "weight", amount=1, n=2, dim=1,
//                         importance_scores=importance_scores)
//     expected_mask_axis3 = expected_mask_axis1
//     expected_mask_axis3[:, :, :, 1] = 0.0
//     prune.ln_structured(m, "weight", amount=1, n=1, dim=-1,
//                         importance_scores=importance_scores)
#[test]
fn test_ln_structured_pruning_importance_scores() -> TestResult {
    let mut w = Reparam::new(ln_conv_weight());
    let scores =
        tf(&[10.0, 1.0, 10.0, 1.0, 30.0, 3.0, 30.0, 3.0, -20.0, -2.0, -20.0, -2.0], &[1, 3, 2, 2]);

    w.prune(Box::new(LnStructured::new(1, 2, 1)?), Some(&scores))?;
    assert_values(w.mask(), &[0., 0., 0., 0., 1., 1., 1., 1., 1., 1., 1., 1.], &[1, 3, 2, 2]);

    w.prune(Box::new(LnStructured::new(1, 1, -1)?), Some(&scores))?;
    assert_values(w.mask(), &[0., 0., 0., 0., 1., 0., 1., 0., 1., 0., 1., 0.], &[1, 3, 2, 2]);
    Ok(())
}

// PyTorch:
//     m = nn.Conv3d(2, 2, 2)
//     prune.l1_unstructured(m, name="weight", amount=0.1)
//     weight_mask0 = m.weight_mask  # save it for later sanity check
//     prune.ln_structured(m, name="weight", amount=0.3, n=2, dim=0)
//     hook = next(iter(m._forward_pre_hooks.values()))
//     self.assertIsInstance(hook, torch.nn.utils.prune.PruningContainer)
//     self.assertEqual(hook._tensor_name, "weight")
//     self.assertEqual(len(hook), 2)  # m.weight has been pruned twice
//     self.assertIsInstance(hook[0], torch.nn.utils.prune.L1Unstructured)
//     self.assertIsInstance(hook[1], torch.nn.utils.prune.LnStructured)
//     self.assertTrue(torch.all(m.weight_mask[weight_mask0 == 0] == 0))
//     prune.ln_structured(m, name="weight", amount=0.1, n=float("inf"), dim=1)
//     hook = next(iter(m._forward_pre_hooks.values()))
//     self.assertEqual(hook._tensor_name, "weight")
#[test]
fn test_multiple_pruning_calls() -> TestResult {
    // A Conv3d(2, 2, 2) weight, with fixed values instead of a random initialisation.
    let orig = common::tensors::distinct(&[2, 2, 2, 2, 2]);
    let mut w = Reparam::new(orig);

    w.prune(Box::new(L1Unstructured::new(0.1)?), None)?;
    let weight_mask0 = w.mask().copy();
    assert_eq!(zeros(&weight_mask0), 3); // round(0.1 * 32)

    w.prune(Box::new(LnStructured::new(0.3, 2, 0)?), None)?;
    assert_eq!(w.history.len(), 2);
    assert!(format!("{:?}", &w.history[0]).starts_with("L1Unstructured"));
    assert!(format!("{:?}", &w.history[1]).starts_with("LnStructured"));
    assert_eq!(w.history[1].pruning_type(), PruningType::Structured { dim: 0 });
    // Every entry that is 0 in the first mask is 0 in the second mask too.
    assert!(keeps_zeros(&weight_mask0, w.mask()));
    // round(0.3 * 2) = 1 of the two output channels went.
    assert_eq!(dead_channels(w.mask(), 0).iter().filter(|&&d| d).count(), 1);

    let weight_mask1 = w.mask().copy();
    w.prune(Box::new(LnStructured::new(0.1, f64::INFINITY, 1)?), None)?;
    assert_eq!(w.history.len(), 3);
    assert_eq!(w.history[2].pruning_type(), PruningType::Structured { dim: 1 });
    // round(0.1 * 2) = 0 input channels: the mask is unchanged.
    assert_eq!(values(w.mask()), values(&weight_mask1));
    Ok(())
}

// PyTorch:
//     mask = torch.tensor([[0, 1, 1, 0], [0, 0, 1, 1]])
//     default_mask = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1]])
//     t = torch.rand_like(mask.to(dtype=torch.float32))
//     p = prune.CustomFromMask(mask=mask)
//     computed_mask = p.compute_mask(t, default_mask)
//     expected_mask = torch.tensor([[0, 0, 0, 0], [0, 0, 1, 1]], dtype=computed_mask.dtype)
//     self.assertEqual(computed_mask, expected_mask)
#[test]
fn test_custom_from_mask_pruning() -> TestResult {
    let mask = ti(&[0, 1, 1, 0, 0, 0, 1, 1], &[2, 4]);
    let default_mask = ti(&[0, 0, 0, 0, 1, 1, 1, 1], &[2, 4]);
    let t = mask.to_kind(Kind::Float).rand_like();
    let p = CustomFromMask::new(mask);
    let computed_mask = p.compute_mask(&t, &default_mask)?;
    assert_eq!(computed_mask.kind(), Kind::Int64); // the default mask's kind
    assert_values(&computed_mask, &[0., 0., 0., 0., 0., 0., 1., 1.], &[2, 4]);
    Ok(())
}

// PyTorch:
//     p = prune.L1Unstructured(amount=2)
//     t = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]]).to(dtype=torch.float32)
//     default_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 1]])
//     expected_mask = torch.tensor([[0, 0, 1, 0], [1, 1, 0, 1]])
//     pruned_tensor = p.prune(t, default_mask)
//     self.assertEqual(t * expected_mask, pruned_tensor)
#[test]
fn test_prune() -> TestResult {
    let p = L1Unstructured::new(2)?;
    let t = tf(&[1., 2., 3., 4., 5., 6., 7., 8.], &[2, 4]);
    let default_mask = ti(&[1, 1, 1, 0, 1, 1, 0, 1], &[2, 4]);
    let expected_mask = ti(&[0, 0, 1, 0, 1, 1, 0, 1], &[2, 4]);
    let pruned_tensor = p.prune(&t, Some(&default_mask), None)?;
    assert_eq!(pruned_tensor.kind(), Kind::Float);
    assert_values(&pruned_tensor, &values(&(&t * &expected_mask)), &[2, 4]);
    assert_values(&pruned_tensor, &[0., 0., 3., 0., 5., 6., 0., 8.], &[2, 4]);
    Ok(())
}

// PyTorch:
//     p = prune.L1Unstructured(amount=2)
//     t = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]]).to(dtype=torch.float32)
//     importance_scores = torch.tensor([[1, 2, 3, 4], [1.5, 1.6, 1.7, 1.8]]).to(
//         dtype=torch.float32)
//     default_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 1]])
//     expected_mask = torch.tensor([[0, 1, 1, 0], [0, 1, 0, 1]])
//     pruned_tensor = p.prune(t, default_mask, importance_scores=importance_scores)
//     self.assertEqual(t * expected_mask, pruned_tensor)
#[test]
fn test_prune_importance_scores() -> TestResult {
    let p = L1Unstructured::new(2)?;
    let t = tf(&[1., 2., 3., 4., 5., 6., 7., 8.], &[2, 4]);
    let importance_scores = tf(&[1., 2., 3., 4., 1.5, 1.6, 1.7, 1.8], &[2, 4]);
    let default_mask = ti(&[1, 1, 1, 0, 1, 1, 0, 1], &[2, 4]);
    let expected_mask = ti(&[0, 1, 1, 0, 0, 1, 0, 1], &[2, 4]);
    let pruned_tensor = p.prune(&t, Some(&default_mask), Some(&importance_scores))?;
    assert_values(&pruned_tensor, &values(&(&t * &expected_mask)), &[2, 4]);
    Ok(())
}

// PyTorch:
//     p = prune.L1Unstructured(amount=2)
//     t = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]]).to(dtype=torch.float32)
//     default_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 1]])
//     expected_mask = torch.tensor([[0, 0, 1, 0], [1, 1, 0, 1]])
//     pruned_tensor_without_importance_scores = p.prune(t, default_mask)
//     pruned_tensor_with_importance_scores = p.prune(t, default_mask, importance_scores=t)
//     self.assertEqual(pruned_tensor_without_importance_scores,
//                      pruned_tensor_with_importance_scores)
//     self.assertEqual(t * expected_mask, pruned_tensor_without_importance_scores)
#[test]
fn test_prune_importance_scores_mimic_default() -> TestResult {
    let p = L1Unstructured::new(2)?;
    let t = tf(&[1., 2., 3., 4., 5., 6., 7., 8.], &[2, 4]);
    let default_mask = ti(&[1, 1, 1, 0, 1, 1, 0, 1], &[2, 4]);
    let expected_mask = ti(&[0, 0, 1, 0, 1, 1, 0, 1], &[2, 4]);
    let without_scores = p.prune(&t, Some(&default_mask), None)?;
    let with_scores = p.prune(&t, Some(&default_mask), Some(&t))?;
    assert_eq!(values(&without_scores), values(&with_scores));
    assert_eq!(without_scores.kind(), with_scores.kind());
    assert_values(&without_scores, &values(&(&t * &expected_mask)), &[2, 4]);
    Ok(())
}

/// Not in PyTorch's file: the trait is object-safe, and every built-in method reports
/// PyTorch's `PRUNING_TYPE` (with the method's `dim` for structured ones).
#[test]
fn builtin_methods_as_trait_objects() -> TestResult {
    let methods: Vec<Box<dyn PruningMethod>> = vec![
        Box::new(Identity),
        Box::new(RandomUnstructured::new(0.5)?),
        Box::new(L1Unstructured::new(2)?),
        Box::new(RandomStructured::new(1, -1)?),
        Box::new(LnStructured::new(0.5, 2, 1)?),
        Box::new(CustomFromMask::new(tf(&[1.0, 0.0], &[1, 2]))),
    ];
    let types: Vec<PruningType> = methods.iter().map(|m| m.pruning_type()).collect();
    assert_eq!(
        types,
        vec![
            PruningType::Unstructured,
            PruningType::Unstructured,
            PruningType::Unstructured,
            PruningType::Structured { dim: -1 },
            PruningType::Structured { dim: 1 },
            PruningType::Global,
        ]
    );

    // They all run through the trait object (on a tensor with the shape of the custom mask).
    let t = tf(&[3.0, -1.0], &[1, 2]);
    let pruned: Vec<usize> = methods
        .iter()
        .map(|m| m.compute_mask(&t, &t.ones_like()).map(|mask| zeros(&mask)))
        .collect::<Result<_, _>>()?;
    assert_eq!(pruned, vec![0, 1, 2, 1, 1, 1]);

    // And a container takes them as boxes.
    let mut container = PruningContainer::new();
    for method in methods {
        container.add_pruning_method(method);
    }
    assert_eq!(container.len(), 6);
    assert_eq!(container.last().unwrap().pruning_type(), PruningType::Global);
    Ok(())
}

// Not in PyTorch's file; PyTorch's behaviour: with `largest=False`, NaN counts as larger than
// any number (and +inf is among the largest), so NaN entries are pruned last; a NaN channel
// norm ranks as the largest, so that channel is kept.
#[test]
fn nan_and_inf_rank_as_largest() -> TestResult {
    let t = tf(&[f32::NAN, 1.0, f32::INFINITY, -0.5, 3.0], &[5]);
    let mask = L1Unstructured::new(3)?.compute_mask(&t, &t.ones_like())?;
    assert_eq!(values(&mask), [1., 0., 1., 0., 0.]);
    let mask = L1Unstructured::new(4)?.compute_mask(&t, &t.ones_like())?;
    assert_eq!(values(&mask), [1., 0., 0., 0., 0.]);

    let t = tf(&[f32::NAN, 0.0, 5.0, 5.0, 1.0, 1.0], &[3, 2]);
    let mask = LnStructured::new(2, 2, 0)?.compute_mask(&t, &t.ones_like())?;
    assert_eq!(values(&mask), [1., 1., 0., 0., 0., 0.]);
    Ok(())
}

// Not in PyTorch's file; PyTorch's mask kinds (bare `compute_mask`): unstructured and custom masks have
// the default mask's kind; structured masks have the importance kind when something is pruned
// and are the default mask otherwise; inside a container the mask has the importance kind.
#[test]
fn mask_kinds_follow_pytorch() -> TestResult {
    let t = common::tensors::distinct(&[2, 3]);
    let int_ones = t.ones_like().to_kind(Kind::Int64);
    let double_t = t.to_kind(Kind::Double);

    let kind =
        |m: &dyn PruningMethod, t: &Tensor, d: &Tensor| m.compute_mask(t, d).map(|x| x.kind());
    assert_eq!(kind(&Identity, &t, &int_ones)?, Kind::Int64);
    assert_eq!(kind(&L1Unstructured::new(2)?, &t, &int_ones)?, Kind::Int64);
    assert_eq!(kind(&RandomUnstructured::new(2)?, &t, &int_ones)?, Kind::Int64);
    assert_eq!(
        kind(&CustomFromMask::new(t.ones_like().to_kind(Kind::Bool)), &t, &int_ones)?,
        Kind::Int64
    );
    assert_eq!(kind(&LnStructured::new(1, 2, 0)?, &double_t, &int_ones)?, Kind::Double);
    assert_eq!(kind(&RandomStructured::new(1, 1)?, &double_t, &int_ones)?, Kind::Double);
    assert_eq!(kind(&LnStructured::new(0, 2, 0)?, &double_t, &int_ones)?, Kind::Int64);
    assert_eq!(kind(&RandomStructured::new(0.0, 1)?, &double_t, &int_ones)?, Kind::Int64);

    for method in [
        Box::new(Identity) as Box<dyn PruningMethod>,
        Box::new(L1Unstructured::new(1)?),
        Box::new(LnStructured::new(0, 2, 0)?),
        Box::new(CustomFromMask::new(t.ones_like())),
    ] {
        let mut container = PruningContainer::new();
        container.add_pruning_method(method);
        assert_eq!(container.compute_mask(&double_t, &int_ones)?.kind(), Kind::Double);
    }
    Ok(())
}
