//! Every tensor-level error condition (each place where PyTorch raises) maps to one
//! [`PruneError`] variant with the parameter's value in its fields, and a failed call leaves its
//! inputs as they were.
//!
//! Conditions without a variant because Rust's types rule them out: an amount that is not a
//! number (`TypeError`), adding something that is not a pruning method to a container
//! (`TypeError`, a `compile_fail` doctest in src/container.rs), a structured method without
//! `dim`, an unknown `PRUNING_TYPE`, and a method for another tensor name (the container has
//! none). Module-level conditions (missing names, `remove`, hooks, global pruning) are tested
//! with the model layer.

mod common;

use common::tensors::{assert_same, distinct, snapshot, tf, ti};
use tch::{Device, Kind, Tensor};
use tch_prune::{
    Amount, CustomFromMask, Identity, L1Unstructured, LnStructured, Norm, PruneError, Pruner,
    PruningContainer, PruningMethod, RandomStructured, RandomUnstructured,
};

/// A container holding the single `method`.
fn container_of(method: impl PruningMethod + 'static) -> PruningContainer {
    let mut container = PruningContainer::new();
    container.add_pruning_method(Box::new(method));
    container
}

/// The four methods that take an amount, built from `amount`, as results of their `new`.
fn constructors(amount: Amount) -> Vec<Result<(), PruneError>> {
    vec![
        L1Unstructured::new(amount).map(drop),
        RandomUnstructured::new(amount).map(drop),
        LnStructured::new(amount, 2, 0).map(drop),
        RandomStructured::new(amount, -1).map(drop),
    ]
}

// PyTorch: ValueError from `_validate_pruning_amount_init` for a float amount outside [0, 1];
// NaN is accepted there and fails in `round(nan * size)` (the crate rejects it up front).
#[test]
fn fraction_out_of_range() {
    for value in [1.1, 20.0, f64::INFINITY, -0.1, f64::NEG_INFINITY, 1.0 + f64::EPSILON] {
        assert!(matches!(
            Amount::Fraction(value).validate(),
            Err(PruneError::FractionOutOfRange { value: v }) if v == value
        ));
        for result in constructors(Amount::Fraction(value)) {
            match result {
                Err(PruneError::FractionOutOfRange { value: v }) => assert_eq!(v, value),
                other => panic!("{value}: expected FractionOutOfRange, got {other:?}"),
            }
        }
    }
    for result in constructors(Amount::Fraction(f64::NAN)) {
        match result {
            Err(PruneError::FractionOutOfRange { value }) => assert!(value.is_nan()),
            other => panic!("NaN: expected FractionOutOfRange, got {other:?}"),
        }
    }
    // An f32 amount is a fraction too.
    assert!(matches!(L1Unstructured::new(1.5f32), Err(PruneError::FractionOutOfRange { .. })));
    // A plain `Amount` is data; `count_for` validates before computing.
    assert!(matches!(
        Amount::Fraction(1.1).count_for(10),
        Err(PruneError::FractionOutOfRange { value }) if value == 1.1
    ));
}

// PyTorch: ValueError for an integral amount < 0 (`-10` in test_validate_pruning_amount_init).
#[test]
fn negative_count() {
    for value in [-10i64, -1, i64::MIN] {
        for result in constructors(Amount::Count(value)) {
            match result {
                Err(PruneError::NegativeCount { value: v }) => assert_eq!(v, value),
                other => panic!("{value}: expected NegativeCount, got {other:?}"),
            }
        }
    }
    assert!(matches!(L1Unstructured::new(-3i32), Err(PruneError::NegativeCount { value: -3 })));
    assert!(matches!(Amount::Count(-1).count_for(5), Err(PruneError::NegativeCount { value: -1 })));
}

/// Asserts `result` is `AmountTooLarge { requested, available }`.
#[track_caller]
fn assert_too_large<T: std::fmt::Debug>(
    result: Result<T, PruneError>,
    requested: i64,
    available: i64,
) {
    match result {
        Err(PruneError::AmountTooLarge { requested: r, available: a }) => {
            assert_eq!((r, a), (requested, available))
        }
        other => panic!("expected AmountTooLarge, got {other:?}"),
    }
}

