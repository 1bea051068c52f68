//! Property tests of the pruning methods and containers on random shapes (1-D to 4-D), random
//! data (with many ties) and random amounts (counts and fractions):
//!
//! * masks are binary (only 0 and 1);
//! * a new mask never revives an entry the default mask pruned;
//! * the number newly pruned is the computed count: entries for unstructured methods, whole
//!   channels for structured ones (inside a container, out of the units still unpruned);
//! * structured methods zero whole slices along `dim` and leave every other slice as it was;
//! * an amount of 0 (`Count(0)` or `Fraction(0.0)`) changes nothing.
//!
//! Each case calls libtorch, so the case counts are moderate.

mod common;

use common::tensors::{channel_of, values};
use proptest::prelude::*;
use tch::{Kind, Tensor};
use tch_prune::{
    Amount, L1Unstructured, LnStructured, Norm, PruningContainer, PruningMethod, RandomStructured,
    RandomUnstructured,
};

/// How much to prune, before the number of available units is known.
#[derive(Debug, Clone, Copy)]
enum AmountSeed {
    /// A count: `seed % (available + 1)`, so it never exceeds the available units.
    Count(u32),
    /// A fraction in `[0, 1]`.
    Fraction(f64),
}

impl AmountSeed {
    fn amount(self, available: i64) -> Amount {
        match self {
            AmountSeed::Count(seed) => Amount::Count(i64::from(seed) % (available + 1)),
            AmountSeed::Fraction(f) => Amount::Fraction(f),
        }
    }
}

/// A method to build once the tensor and the current mask are known.
#[derive(Debug, Clone, Copy)]
enum Spec {
    L1(AmountSeed),
    RandomUnstructured(AmountSeed),
    Ln(AmountSeed, Norm, u8),
    RandomStructured(AmountSeed, u8),
}

/// What a built method must do to the available units.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Prune `k` entries.
    Entries { k: usize },
    /// Prune `k` whole channels along `dim`.
    Channels { dim: i64, k: usize },
}

impl Spec {
    /// A dim in `-ndim..ndim` from the seed.
    fn dim(seed: u8, ndim: i64) -> i64 {
        i64::from(seed) % (2 * ndim) - ndim
    }

    fn with_amount(self, seed: AmountSeed) -> Spec {
        match self {
            Spec::L1(_) => Spec::L1(seed),
            Spec::RandomUnstructured(_) => Spec::RandomUnstructured(seed),
            Spec::Ln(_, n, d) => Spec::Ln(seed, n, d),
            Spec::RandomStructured(_, d) => Spec::RandomStructured(seed, d),
        }
    }

    /// Builds the method for a tensor of `shape` whose current mask is `mask` (row-major
    /// values), counting the available units the way a container does when `in_container`
    /// (entries equal to 1 / channels not entirely zero), or all units otherwise.
    fn build(
        self,
        shape: &[i64],
        mask: &[f64],
        in_container: bool,
    ) -> (Box<dyn PruningMethod>, Expect) {
        let ndim = shape.len() as i64;
        match self {
            Spec::L1(seed) | Spec::RandomUnstructured(seed) => {
                let available = if in_container {
                    mask.iter().filter(|&&v| v == 1.0).count() as i64
                } else {
                    mask.len() as i64
                };
                let amount = seed.amount(available);
                let k = amount.count_for(available).unwrap() as usize;
                let method: Box<dyn PruningMethod> = match self {
                    Spec::L1(_) => Box::new(L1Unstructured::new(amount).unwrap()),
                    _ => Box::new(RandomUnstructured::new(amount).unwrap()),
                };
                (method, Expect::Entries { k })
            }
            Spec::Ln(seed, _, d) | Spec::RandomStructured(seed, d) => {
                let dim = Spec::dim(d, ndim);
                let available = if in_container {
                    alive_channels(shape, mask, dim).iter().filter(|&&a| a).count() as i64
                } else {
                    shape[dim.rem_euclid(ndim) as usize]
                };
                let amount = seed.amount(available);
                let k = amount.count_for(available).unwrap() as usize;
                let method: Box<dyn PruningMethod> = match self {
                    // "fro" is refused on 4-D tensors (as PyTorch's `torch.norm` raises there).
                    Spec::Ln(_, Norm::Fro, _) if ndim >= 4 => {
                        Box::new(LnStructured::new(amount, 2, dim).unwrap())
                    }
                    Spec::Ln(_, n, _) => Box::new(LnStructured::new(amount, n, dim).unwrap()),
                    _ => Box::new(RandomStructured::new(amount, dim).unwrap()),
                };
                (method, Expect::Channels { dim, k })
            }
        }
    }
}

