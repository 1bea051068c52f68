//! The sparsity schedules: which steps prune and to which target, checked over whole ranges of
//! steps by one helper (`assert_yields`), against TF-MOT's rules
//! (`tensorflow_model_optimization/python/core/sparsity/keras/pruning_schedule.py`) and Zhu &
//! Gupta's formula; validation (typed errors); serde; object safety.

use serde_json::{from_value, json, to_value};
use tch_prune::{ConstantSparsity, Cubic, FromFn, PolynomialDecay, PruneError, PruningSchedule};

/// Checks that over `steps` the schedule prunes at exactly the steps of `expected`, with those
/// targets (to `1e-12`), and at no other step.
#[track_caller]
fn assert_yields(
    schedule: &dyn PruningSchedule,
    steps: std::ops::Range<i64>,
    expected: &[(i64, f64)],
) {
    let got: Vec<(i64, f64)> =
        steps.filter_map(|t| schedule.prune_at(t).map(|target| (t, target))).collect();
    let got_steps: Vec<i64> = got.iter().map(|&(t, _)| t).collect();
    let want_steps: Vec<i64> = expected.iter().map(|&(t, _)| t).collect();
    assert_eq!(got_steps, want_steps, "pruning steps of {schedule:?}");
    for (&(t, target), &(_, want)) in got.iter().zip(expected) {
        assert!((target - want).abs() < 1e-12, "{schedule:?} at step {t}: {target} != {want}");
    }
}

/// TF-MOT's PolynomialDecay formula, written out independently.
fn tf_polynomial(initial: f64, final_: f64, begin: i64, end: i64, power: f64, step: i64) -> f64 {
    let p = ((step - begin) as f64 / (end - begin) as f64).clamp(0.0, 1.0);
    final_ + (initial - final_) * (1.0 - p).powf(power)
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, PruneError>, parameter: &str) {
    match result {
        Err(PruneError::InvalidSchedule { parameter: p, .. }) => assert_eq!(p, parameter),
        other => panic!("expected InvalidSchedule {{ parameter: {parameter:?} }}, got {other:?}"),
    }
}

// ---- ConstantSparsity ----

#[test]
fn constant_sparsity_prunes_every_frequency_steps_within_the_range() {
    let s = ConstantSparsity::new(0.5, 10, Some(40), 10).unwrap();
    assert_yields(&s, 0..100, &[(10, 0.5), (20, 0.5), (30, 0.5), (40, 0.5)]);
}

#[test]
fn constant_sparsity_end_step_is_inclusive_only_on_the_grid() {
    // 35 is the end but not on the grid from 10 every 10: the last prune is at 30.
    let s = ConstantSparsity::new(0.3, 10, Some(35), 10).unwrap();
    assert_yields(&s, 0..100, &[(10, 0.3), (20, 0.3), (30, 0.3)]);
}

#[test]
fn constant_sparsity_end_step_minus_one_never_ends() {
    let s = ConstantSparsity::new(0.25, 5, None, 100).unwrap();
    assert_yields(&s, 0..400, &[(5, 0.25), (105, 0.25), (205, 0.25), (305, 0.25)]);
    assert_eq!(s.prune_at(5 + 100 * 1_000_000), Some(0.25));
    assert_eq!(s.prune_at(i64::MAX), None); // (MAX - 5) % 100 == 2
    assert_eq!(s.prune_at(i64::MIN), None);
}

#[test]
fn constant_sparsity_frequency_one_prunes_every_step() {
    let s = ConstantSparsity::new(0.0, 3, Some(6), 1).unwrap();
    assert_yields(&s, -5..20, &[(3, 0.0), (4, 0.0), (5, 0.0), (6, 0.0)]);
}

#[test]
fn constant_sparsity_begin_equal_to_end_prunes_once() {
    let s = ConstantSparsity::new(0.9, 7, Some(7), 5).unwrap();
    assert_yields(&s, 0..50, &[(7, 0.9)]);
}

