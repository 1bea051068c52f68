//! Loading the PyTorch parity fixtures written by `scripts/make_fixtures.py`
//! (`tests/fixtures/masks.json` and `tests/fixtures/masks.safetensors`; the script's docstring
//! describes the format; tensors a case lists under `"cast"` are converted to their kind on
//! loading), building the crate's methods from their JSON description, and comparing tensors
//! bit for bit.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use serde_json::Value;
use tch::{Kind, Tensor};
use tch_prune::{
    Amount, CustomFromMask, Identity, L1Unstructured, LnStructured, Norm, PruningMethod,
    RandomStructured, RandomUnstructured,
};

/// The key prefix of the RNG probes (see [`MaskFixtures::rng_stream_matches`]).
pub const RNG_PROBE: &str = "_rng_probe";

/// The directory holding the fixture files.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

/// One case of the manifest.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case id; tensor keys start with it.
    pub id: String,
    /// The methods, in the order they are applied (one for a single-method case).
    pub methods: Vec<Value>,
    /// Whether the case is a pruning history (steps keyed `{id}.step{i}.*`).
    pub container: bool,
    /// Whether step 0 of a container case already goes through `PruningContainer`.
    pub start_in_container: bool,
    /// The `PruneError` variant the last step must return, where PyTorch raises (no mask is
    /// stored for that step).
    pub error: Option<String>,
}

/// The manifest and every tensor of the fixtures.
pub struct MaskFixtures {
    /// The cases, in file order.
    pub cases: Vec<Case>,
    tensors: HashMap<String, Tensor>,
}

impl MaskFixtures {
    /// Loads `masks.json` and `masks.safetensors`; panics with the path on any problem.
    pub fn load() -> Self {
        let dir = fixtures_dir();
        let json_path = dir.join("masks.json");
        let text = std::fs::read_to_string(&json_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", json_path.display()));
        let manifest: Vec<Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a JSON list: {e}", json_path.display()));
        let cases = manifest.iter().map(parse_case).collect();

        let st_path = dir.join("masks.safetensors");
        let mut tensors: HashMap<String, Tensor> = Tensor::read_safetensors(&st_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", st_path.display()))
            .into_iter()
            .collect();
        // Tensors stored in a smaller integer kind (a case's "cast": {suffix: dtype}).
        for case in &manifest {
            let Some(cast) = case.get("cast").and_then(Value::as_object) else { continue };
            for (suffix, dtype) in cast {
                let key = format!("{}.{suffix}", case["id"].as_str().unwrap_or_default());
                let kind = dtype.as_str().and_then(kind_named).unwrap_or_else(|| {
                    panic!("{}: {key}: unknown cast dtype {dtype}", json_path.display())
                });
                let stored = tensors.get_mut(&key).unwrap_or_else(|| panic!("no tensor {key:?}"));
                *stored = stored.to_kind(kind);
            }
        }
        Self { cases, tensors }
    }

    /// The tensor stored under `key`, or an error naming the key.
    pub fn tensor(&self, key: &str) -> Result<&Tensor, String> {
        self.tensors.get(key).ok_or_else(|| format!("no tensor {key:?} in masks.safetensors"))
    }

    /// Whether the linked libtorch draws the same CPU random stream for `kind` as the torch
    /// that wrote the fixtures: `torch.rand(8, dtype)` right after `manual_seed(0)`, compared
    /// with the stored probe `_rng_probe.{f16,bf16,f32,f64}`. Uses the global generator.
    pub fn rng_stream_matches(&self, kind: Kind) -> Result<bool, String> {
        let name = match kind {
            Kind::Half => "f16",
            Kind::BFloat16 => "bf16",
            Kind::Float => "f32",
            Kind::Double => "f64",
            other => return Err(format!("no RNG probe for {other:?}")),
        };
        let expected = self.tensor(&format!("{RNG_PROBE}.{name}"))?;
        tch::manual_seed(0);
        let actual = Tensor::rand([expected.numel() as i64], (kind, tch::Device::Cpu));
        Ok(bit_identical(expected, &actual).is_ok())
    }

    /// Every tensor key in the file.
    pub fn keys(&self) -> BTreeSet<String> {
        self.tensors.keys().cloned().collect()
    }
}

/// The kind of a dtype name of the script's `DTYPES` (`"f32"`, `"i64"`, ...).
fn kind_named(name: &str) -> Option<Kind> {
    Some(match name {
        "f32" => Kind::Float,
        "f64" => Kind::Double,
        "f16" => Kind::Half,
        "bf16" => Kind::BFloat16,
        "i64" => Kind::Int64,
        "i32" => Kind::Int,
        "bool" => Kind::Bool,
        _ => return None,
    })
}

fn parse_case(value: &Value) -> Case {
    let id = value["id"].as_str().unwrap_or_else(|| panic!("case without an id: {value}"));
    let methods = value["methods"]
        .as_array()
        .unwrap_or_else(|| panic!("case {id}: no \"methods\" list"))
        .clone();
    assert!(!methods.is_empty(), "case {id}: empty \"methods\"");
    let container = value["container"]
        .as_bool()
        .unwrap_or_else(|| panic!("case {id}: \"container\" is not a bool"));
    let start_in_container = value.get("start_in_container").and_then(Value::as_bool) == Some(true);
    assert!(container || methods.len() == 1, "case {id}: several methods but no container");
    let error = value.get("error").and_then(Value::as_str).map(String::from);
    Case { id: id.to_string(), methods, container, start_in_container, error }
}

/// A JSON integer is a count, a JSON float (written with a decimal point) a fraction, exactly
/// as Python's `int` and `float` amounts.
pub fn amount(value: &Value) -> Result<Amount, String> {
    if let Some(count) = value.as_i64() {
        Ok(Amount::Count(count))
    } else if value.is_f64() {
        Ok(Amount::Fraction(value.as_f64().expect("is_f64")))
    } else {
        Err(format!("amount {value} is neither an integer nor a float"))
    }
}

/// A number is `Norm::from(p)`; `"inf"`, `"-inf"`, `"fro"` are the named norms.
pub fn norm(value: &Value) -> Result<Norm, String> {
    match value {
        Value::String(name) => match name.as_str() {
            "inf" => Ok(Norm::Inf),
            "-inf" => Ok(Norm::NegInf),
            "fro" => Ok(Norm::Fro),
            other => Err(format!("unknown norm {other:?}")),
        },
        Value::Number(number) => {
            number.as_f64().map(Norm::from).ok_or_else(|| format!("bad norm {number}"))
        }
        other => Err(format!("bad norm {other}")),
    }
}

fn field<'a>(spec: &'a Value, name: &str) -> Result<&'a Value, String> {
    spec.get(name).ok_or_else(|| format!("method {spec} has no {name:?}"))
}