/// For each channel along `dim`, whether some entry of `mask` is non-zero.
fn alive_channels(shape: &[i64], mask: &[f64], dim: i64) -> Vec<bool> {
    let channels = shape[dim.rem_euclid(shape.len() as i64) as usize] as usize;
    let mut alive = vec![false; channels];
    for (v, c) in mask.iter().zip(channel_of(shape, dim)) {
        if *v != 0.0 {
            alive[c] = true;
        }
    }
    alive
}

/// Checks a new mask against the old one. `exact` says whether the method saw only the
/// available units (container, or a default mask of ones), so that exactly `k` units go;
/// otherwise (a bare method on a partly pruned mask) it may pick units already pruned, and
/// between `k - already_pruned` and `k` go.
fn check_step(
    shape: &[i64],
    old: &[f64],
    new: &[f64],
    expect: Expect,
    exact: bool,
) -> Result<(), TestCaseError> {
    prop_assert!(new.iter().all(|&v| v == 0.0 || v == 1.0), "not binary: {:?}", new);
    for (i, (&o, &n)) in old.iter().zip(new).enumerate() {
        prop_assert!(o != 0.0 || n == 0.0, "entry {} revived: {:?} -> {:?}", i, old, new);
    }
    match expect {
        Expect::Entries { k } => {
            let newly = old.iter().zip(new).filter(|(&o, &n)| o != 0.0 && n == 0.0).count();
            let already = old.iter().filter(|&&o| o == 0.0).count();
            if exact {
                prop_assert_eq!(newly, k);
            } else {
                prop_assert!(newly <= k && k <= newly + already, "{} newly, k {}", newly, k);
            }
        }
        Expect::Channels { dim, k } => {
            let before = alive_channels(shape, old, dim);
            let after = alive_channels(shape, new, dim);
            let dropped: Vec<bool> = before.iter().zip(&after).map(|(&b, &a)| b && !a).collect();
            // Every channel is either dropped whole or left exactly as it was.
            for ((&o, &n), c) in old.iter().zip(new).zip(channel_of(shape, dim)) {
                let expected = if dropped[c] { 0.0 } else { o };
                prop_assert_eq!(n, expected, "channel {} along dim {}", c, dim);
            }
            let newly = dropped.iter().filter(|&&d| d).count();
            let already = before.iter().filter(|&&a| !a).count();
            if exact {
                prop_assert_eq!(newly, k);
            } else {
                prop_assert!(newly <= k && k <= newly + already, "{} newly, k {}", newly, k);
            }
        }
    }
    Ok(())
}

fn amount_seed() -> impl Strategy<Value = AmountSeed> {
    prop_oneof![
        3 => any::<u32>().prop_map(AmountSeed::Count),
        3 => (0.0f64..=1.0).prop_map(AmountSeed::Fraction),
        1 => Just(AmountSeed::Fraction(1.0)),
        1 => Just(AmountSeed::Fraction(0.5)),
        1 => Just(AmountSeed::Count(0)),
    ]
}

fn norm() -> impl Strategy<Value = Norm> {
    prop::sample::select(vec![
        Norm::P(1.0),
        Norm::P(2.0),
        Norm::P(3.0),
        Norm::P(0.5),
        Norm::P(0.0),
        Norm::Inf,
        Norm::NegInf,
        Norm::Fro,
    ])
}

fn unstructured_spec() -> impl Strategy<Value = Spec> {
    prop_oneof![amount_seed().prop_map(Spec::L1), amount_seed().prop_map(Spec::RandomUnstructured),]
}