#[test]
fn constant_sparsity_validation() {
    assert_invalid(ConstantSparsity::new(0.5, -1, None, 1), "begin_step");
    assert_invalid(ConstantSparsity::new(0.5, 0, Some(-2), 1), "end_step");
    assert_invalid(ConstantSparsity::new(0.5, 10, Some(9), 1), "end_step");
    assert_invalid(ConstantSparsity::new(0.5, 0, None, 0), "frequency");
    assert_invalid(ConstantSparsity::new(0.5, 0, None, -3), "frequency");
    // TF-MOT: `0 <= sparsity < 1`.
    assert_invalid(ConstantSparsity::new(1.0, 0, None, 1), "target_sparsity");
    assert_invalid(ConstantSparsity::new(-0.1, 0, None, 1), "target_sparsity");
    assert_invalid(ConstantSparsity::new(f64::NAN, 0, None, 1), "target_sparsity");
    assert!(ConstantSparsity::new(0.0, 0, Some(0), 1).is_ok());
    assert!(ConstantSparsity::new(0.999, 0, None, 1).is_ok());

    let err = ConstantSparsity::new(0.5, 10, Some(9), 1).unwrap_err();
    assert!(matches!(
        &err,
        PruneError::InvalidSchedule { parameter: "end_step", value, expected }
            if *value == 9.0 && expected.contains("begin_step (10)")
    ));
    assert_eq!(err.to_string(), "end_step: 9 is out of range; expected -1 or >= begin_step (10)");
}

// ---- PolynomialDecay ----

#[test]
fn polynomial_decay_follows_tf_mot_formula() {
    let s = PolynomialDecay::new(0.1, 0.9, 100, 1100).unwrap();
    let expected: Vec<(i64, f64)> = (100..=1100)
        .step_by(100)
        .map(|t| (t, tf_polynomial(0.1, 0.9, 100, 1100, 3.0, t)))
        .collect();
    assert_eq!(expected.len(), 11);
    assert_yields(&s, 0..2000, &expected);
    // Exact at both ends (the formula as written gives `(0.1 - 0.9) * 1 + 0.9`, which is
    // 0.09999999999999998 in f64).
    assert_eq!(s.prune_at(100), Some(0.1));
    assert_eq!(s.prune_at(1100), Some(0.9));
    assert_eq!(s.with_power(0.0).unwrap().prune_at(1100), Some(0.1));
    // Defaults: power 3, frequency 100.
    assert_eq!((s.power(), s.frequency()), (3.0, 100));
}

#[test]
fn polynomial_decay_power_one_is_linear() {
    let s = PolynomialDecay::new(0.0, 0.5, 0, 10).unwrap().with_power(1.0).unwrap();
    let s = s.with_frequency(2).unwrap();
    assert_yields(&s, 0..30, &[(0, 0.0), (2, 0.1), (4, 0.2), (6, 0.3), (8, 0.4), (10, 0.5)]);
}

#[test]
fn polynomial_decay_frequency_one_and_the_curve_outside_the_range() {
    let s = PolynomialDecay::new(0.2, 0.6, 5, 9).unwrap().with_frequency(1).unwrap();
    let expected: Vec<(i64, f64)> =
        (5..=9).map(|t| (t, tf_polynomial(0.2, 0.6, 5, 9, 3.0, t))).collect();
    assert_yields(&s, -10..100, &expected);
    // Before begin_step the curve is the initial sparsity (p clamped to 0), after end_step the
    // final one (p clamped to 1); neither step prunes.
    assert_eq!(s.sparsity(0), 0.2);
    assert_eq!(s.sparsity(-1_000_000), 0.2);
    assert_eq!(s.sparsity(50), 0.6);
    assert_eq!(s.prune_at(4), None);
    assert_eq!(s.prune_at(10), None);
}

#[test]
fn polynomial_decay_decreasing_sparsity_is_allowed_as_in_tf_mot() {
    let s = PolynomialDecay::new(0.8, 0.2, 0, 200).unwrap();
    assert_yields(
        &s,
        0..1000,
        &[(0, 0.8), (100, tf_polynomial(0.8, 0.2, 0, 200, 3.0, 100)), (200, 0.2)],
    );
}

#[test]
fn polynomial_decay_with_begin_equal_to_end_jumps_to_the_final_sparsity() {
    // TF-MOT accepts end_step == begin_step and computes 0 / 0 there; we define it as p = 1.
    let s = PolynomialDecay::new(0.0, 0.7, 30, 30).unwrap();
    assert_yields(&s, 0..1000, &[(30, 0.7)]);
    assert_eq!(s.sparsity(29), 0.0);
}