// PyTorch: ValueError from `_validate_pruning_amount` when an integer count exceeds the units
// (entries for unstructured methods, channels along `dim` for structured ones).
#[test]
fn amount_too_large() {
    let t = distinct(&[3, 4]);
    let ones = t.ones_like();
    assert_too_large(L1Unstructured::new(13).unwrap().compute_mask(&t, &ones), 13, 12);
    assert_too_large(RandomUnstructured::new(13).unwrap().compute_mask(&t, &ones), 13, 12);
    assert_too_large(LnStructured::new(4, 2, 0).unwrap().compute_mask(&t, &ones), 4, 3);
    assert_too_large(LnStructured::new(5, 1, -1).unwrap().compute_mask(&t, &ones), 5, 4);
    assert_too_large(RandomStructured::new(4, 0).unwrap().compute_mask(&t, &ones), 4, 3);
    assert_too_large(RandomStructured::new(5, 1).unwrap().compute_mask(&t, &ones), 5, 4);
    // Through `prune` too.
    assert_too_large(L1Unstructured::new(13).unwrap().prune(&t, None, None), 13, 12);
    // Equality is allowed.
    assert!(L1Unstructured::new(12).unwrap().compute_mask(&t, &ones).is_ok());
    assert!(LnStructured::new(3, 2, 0).unwrap().compute_mask(&t, &ones).is_ok());
}

// PyTorch: inside a container only the still-unpruned slice is counted, so a count larger
// than the remaining units raises even when it is smaller than the tensor.
#[test]
fn amount_too_large_inside_a_container() {
    let t = distinct(&[3, 4]);
    // 5 of the 12 entries are already pruned; row 1 is entirely pruned.
    let default_mask = tf(&[1., 0., 1., 1., 0., 0., 0., 0., 1., 1., 1., 1.], &[3, 4]);
    let copy = snapshot(&default_mask);

    // Unstructured: 8 requested, 7 remaining (12 in the tensor).
    let container = container_of(L1Unstructured::new(8).unwrap());
    assert_too_large(container.compute_mask(&t, &default_mask), 8, 7);
    assert_too_large(container.prune(&t, Some(&default_mask), None), 8, 7);
    assert!(container_of(L1Unstructured::new(7).unwrap()).compute_mask(&t, &default_mask).is_ok());
    let container = container_of(RandomUnstructured::new(8).unwrap());
    assert_too_large(container.compute_mask(&t, &default_mask), 8, 7);

    // Structured: 3 rows requested, 2 rows alive (3 in the tensor). Columns are all alive.
    let container = container_of(LnStructured::new(3, 2, 0).unwrap());
    assert_too_large(container.compute_mask(&t, &default_mask), 3, 2);
    let container = container_of(RandomStructured::new(3, 0).unwrap());
    assert_too_large(container.compute_mask(&t, &default_mask), 3, 2);
    assert!(container_of(LnStructured::new(4, 2, 1).unwrap())
        .compute_mask(&t, &default_mask)
        .is_ok());

    // The caller's mask (same kind as the importance, where PyTorch would write into it) is
    // untouched by every failed call.
    assert_same(&default_mask, &copy);
}

/// Asserts `result` is `NotStructured { shape }`.
#[track_caller]
fn assert_not_structured<T: std::fmt::Debug>(result: Result<T, PruneError>, shape: &[i64]) {
    match result {
        Err(PruneError::NotStructured { shape: s }) => assert_eq!(s, shape),
        other => panic!("expected NotStructured, got {other:?}"),
    }
}