fn any_spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        amount_seed().prop_map(Spec::L1),
        amount_seed().prop_map(Spec::RandomUnstructured),
        (amount_seed(), norm(), any::<u8>()).prop_map(|(a, n, d)| Spec::Ln(a, n, d)),
        (amount_seed(), any::<u8>()).prop_map(|(a, d)| Spec::RandomStructured(a, d)),
    ]
}

/// Values with many ties (a few small integers) or spread out.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![prop::sample::select(vec![-2.0f32, -1.0, 0.0, 1.0, 2.0]), -10.0f32..10.0,]
}

/// A case: shape (1-D to 4-D, each side 1 to 4), data, a binary default mask (mostly ones)
/// and the kind of the tensor.
#[derive(Debug, Clone)]
struct Case {
    shape: Vec<i64>,
    data: Vec<f32>,
    default_mask: Vec<bool>,
    double: bool,
}

impl Case {
    fn tensor(&self) -> Tensor {
        let t = Tensor::from_slice(&self.data).reshape(self.shape.as_slice());
        if self.double {
            t.to_kind(Kind::Double)
        } else {
            t
        }
    }

    fn default_mask(&self, kind: Kind) -> Tensor {
        let v: Vec<f64> = self.default_mask.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
        Tensor::from_slice(&v).reshape(self.shape.as_slice()).to_kind(kind)
    }
}

fn case(min_dims: usize) -> impl Strategy<Value = Case> {
    prop::collection::vec(1i64..=4, min_dims..=4).prop_flat_map(|shape| {
        let numel = shape.iter().product::<i64>() as usize;
        (
            Just(shape),
            prop::collection::vec(value(), numel),
            prop::collection::vec(prop::bool::weighted(0.8), numel),
            any::<bool>(),
        )
            .prop_map(|(shape, data, default_mask, double)| Case {
                shape,
                data,
                default_mask,
                double,
            })
    })
}

/// A case with a method that fits it (structured methods only on 2-D and larger tensors).
fn case_and_spec() -> impl Strategy<Value = (Case, Spec)> {
    case(1).prop_flat_map(|case| {
        let spec =
            if case.shape.len() >= 2 { any_spec().boxed() } else { unstructured_spec().boxed() };
        (Just(case), spec)
    })
}