fn int_field(spec: &Value, name: &str) -> Result<i64, String> {
    field(spec, name)?.as_i64().ok_or_else(|| format!("method {spec}: {name:?} is not an integer"))
}

/// Builds the crate's method for a JSON method description; `custom` is the mask of a
/// `custom_from_mask` method.
pub fn build_method(
    spec: &Value,
    custom: Option<&Tensor>,
) -> Result<Box<dyn PruningMethod>, String> {
    let name = field(spec, "method")?.as_str().ok_or_else(|| format!("bad method {spec}"))?;
    let err = |e: tch_prune::PruneError| format!("{name}: construction failed: {e}");
    Ok(match name {
        "identity" => Box::new(Identity),
        "l1_unstructured" => {
            Box::new(L1Unstructured::new(amount(field(spec, "amount")?)?).map_err(err)?)
        }
        "random_unstructured" => {
            Box::new(RandomUnstructured::new(amount(field(spec, "amount")?)?).map_err(err)?)
        }
        "random_structured" => Box::new(
            RandomStructured::new(amount(field(spec, "amount")?)?, int_field(spec, "dim")?)
                .map_err(err)?,
        ),
        "ln_structured" => Box::new(
            LnStructured::new(
                amount(field(spec, "amount")?)?,
                norm(field(spec, "n")?)?,
                int_field(spec, "dim")?,
            )
            .map_err(err)?,
        ),
        "custom_from_mask" => {
            let mask =
                custom.ok_or_else(|| "custom_from_mask without a stored mask".to_string())?;
            Box::new(CustomFromMask::new(mask.shallow_clone()))
        }
        other => return Err(format!("unknown method {other:?}")),
    })
}

/// Seeds libtorch's generators like the script's `torch.manual_seed(seed)`, when the method
/// has a seed.
pub fn seed_for(spec: &Value) {
    if let Some(seed) = spec.get("seed").and_then(Value::as_i64) {
        tch::manual_seed(seed);
    }
}

/// `Ok` when `actual` has the kind, the shape and the exact bits of `expected` (so `-0.0` and
/// `0.0` differ, and a NaN equals the same NaN); otherwise what differs, with both values.
pub fn bit_identical(expected: &Tensor, actual: &Tensor) -> Result<(), String> {
    if expected.kind() != actual.kind() {
        return Err(format!("kind {:?}, expected {:?}", actual.kind(), expected.kind()));
    }
    if expected.size() != actual.size() {
        return Err(format!("shape {:?}, expected {:?}", actual.size(), expected.size()));
    }
    let as_bits = |t: &Tensor| {
        let t = t.to_device(tch::Device::Cpu).contiguous();
        match t.kind() {
            Kind::Half | Kind::BFloat16 => t.view_dtype(Kind::Int16),
            Kind::Float => t.view_dtype(Kind::Int),
            Kind::Double => t.view_dtype(Kind::Int64),
            _ => t,
        }
    };
    if !as_bits(expected).equal(&as_bits(actual)) {
        return Err(format!(
            "values differ:\n      expected {:?}\n      actual   {:?}",
            flat_values(expected),
            flat_values(actual)
        ));
    }
    Ok(())
}

/// The values of `t`, flattened and converted to `f64`, for messages.
pub fn flat_values(t: &Tensor) -> Vec<f64> {
    let flat = t.to_device(tch::Device::Cpu).to_kind(Kind::Double).contiguous().reshape([-1]);
    Vec::<f64>::try_from(&flat).unwrap_or_default()
}