// PyTorch: ValueError from `_validate_structured_pruning` for a tensor with fewer than 2 dims.
#[test]
fn not_structured() {
    let t = tf(&[1., 2., 3., 4., 5.], &[5]);
    let ones = t.ones_like();
    let ones_copy = snapshot(&ones);
    assert_not_structured(LnStructured::new(1, 2, 0).unwrap().compute_mask(&t, &ones), &[5]);
    assert_not_structured(LnStructured::new(0, 2, -1).unwrap().compute_mask(&t, &ones), &[5]);
    assert_not_structured(RandomStructured::new(1, 0).unwrap().compute_mask(&t, &ones), &[5]);
    assert_not_structured(RandomStructured::new(0.5, -1).unwrap().prune(&t, None, None), &[5]);

    // A 0-d tensor.
    let scalar = Tensor::from_slice(&[2.0f32]).squeeze();
    assert_eq!(scalar.dim(), 0);
    assert_not_structured(
        LnStructured::new(1, 2, 0).unwrap().compute_mask(&scalar, &scalar.ones_like()),
        &[],
    );

    // Through a container (re-pruning) PyTorch hands a 1-D tensor over as one row `[1, n]`
    // (tests/model_pruning.rs): only a dim other than 0 and -1 fails, with its `IndexError`,
    // and a 0-D tensor fails for every dim.
    let container = container_of(LnStructured::new(1, 2, 1).unwrap());
    assert_dim_out_of_range(container.compute_mask(&t, &ones), 1, 1);
    let container = container_of(RandomStructured::new(1, -2).unwrap());
    assert_dim_out_of_range(container.compute_mask(&t, &ones), -2, 1);
    let container = container_of(LnStructured::new(1, 2, 0).unwrap());
    assert_dim_out_of_range(container.compute_mask(&scalar, &scalar.ones_like()), 0, 0);
    assert_same(&ones, &ones_copy);
}

/// Asserts `result` is `DimOutOfRange { dim, ndim }`.
#[track_caller]
fn assert_dim_out_of_range<T: std::fmt::Debug>(result: Result<T, PruneError>, dim: i64, ndim: i64) {
    match result {
        Err(PruneError::DimOutOfRange { dim: d, ndim: n }) => assert_eq!((d, n), (dim, ndim)),
        other => panic!("expected DimOutOfRange, got {other:?}"),
    }
}

// PyTorch: IndexError for `dim >= ndim` (`_validate_pruning_dim`, or the container's list
// assignment) and for a dim that is too negative (`t.shape[dim]`, or the container's check).
#[test]
fn dim_out_of_range() {
    let t = distinct(&[2, 3]);
    let ones = t.ones_like();
    let ones_copy = snapshot(&ones);
    for (dim, amount) in [(2, 1), (5, 1), (-3, 1), (-7, 0), (2, 0)] {
        let ln = LnStructured::new(amount, 2, dim).unwrap();
        let random = RandomStructured::new(amount, dim).unwrap();
        assert_dim_out_of_range(ln.compute_mask(&t, &ones), dim, 2);
        assert_dim_out_of_range(random.compute_mask(&t, &ones), dim, 2);
        assert_dim_out_of_range(ln.prune(&t, None, None), dim, 2);
        // Through a container.
        assert_dim_out_of_range(container_of(ln).compute_mask(&t, &ones), dim, 2);
        assert_dim_out_of_range(container_of(random).compute_mask(&t, &ones), dim, 2);
    }
    // On a 4-D tensor, -4 and 3 are fine and -5 and 4 are not.
    let t4 = distinct(&[2, 1, 2, 3]);
    let ones4 = t4.ones_like();
    for dim in [-4, 3] {
        assert!(LnStructured::new(1, 2, dim).unwrap().compute_mask(&t4, &ones4).is_ok());
    }
    for dim in [-5, 4] {
        let ln = LnStructured::new(1, 2, dim).unwrap();
        assert_dim_out_of_range(ln.compute_mask(&t4, &ones4), dim, 4);
        assert_dim_out_of_range(container_of(ln).compute_mask(&t4, &ones4), dim, 4);
    }
    assert_same(&ones, &ones_copy);
}