/// A case with 2 or 3 methods applied in turn.
fn case_and_history() -> impl Strategy<Value = (Case, Vec<Spec>)> {
    case(1).prop_flat_map(|case| {
        let spec =
            if case.shape.len() >= 2 { any_spec().boxed() } else { unstructured_spec().boxed() };
        (Just(case), prop::collection::vec(spec, 2..=3))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// On a default mask of ones a method prunes exactly its count: `k` entries, or `k` whole
    /// channels along `dim`.
    #[test]
    fn a_method_on_ones_prunes_exactly_its_count((case, spec) in case_and_spec()) {
        let t = case.tensor();
        let ones = t.ones_like();
        let old = values(&ones);
        let (method, expect) = spec.build(&case.shape, &old, false);
        let mask = method.compute_mask(&t, &ones).unwrap();
        prop_assert_eq!(mask.size(), case.shape.clone());
        check_step(&case.shape, &old, &values(&mask), expect, true)?;
    }

    /// On a partly pruned default mask a bare method keeps every zero, stays binary and (for
    /// structured methods) drops whole channels only.
    #[test]
    fn a_method_keeps_the_default_zeros((case, spec) in case_and_spec()) {
        let t = case.tensor();
        for kind in [t.kind(), Kind::Int64] {
            let default_mask = case.default_mask(kind);
            let copy = values(&default_mask);
            let (method, expect) = spec.build(&case.shape, &copy, false);
            let mask = method.compute_mask(&t, &default_mask).unwrap();
            check_step(&case.shape, &copy, &values(&mask), expect, false)?;
            // The default mask itself is left alone.
            prop_assert_eq!(values(&default_mask), copy);
        }
    }

    /// Inside a container the last method sees only the units still unpruned, so exactly `k`
    /// of them go, and the result has the importance tensor's kind.
    #[test]
    fn a_container_prunes_exactly_its_count_of_the_remaining_units(
        (case, spec) in case_and_spec()
    ) {
        let t = case.tensor();
        for kind in [t.kind(), Kind::Int64] {
            let default_mask = case.default_mask(kind);
            let copy = values(&default_mask);
            let (method, expect) = spec.build(&case.shape, &copy, true);
            let mut container = PruningContainer::new();
            container.add_pruning_method(method);
            let mask = container.compute_mask(&t, &default_mask).unwrap();
            prop_assert_eq!(mask.kind(), t.kind());
            check_step(&case.shape, &copy, &values(&mask), expect, true)?;
            prop_assert_eq!(values(&default_mask), copy);
        }
    }

    /// Repeated pruning as the module level does it: the first method on ones, then each new
    /// method through the container on the masked weight `orig * mask`.
    #[test]
    fn successive_methods_compose((case, specs) in case_and_history()) {
        let orig = case.tensor();
        let mut container = PruningContainer::new();
        let mut mask = orig.ones_like();
        for (step, spec) in specs.iter().enumerate() {
            let old = values(&mask);
            let (method, expect) = spec.build(&case.shape, &old, step > 0);
            let new_mask = if step == 0 {
                let m = method.compute_mask(&orig, &mask).unwrap();
                container.add_pruning_method(method);
                m
            } else {
                container.add_pruning_method(method);
                let weight = &orig * &mask;
                container.compute_mask(&weight, &mask).unwrap()
            };
            prop_assert_eq!(new_mask.kind(), orig.kind());
            check_step(&case.shape, &old, &values(&new_mask), expect, true)?;
            mask = new_mask;
        }
        prop_assert_eq!(container.len(), specs.len());
    }

    /// An amount of zero (a count or a fraction) returns the default mask's values, bare or in
    /// a container.
    #[test]
    fn amount_zero_changes_nothing(
        (case, spec) in case_and_spec(),
        zero in prop::sample::select(vec![AmountSeed::Count(0), AmountSeed::Fraction(0.0)]),
    ) {
        let spec = spec.with_amount(zero);
        let t = case.tensor();
        let default_mask = case.default_mask(t.kind());
        let copy = values(&default_mask);

        let (method, expect) = spec.build(&case.shape, &copy, false);
        let nothing = matches!(expect, Expect::Entries { k: 0 } | Expect::Channels { k: 0, .. });
        prop_assert!(nothing, "{:?}", expect);
        prop_assert_eq!(values(&method.compute_mask(&t, &default_mask).unwrap()), copy.clone());
        prop_assert_eq!(values(&method.prune(&t, Some(&default_mask), None).unwrap()),
                        values(&(&t * &default_mask)));

        let (method, _) = spec.build(&case.shape, &copy, true);
        let mut container = PruningContainer::new();
        container.add_pruning_method(method);
        prop_assert_eq!(values(&container.compute_mask(&t, &default_mask).unwrap()), copy);
    }

    /// A count equal to the available units prunes all of them: everything, or every channel.
    #[test]
    fn amount_all_prunes_everything((case, spec) in case_and_spec(), fraction in any::<bool>()) {
        let all = if fraction { AmountSeed::Fraction(1.0) } else { AmountSeed::Count(u32::MAX) };
        let spec = spec.with_amount(all);
        let t = case.tensor();
        let ones = t.ones_like();
        // `u32::MAX % (available + 1)` is not `available` in general: use the available count.
        let available = match spec.build(&case.shape, &values(&ones), false).1 {
            Expect::Entries { .. } => t.numel() as u32,
            Expect::Channels { dim, .. } => case.shape[dim.rem_euclid(case.shape.len() as i64) as usize] as u32,
        };
        let spec = if fraction { spec } else { spec.with_amount(AmountSeed::Count(available)) };
        let (method, _) = spec.build(&case.shape, &values(&ones), false);
        let mask = method.compute_mask(&t, &ones).unwrap();
        prop_assert!(values(&mask).iter().all(|&v| v == 0.0));
    }
}
