//! Serde round trips of every method, `Amount`, `Norm` and `PruningType` through JSON, and the
//! inputs that must not deserialize (invalid amounts, `"nuc"`, inconsistent custom masks).

mod common;

use std::fmt::Debug;

use common::tensors::{td, tf, ti, values};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{from_str, json, to_string, to_value, Value};
use tch::Kind;
use tch_prune::{
    Amount, CustomFromMask, Identity, L1Unstructured, LnStructured, Norm, PruningMethod,
    PruningType, RandomStructured, RandomUnstructured,
};

/// Serializes `x`, checks the JSON is `expected`, deserializes it back and checks equality.
#[track_caller]
fn round_trip<T>(x: &T, expected: Value)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let text = to_string(x).unwrap();
    assert_eq!(from_str::<Value>(&text).unwrap(), expected, "{x:?} serialized as {text}");
    let back: T = from_str(&text).unwrap();
    assert_eq!(&back, x, "{text}");
}

#[test]
fn amount_is_a_bare_number() {
    // The text itself tells a count from a fraction: 3 vs 0.3 vs 1.0 vs 1.
    assert_eq!(to_string(&Amount::Count(3)).unwrap(), "3");
    assert_eq!(to_string(&Amount::Fraction(0.3)).unwrap(), "0.3");
    assert_eq!(to_string(&Amount::Fraction(1.0)).unwrap(), "1.0");
    assert_eq!(to_string(&Amount::Count(1)).unwrap(), "1");
    assert_eq!(to_string(&Amount::Fraction(0.0)).unwrap(), "0.0");
    assert_eq!(to_string(&Amount::Count(0)).unwrap(), "0");

    assert_eq!(from_str::<Amount>("3").unwrap(), Amount::Count(3));
    assert_eq!(from_str::<Amount>("0.3").unwrap(), Amount::Fraction(0.3));
    assert_eq!(from_str::<Amount>("1.0").unwrap(), Amount::Fraction(1.0));
    assert_eq!(from_str::<Amount>("1").unwrap(), Amount::Count(1));
    assert_eq!(from_str::<Amount>("0").unwrap(), Amount::Count(0));
    assert_eq!(from_str::<Amount>("0.0").unwrap(), Amount::Fraction(0.0));
    assert_eq!(from_str::<Amount>("5e-1").unwrap(), Amount::Fraction(0.5));

    for amount in [
        Amount::Count(0),
        Amount::Count(1),
        Amount::Count(1500),
        Amount::Fraction(0.0),
        Amount::Fraction(0.34),
        Amount::Fraction(1.0),
        Amount::Fraction(0.1 + 0.2),
        Amount::Fraction(f64::from(0.3f32)),
    ] {
        let back: Amount = from_str(&to_string(&amount).unwrap()).unwrap();
        assert_eq!(back, amount);
        // Bit-exact for fractions.
        if let (Amount::Fraction(a), Amount::Fraction(b)) = (back, amount) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    // Not numbers.
    assert!(from_str::<Amount>("\"0.3\"").is_err());
    assert!(from_str::<Amount>("null").is_err());
    assert!(from_str::<Amount>("true").is_err());
}

#[test]
fn a_bare_amount_is_data_and_methods_validate_it() {
    // `Amount` itself is plain data (validated by the methods that take it) ...
    assert_eq!(from_str::<Amount>("1.5").unwrap(), Amount::Fraction(1.5));
    assert_eq!(from_str::<Amount>("-2").unwrap(), Amount::Count(-2));
    // ... while a method never deserializes with an invalid amount.
    for text in [
        r#"{"amount": 1.5}"#,
        r#"{"amount": -0.5}"#,
        r#"{"amount": -1}"#,
        r#"{"amount": 1e300}"#,
        r#"{"amount": "0.5"}"#,
        r#"{}"#,
    ] {
        assert!(from_str::<L1Unstructured>(text).is_err(), "L1Unstructured from {text}");
        assert!(from_str::<RandomUnstructured>(text).is_err(), "RandomUnstructured from {text}");
    }
    for amount in ["1.5", "-1", "2.0"] {
        let text = format!(r#"{{"amount": {amount}, "dim": 0}}"#);
        assert!(from_str::<RandomStructured>(&text).is_err(), "{text}");
        let text = format!(r#"{{"amount": {amount}, "n": 2, "dim": 0}}"#);
        assert!(from_str::<LnStructured>(&text).is_err(), "{text}");
    }
    // The error message says what is wrong.
    let message = from_str::<L1Unstructured>(r#"{"amount": 1.5}"#).unwrap_err().to_string();
    assert!(message.contains("amount") && message.contains("1.5"), "{message}");
}

#[test]
fn norm_round_trips() {
    round_trip(&Norm::P(2.0), json!(2.0));
    round_trip(&Norm::P(1.0), json!(1.0));
    round_trip(&Norm::P(0.5), json!(0.5));
    round_trip(&Norm::P(0.0), json!(0.0));
    round_trip(&Norm::P(-1.0), json!(-1.0));
    round_trip(&Norm::Inf, json!("inf"));
    round_trip(&Norm::NegInf, json!("-inf"));
    round_trip(&Norm::Fro, json!("fro"));
    // An integer is an order too.
    assert_eq!(from_str::<Norm>("3").unwrap(), Norm::P(3.0));
    // An infinite `P` (what `Norm::validate` folds into `Inf` / `NegInf`) is written by name,
    // not as JSON `null`, and reads back as the named norm of the same order.
    for (p, name, named) in
        [(f64::INFINITY, "inf", Norm::Inf), (f64::NEG_INFINITY, "-inf", Norm::NegInf)]
    {
        assert_eq!(to_value(Norm::P(p)).unwrap(), json!(name));
        let back: Norm = from_str(&to_string(&Norm::P(p)).unwrap()).unwrap();
        assert_eq!(back, named);
        assert_eq!(back.order(), p);
    }
}

#[test]
fn norm_nuc_and_unknown_names_fail() {
    for text in [r#""nuc""#, r#""NUC""#, r#""l2""#, r#""""#, r#""nan""#, "null", "[2]"] {
        assert!(from_str::<Norm>(text).is_err(), "{text}");
    }
    let message = from_str::<Norm>(r#""nuc""#).unwrap_err().to_string();
    assert!(message.contains("nuc"), "{message}");
    assert!(from_str::<LnStructured>(r#"{"amount": 0.5, "n": "nuc", "dim": 0}"#).is_err());
}

#[test]
fn pruning_type_round_trips() {
    round_trip(&PruningType::Unstructured, json!("unstructured"));
    round_trip(&PruningType::Structured { dim: -1 }, json!({"structured": {"dim": -1}}));
    round_trip(&PruningType::Structured { dim: 2 }, json!({"structured": {"dim": 2}}));
    round_trip(&PruningType::Global, json!("global"));
    assert!(from_str::<PruningType>(r#""structured""#).is_err());
    assert!(from_str::<PruningType>(r#""nonsense""#).is_err());
}

#[test]
fn methods_round_trip() {
    round_trip(&Identity, json!(null));

    round_trip(&L1Unstructured::new(3).unwrap(), json!({"amount": 3}));
    round_trip(&L1Unstructured::new(0.3).unwrap(), json!({"amount": 0.3}));
    round_trip(&L1Unstructured::new(1.0).unwrap(), json!({"amount": 1.0}));

    round_trip(&RandomUnstructured::new(0).unwrap(), json!({"amount": 0}));
    round_trip(&RandomUnstructured::new(0.25).unwrap(), json!({"amount": 0.25}));

    round_trip(&RandomStructured::new(2, -1).unwrap(), json!({"amount": 2, "dim": -1}));
    round_trip(&RandomStructured::new(0.6, 2).unwrap(), json!({"amount": 0.6, "dim": 2}));

    round_trip(&LnStructured::new(1, 2, 0).unwrap(), json!({"amount": 1, "n": 2.0, "dim": 0}));
    round_trip(
        &LnStructured::new(0.5, f64::INFINITY, -1).unwrap(),
        json!({"amount": 0.5, "n": "inf", "dim": -1}),
    );
    round_trip(
        &LnStructured::new(0.1, Norm::NegInf, 1).unwrap(),
        json!({"amount": 0.1, "n": "-inf", "dim": 1}),
    );
    round_trip(
        &LnStructured::new(1.0, Norm::Fro, 3).unwrap(),
        json!({"amount": 1.0, "n": "fro", "dim": 3}),
    );

    // The count/fraction distinction survives: 1 entry vs all entries.
    let count: L1Unstructured = from_str(r#"{"amount": 1}"#).unwrap();
    let all: L1Unstructured = from_str(r#"{"amount": 1.0}"#).unwrap();
    assert_eq!(count.amount(), Amount::Count(1));
    assert_eq!(all.amount(), Amount::Fraction(1.0));
    let t = tf(&[1., 2., 3., 4.], &[4]);
    assert_eq!(values(&count.compute_mask(&t, &t.ones_like()).unwrap()), [0., 1., 1., 1.]);
    assert_eq!(values(&all.compute_mask(&t, &t.ones_like()).unwrap()), [0., 0., 0., 0.]);
}

/// Round-trips a custom mask and checks the JSON record, the shape and the values.
#[track_caller]
fn custom_round_trip(mask: tch::Tensor, shape: &[i64], vals: &[f64]) {
    let method = CustomFromMask::new(mask);
    let json = to_value(&method).unwrap();
    assert_eq!(json, json!({"shape": shape, "values": vals}));
    let back: CustomFromMask = serde_json::from_value(json).unwrap();
    assert_eq!(back.mask().size(), shape);
    assert_eq!(values(back.mask()), vals);
    assert_eq!(back.pruning_type(), PruningType::Global);
    // It prunes exactly as the original does.
    let default_mask = back.mask().ones_like().to_kind(Kind::Float);
    let original = method.compute_mask(&default_mask, &default_mask).unwrap();
    let restored = back.compute_mask(&default_mask, &default_mask).unwrap();
    assert_eq!(restored.kind(), Kind::Float);
    assert_eq!(values(&restored), values(&original));
}

#[test]
fn custom_from_mask_round_trips_values_and_shape() {
    custom_round_trip(
        tf(&[0., 1., 1., 0., 0., 0., 1., 1.], &[2, 4]),
        &[2, 4],
        &[0., 1., 1., 0., 0., 0., 1., 1.],
    );
    // Integer and non-binary masks, 3-D and 1-D, keep their values.
    custom_round_trip(ti(&[0, 1, 1, 0, 1, 0], &[1, 2, 3]), &[1, 2, 3], &[0., 1., 1., 0., 1., 0.]);
    custom_round_trip(td(&[0.5, 0.25, 2.0], &[3]), &[3], &[0.5, 0.25, 2.0]);
    let bools = ti(&[1, 0, 0, 1], &[2, 2]).to_kind(Kind::Bool);
    custom_round_trip(bools, &[2, 2], &[1., 0., 0., 1.]);
    // An empty mask and a 0-d mask.
    custom_round_trip(tf(&[], &[0, 3]), &[0, 3], &[]);
    custom_round_trip(tf(&[1.], &[1]).squeeze(), &[], &[1.]);
}

#[test]
fn custom_from_mask_rejects_inconsistent_records() {
    for text in [
        r#"{"shape": [2, 2], "values": [1.0, 0.0, 1.0]}"#,
        r#"{"shape": [3], "values": [1.0, 0.0, 1.0, 1.0]}"#,
        r#"{"shape": [-1, 2], "values": [1.0, 0.0]}"#,
        r#"{"shape": [-2, -1], "values": [1.0, 0.0]}"#,
        // The product of the sides overflows i64 (and wraps to 0 without a check).
        r#"{"shape": [4294967296, 4294967296], "values": []}"#,
        r#"{"shape": [9223372036854775807, 2], "values": [1.0, 0.0]}"#,
        r#"{"shape": [2]}"#,
        r#"{"values": [1.0, 0.0]}"#,
        r#"[1.0, 0.0]"#,
    ] {
        assert!(from_str::<CustomFromMask>(text).is_err(), "{text}");
    }
}