#[test]
fn polynomial_decay_validation() {
    // TF-MOT: PolynomialDecay needs an end (`allow_negative_1=False`).
    assert_invalid(PolynomialDecay::new(0.0, 0.5, 0, -1), "end_step");
    assert_invalid(PolynomialDecay::new(0.0, 0.5, 0, -7), "end_step");
    assert_invalid(PolynomialDecay::new(0.0, 0.5, 10, 5), "end_step");
    assert_invalid(PolynomialDecay::new(0.0, 0.5, -1, 5), "begin_step");
    assert_invalid(PolynomialDecay::new(1.0, 0.5, 0, 5), "initial_sparsity");
    assert_invalid(PolynomialDecay::new(0.0, 1.0, 0, 5), "final_sparsity");
    assert_invalid(PolynomialDecay::new(0.0, f64::NAN, 0, 5), "final_sparsity");
    let s = PolynomialDecay::new(0.0, 0.5, 0, 5).unwrap();
    assert_invalid(s.with_frequency(0), "frequency");
    assert_invalid(s.with_power(-0.5), "power");
    assert_invalid(s.with_power(f64::NAN), "power");
    assert_invalid(s.with_power(f64::INFINITY), "power");
    assert!(s.with_power(0.0).is_ok());
    assert!(s.with_power(2.5).is_ok());
}

// ---- Cubic ----

#[test]
fn cubic_prunes_at_t0_plus_k_delta_t_along_zhu_gupta() {
    let (si, sf, t0, n, dt) = (0.05, 0.9, 1000, 4, 250);
    let s = Cubic::new(si, sf, t0, n, dt).unwrap();
    let expected: Vec<(i64, f64)> = (0..=n)
        .map(|k| {
            let t = t0 + k * dt;
            let frac = (t - t0) as f64 / (n * dt) as f64;
            (t, sf + (si - sf) * (1.0 - frac).powi(3))
        })
        .collect();
    assert_yields(&s, 0..5000, &expected);
    assert_eq!(s.end_step(), 2000);
}

#[test]
fn cubic_is_polynomial_decay_with_power_three() {
    let cubic = Cubic::new(0.0, 0.8, 20, 6, 10).unwrap();
    let poly = PolynomialDecay::new(0.0, 0.8, 20, 80).unwrap().with_frequency(10).unwrap();
    for t in -10..200 {
        assert_eq!(cubic.prune_at(t), poly.prune_at(t), "step {t}");
        assert_eq!(cubic.sparsity(t), poly.sparsity(t), "step {t}");
    }
}

#[test]
fn cubic_allows_a_final_sparsity_of_one_and_a_single_interval() {
    let s = Cubic::new(0.0, 1.0, 0, 1, 1).unwrap();
    assert_yields(&s, -5..10, &[(0, 0.0), (1, 1.0)]);
}

#[test]
fn cubic_validation() {
    assert_invalid(Cubic::new(0.0, 0.9, -1, 3, 10), "begin_step");
    assert_invalid(Cubic::new(0.0, 0.9, 0, 0, 10), "pruning_steps");
    assert_invalid(Cubic::new(0.0, 0.9, 0, 3, 0), "frequency");
    assert_invalid(Cubic::new(0.0, 0.9, 0, i64::MAX, 2), "pruning_steps");
    assert_invalid(Cubic::new(0.0, 0.9, i64::MAX, 1, 1), "pruning_steps");
    assert_invalid(Cubic::new(-0.1, 0.9, 0, 3, 10), "initial_sparsity");
    assert_invalid(Cubic::new(0.0, 1.1, 0, 3, 10), "final_sparsity");
}

// ---- FromFn and object safety ----

#[test]
fn from_fn_yields_the_closure() {
    let s = FromFn::new(|t| (t % 7 == 0).then(|| t as f64 / 100.0));
    assert_yields(&s, 1..30, &[(7, 0.07), (14, 0.14), (21, 0.21), (28, 0.28)]);
    assert_eq!(format!("{s:?}"), "FromFn { .. }");
}

#[test]
fn schedules_are_object_safe_and_send() {
    fn assert_send<T: Send>(_: &T) {}
    let schedules: Vec<Box<dyn PruningSchedule>> = vec![
        Box::new(ConstantSparsity::new(0.5, 0, None, 10).unwrap()),
        Box::new(PolynomialDecay::new(0.0, 0.5, 0, 20).unwrap().with_frequency(10).unwrap()),
        Box::new(Cubic::new(0.0, 0.5, 0, 2, 10).unwrap()),
        Box::new(FromFn::new(|t| (t % 10 == 0).then_some(0.5))),
    ];
    assert_send(&schedules);
    for s in &schedules {
        assert_eq!(s.prune_at(20), Some(0.5), "{s:?}");
        assert_eq!(s.prune_at(15), None, "{s:?}");
    }
    // A boxed schedule is a schedule too.
    let boxed: Box<dyn PruningSchedule> = Box::new(ConstantSparsity::new(0.1, 0, None, 1).unwrap());
    assert_yields(&Box::new(boxed), 0..3, &[(0, 0.1), (1, 0.1), (2, 0.1)]);
}