/// Asserts `result` is `ShapeMismatch { parameter, expected, actual }`.
#[track_caller]
fn assert_shape_mismatch<T: std::fmt::Debug>(
    result: Result<T, PruneError>,
    parameter: &str,
    expected: &[i64],
    actual: &[i64],
) {
    match result {
        Err(PruneError::ShapeMismatch { parameter: p, expected: e, actual: a }) => {
            assert_eq!((p, e.as_slice(), a.as_slice()), (parameter, expected, actual))
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
}

// PyTorch: AssertionError for importance scores of another shape (`prune`, `apply`) and for a
// custom mask of another shape; a libtorch error for a default mask of another shape.
#[test]
fn shape_mismatch() {
    let t = distinct(&[2, 3]);
    let wrong = distinct(&[3, 2]);
    let ones = t.ones_like();
    let wrong_copy = snapshot(&wrong);
    let ones_copy = snapshot(&ones);

    // Importance scores of the wrong shape.
    let l1 = L1Unstructured::new(1).unwrap();
    assert_shape_mismatch(l1.prune(&t, None, Some(&wrong)), "importance_scores", &[2, 3], &[3, 2]);
    let ln = LnStructured::new(1, 2, 0).unwrap();
    assert_shape_mismatch(
        ln.prune(&t, Some(&ones), Some(&wrong)),
        "importance_scores",
        &[2, 3],
        &[3, 2],
    );
    let flat = tf(&[1., 2., 3., 4., 5., 6.], &[6]);
    assert_shape_mismatch(
        container_of(l1).prune(&t, None, Some(&flat)),
        "importance_scores",
        &[2, 3],
        &[6],
    );

    // Default masks of the wrong shape, for every method and through `prune` and a container.
    let methods: Vec<Box<dyn PruningMethod>> = vec![
        Box::new(L1Unstructured::new(1).unwrap()),
        Box::new(RandomUnstructured::new(1).unwrap()),
        Box::new(LnStructured::new(1, 2, 0).unwrap()),
        Box::new(RandomStructured::new(1, 0).unwrap()),
    ];
    for method in methods {
        assert_shape_mismatch(method.compute_mask(&t, &wrong), "default_mask", &[2, 3], &[3, 2]);
        assert_shape_mismatch(
            method.prune(&t, Some(&wrong), None),
            "default_mask",
            &[2, 3],
            &[3, 2],
        );
        let mut container = PruningContainer::new();
        container.add_pruning_method(method);
        assert_shape_mismatch(container.compute_mask(&t, &wrong), "default_mask", &[2, 3], &[3, 2]);
    }

    // A custom mask of the wrong shape: compared with the default mask.
    let custom = CustomFromMask::new(ti(&[1, 0, 1, 0, 1, 0], &[3, 2]));
    assert_shape_mismatch(custom.compute_mask(&t, &ones), "mask", &[2, 3], &[3, 2]);
    assert_shape_mismatch(custom.prune(&t, None, None), "mask", &[2, 3], &[3, 2]);
    assert_shape_mismatch(container_of(custom).compute_mask(&t, &ones), "mask", &[2, 3], &[3, 2]);

    assert_same(&wrong, &wrong_copy);
    assert_same(&ones, &ones_copy);
}

// PyTorch accepts `n=float('nan')` and fails inside `torch.norm`; the crate rejects it at
// construction. (`"nuc"` is not representable: see tests/serde.rs.)
#[test]
fn invalid_norm() {
    match LnStructured::new(0.5, f64::NAN, 0) {
        Err(PruneError::InvalidNorm { value }) => assert!(value.is_nan()),
        other => panic!("expected InvalidNorm, got {other:?}"),
    }
    match LnStructured::new(1, Norm::P(f64::NAN), -1) {
        Err(PruneError::InvalidNorm { value }) => assert!(value.is_nan()),
        other => panic!("expected InvalidNorm, got {other:?}"),
    }
    assert!(matches!(Norm::P(f64::NAN).validate(), Err(PruneError::InvalidNorm { .. })));
    // An invalid amount is reported before the norm.
    assert!(matches!(
        LnStructured::new(2.0, f64::NAN, 0),
        Err(PruneError::FractionOutOfRange { .. })
    ));
    // Every other order is accepted.
    for n in [Norm::P(0.0), Norm::P(-1.0), Norm::P(0.5), Norm::Inf, Norm::NegInf, Norm::Fro] {
        assert!(LnStructured::new(1, n, 0).is_ok(), "{n:?}");
    }
}

/// Asserts `result` is `UnsupportedKind { kind, .. }` for the importance tensor.
#[track_caller]
fn assert_unsupported<T: std::fmt::Debug>(result: Result<T, PruneError>, kind: Kind) {
    match result {
        Err(PruneError::UnsupportedKind { parameter, kind: k, expected }) => {
            assert_eq!(parameter, "importance");
            assert_eq!(k, kind);
            assert!(!expected.is_empty());
        }
        other => panic!("expected UnsupportedKind, got {other:?}"),
    }
}

// PyTorch: NotImplementedError from libtorch (`rand_like` / `vector_norm` on integer tensors).
#[test]
fn unsupported_kind() {
    let t = ti(&[1, -2, 3, -4, 5, -6], &[2, 3]);
    let ones = t.ones_like();
    let ones_copy = snapshot(&ones);
    assert_unsupported(RandomUnstructured::new(2).unwrap().compute_mask(&t, &ones), Kind::Int64);
    assert_unsupported(RandomUnstructured::new(0.5).unwrap().prune(&t, None, None), Kind::Int64);
    assert_unsupported(LnStructured::new(1, 2, 0).unwrap().compute_mask(&t, &ones), Kind::Int64);
    // LnStructured computes the norms before looking at the count, as PyTorch does, so it fails
    // even when nothing would be pruned; RandomUnstructured draws nothing for a count of 0.
    assert_unsupported(LnStructured::new(0, 2, 0).unwrap().compute_mask(&t, &ones), Kind::Int64);
    assert!(RandomUnstructured::new(0).unwrap().compute_mask(&t, &ones).is_ok());
    // Through a container, and for other integer kinds.
    let container = container_of(RandomUnstructured::new(1).unwrap());
    assert_unsupported(container.compute_mask(&t, &ones), Kind::Int64);
    let t32 = t.to_kind(Kind::Int);
    assert_unsupported(
        LnStructured::new(1, 1, 1).unwrap().compute_mask(&t32, &t32.ones_like()),
        Kind::Int,
    );
    let bytes = t.abs().to_kind(Kind::Uint8);
    assert_unsupported(
        RandomUnstructured::new(1).unwrap().compute_mask(&bytes, &bytes.ones_like()),
        Kind::Uint8,
    );
    assert_same(&ones, &ones_copy);

    // Integer tensors are fine where PyTorch allows them (L1Unstructured, RandomStructured).
    assert!(L1Unstructured::new(2).unwrap().compute_mask(&t, &ones).is_ok());
    assert!(RandomStructured::new(1, 0).unwrap().compute_mask(&t, &ones).is_ok());
}

/// Asserts `result` is `UnsupportedNorm` for "fro" on a tensor of `shape`.
#[track_caller]
fn assert_fro_refused<T: std::fmt::Debug>(result: Result<T, PruneError>, shape: &[i64]) {
    match result {
        Err(PruneError::UnsupportedNorm { norm: Norm::Fro, shape: s, max_ndim: 3 }) => {
            assert_eq!(s, shape)
        }
        other => panic!("expected UnsupportedNorm, got {other:?}"),
    }
}

// PyTorch: `torch.norm(t, p="fro", dim=dims)` with three or more dims calls
// `linalg.matrix_norm`, which raises a RuntimeError ("dim must be a 2-tuple"): n="fro" fails on
// every tensor of 4 or more dimensions (every Conv2d weight), even with amount 0.
#[test]
fn fro_norm_on_four_or_more_dimensions() {
    for shape in [&[4, 3, 2, 2][..], &[2, 2, 2, 3, 2]] {
        let t = distinct(shape);
        let ones = t.ones_like();
        for amount in
            [Amount::Count(0), Amount::Fraction(0.0), Amount::Count(1), Amount::Fraction(0.5)]
        {
            for dim in [0, 1, -1] {
                let method = LnStructured::new(amount, Norm::Fro, dim).unwrap();
                assert_fro_refused(method.compute_mask(&t, &ones), shape);
                assert_fro_refused(method.prune(&t, None, None), shape);
                assert_fro_refused(container_of(method).compute_mask(&t, &ones), shape);
            }
        }
    }
    // As in PyTorch, a count too large and an integer tensor are reported first.
    let t = distinct(&[4, 3, 2, 2]);
    let err = LnStructured::new(5, Norm::Fro, 0).unwrap().compute_mask(&t, &t.ones_like());
    assert!(matches!(err, Err(PruneError::AmountTooLarge { requested: 5, available: 4 })));
    let ints = t.to_kind(Kind::Int64);
    let err = LnStructured::new(0, Norm::Fro, 0).unwrap().compute_mask(&ints, &ints.ones_like());
    assert_unsupported(err, Kind::Int64);
    // On 2 and 3 dims "fro" is the 2-norm, bit for bit.
    for shape in [&[4, 3][..], &[4, 3, 2]] {
        let t = distinct(shape);
        let fro = LnStructured::new(0.5, Norm::Fro, 0).unwrap().compute_mask(&t, &t.ones_like());
        let two = LnStructured::new(0.5, 2, 0).unwrap().compute_mask(&t, &t.ones_like());
        assert_same(&fro.unwrap(), &two.unwrap());
    }
    let err = LnStructured::new(0, Norm::Fro, 0).unwrap().compute_mask(&t, &t.ones_like());
    assert_eq!(
        err.unwrap_err().to_string(),
        "n: the fro norm needs a tensor of at most 3 dimensions, got shape [4, 3, 2, 2]"
    );

    // A Conv2d weight in a model: refused, nothing changes.
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let conv = tch::nn::conv2d(vs.root() / "conv", 3, 4, 2, Default::default());
    let mut model = tch_prune::PrunedModel::with_prefix(conv, &vs, "conv").unwrap();
    let before = snapshot(&vs.variables()["conv.weight"]);
    assert_fro_refused(model.ln_structured("conv.weight", 0, Norm::Fro, 0, None), &[4, 3, 2, 2]);
    assert!(!model.is_pruned());
    assert_same(&vs.variables()["conv.weight"], &before);
}

// PyTorch: IndexError from `self._pruning_methods[-1]` on an empty container.
#[test]
fn empty_container() {
    let container = PruningContainer::new();
    let t = distinct(&[2, 2]);
    let ones = t.ones_like();
    assert!(matches!(container.compute_mask(&t, &ones), Err(PruneError::EmptyContainer)));
    assert!(matches!(container.prune(&t, None, None), Err(PruneError::EmptyContainer)));
    assert!(container.last().is_none());
    // With one method it works.
    assert!(container_of(Identity).compute_mask(&t, &ones).is_ok());
}

/// A failed call leaves its inputs as they were: the importance tensor, the default mask (of
/// the importance kind, the case where PyTorch's container writes into it) and a custom mask.
#[test]
fn inputs_unchanged_after_errors() {
    let t = distinct(&[3, 4]);
    let t_copy = snapshot(&t);
    let default_mask = tf(&[1., 1., 0., 1., 1., 1., 1., 1., 0., 0., 0., 0.], &[3, 4]);
    let mask_copy = snapshot(&default_mask);
    let custom_mask = ti(&[1, 0, 1], &[3]);
    let custom_copy = snapshot(&custom_mask);

    let failing: Vec<Box<dyn PruningMethod>> = vec![
        Box::new(L1Unstructured::new(10).unwrap()), // 10 > 7 entries remaining
        Box::new(RandomUnstructured::new(10).unwrap()),
        Box::new(LnStructured::new(3, 2, 0).unwrap()), // 3 > 2 rows alive
        Box::new(RandomStructured::new(3, 0).unwrap()),
        Box::new(LnStructured::new(1, 2, 2).unwrap()), // dim out of range
        Box::new(CustomFromMask::new(custom_mask.shallow_clone())), // shape mismatch
    ];
    for method in failing {
        let name = format!("{method:?}");
        let mut container = PruningContainer::new();
        container.add_pruning_method(method);
        assert!(container.compute_mask(&t, &default_mask).is_err(), "{name}");
        assert!(container.prune(&t, Some(&default_mask), None).is_err(), "{name}");
    }
    assert_same(&t, &t_copy);
    assert_same(&default_mask, &mask_copy);
    assert_same(&custom_mask, &custom_copy);

    // Successful container calls do not write into the default mask either (PyTorch's does
    // when the default mask's kind equals the importance kind).
    let container = container_of(L1Unstructured::new(2).unwrap());
    let new_mask = container.compute_mask(&t, &default_mask).unwrap();
    assert_same(&default_mask, &mask_copy);
    assert_eq!(common::tensors::newly_zeroed(&default_mask, &new_mask), 2);
}

/// The messages name the parameter at fault and the value it had.
#[test]
fn display_names_parameter_and_value() {
    let message = L1Unstructured::new(1.1).unwrap_err().to_string();
    assert!(message.contains("amount") && message.contains("1.1"), "{message}");

    let message = RandomStructured::new(-10, 0).unwrap_err().to_string();
    assert!(message.contains("amount") && message.contains("-10"), "{message}");

    let t = distinct(&[2, 3]);
    let message =
        L1Unstructured::new(7).unwrap().compute_mask(&t, &t.ones_like()).unwrap_err().to_string();
    assert!(
        message.contains("amount") && message.contains('7') && message.contains('6'),
        "{message}"
    );

    let message = LnStructured::new(1, 2, 5)
        .unwrap()
        .compute_mask(&t, &t.ones_like())
        .unwrap_err()
        .to_string();
    assert!(message.contains("dim") && message.contains('5') && message.contains('2'), "{message}");

    let wrong = distinct(&[3, 2]);
    let message =
        L1Unstructured::new(1).unwrap().prune(&t, None, Some(&wrong)).unwrap_err().to_string();
    assert!(message.contains("importance_scores") && message.contains("[3, 2]"), "{message}");

    let flat = distinct(&[4]);
    let message = RandomStructured::new(1, 0)
        .unwrap()
        .compute_mask(&flat, &flat.ones_like())
        .unwrap_err()
        .to_string();
    assert!(message.contains("[4]"), "{message}");

    let message = LnStructured::new(1, f64::NAN, 0).unwrap_err().to_string();
    assert!(message.contains("norm") && message.contains("NaN"), "{message}");

    let ints = ti(&[1, 2, 3, 4], &[2, 2]);
    let message = RandomUnstructured::new(1)
        .unwrap()
        .compute_mask(&ints, &ints.ones_like())
        .unwrap_err()
        .to_string();
    assert!(message.contains("importance") && message.contains("Int64"), "{message}");

    let message = PruningContainer::new().compute_mask(&t, &t.ones_like()).unwrap_err().to_string();
    assert!(message.contains("container") && message.contains("empty"), "{message}");
}

/// `PruneError` is a normal error type: `Send + Sync + 'static`, usable with `?` into
/// `Box<dyn Error>`.
#[test]
fn error_type_is_well_behaved() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<PruneError>();
    let boxed: Box<dyn std::error::Error> = Box::new(PruneError::EmptyContainer);
    assert!(boxed.to_string().contains("empty"));
    // A libtorch error comes through as `Torch`.
    let torch_error = Tensor::f_zeros([2], (Kind::Float, Device::Cpu))
        .and_then(|z| z.f_reshape([3]))
        .unwrap_err();
    assert!(matches!(PruneError::from(torch_error), PruneError::Torch(_)));
}