// ---- serde ----

#[test]
fn serde_uses_tf_mot_config_keys_and_defaults() {
    let s = ConstantSparsity::new(0.5, 10, None, 100).unwrap();
    let value = to_value(s).unwrap();
    assert_eq!(
        value,
        json!({"target_sparsity": 0.5, "begin_step": 10, "end_step": -1, "frequency": 100})
    );
    assert_eq!(from_value::<ConstantSparsity>(value).unwrap(), s);
    // TF-MOT's defaults: end_step = -1, frequency = 100.
    let short: ConstantSparsity =
        from_value(json!({"target_sparsity": 0.5, "begin_step": 10})).unwrap();
    assert_eq!(short, s);

    let p = PolynomialDecay::new(0.0, 0.8, 0, 1000).unwrap().with_power(2.0).unwrap();
    let value = to_value(p).unwrap();
    assert_eq!(
        value,
        json!({"initial_sparsity": 0.0, "final_sparsity": 0.8, "power": 2.0,
               "begin_step": 0, "end_step": 1000, "frequency": 100})
    );
    assert_eq!(from_value::<PolynomialDecay>(value).unwrap(), p);
    // TF-MOT writes power as an integer; defaults: power = 3, frequency = 100.
    let tf: PolynomialDecay = from_value(json!({"initial_sparsity": 0.0, "final_sparsity": 0.8,
        "power": 2, "begin_step": 0, "end_step": 1000, "frequency": 100}))
    .unwrap();
    assert_eq!(tf, p);
    let short: PolynomialDecay = from_value(
        json!({"initial_sparsity": 0.0, "final_sparsity": 0.8, "begin_step": 0, "end_step": 1000}),
    )
    .unwrap();
    assert_eq!(short, PolynomialDecay::new(0.0, 0.8, 0, 1000).unwrap());

    let c = Cubic::new(0.0, 0.9, 5, 10, 20).unwrap();
    let value = to_value(c).unwrap();
    assert_eq!(
        value,
        json!({"initial_sparsity": 0.0, "final_sparsity": 0.9, "begin_step": 5,
               "pruning_steps": 10, "frequency": 20})
    );
    assert_eq!(from_value::<Cubic>(value).unwrap(), c);
}

#[test]
fn serde_validates_on_deserialize() {
    for bad in [
        json!({"target_sparsity": 1.0, "begin_step": 0}),
        json!({"target_sparsity": 0.5, "begin_step": -1}),
        json!({"target_sparsity": 0.5, "begin_step": 5, "end_step": 4}),
        json!({"target_sparsity": 0.5, "begin_step": 0, "frequency": 0}),
        json!({"target_sparsity": 0.5, "begin_step": 0, "typo": 1}),
    ] {
        assert!(from_value::<ConstantSparsity>(bad.clone()).is_err(), "{bad}");
    }
    for bad in [
        json!({"initial_sparsity": 0.0, "final_sparsity": 0.5, "begin_step": 0, "end_step": -1}),
        json!({"initial_sparsity": 0.0, "final_sparsity": 1.5, "begin_step": 0, "end_step": 9}),
        json!({"initial_sparsity": 0.0, "final_sparsity": 0.5, "begin_step": 0, "end_step": 9,
               "power": -1.0}),
        json!({"initial_sparsity": 0.0, "final_sparsity": 0.5, "begin_step": 0, "end_step": 9,
               "frequency": 0}),
    ] {
        assert!(from_value::<PolynomialDecay>(bad.clone()).is_err(), "{bad}");
    }
    let bad = json!({"initial_sparsity": 0.0, "final_sparsity": 0.5, "begin_step": 0,
                     "pruning_steps": 0, "frequency": 1});
    let err = from_value::<Cubic>(bad).unwrap_err();
    assert!(err.to_string().contains("pruning_steps"), "{err}");
}
