//! Bit-for-bit parity of every mask with the real `torch.nn.utils.prune`.
//!
//! The fixtures (`tests/fixtures/masks.{json,safetensors}`) are written by
//! `scripts/env.sh python scripts/make_fixtures.py`, which runs PyTorch's own classes; the
//! script's docstring describes the cases and the file format. For every case this test
//! rebuilds the methods with the crate's API, computes the masks the way the script did
//! (seeding with `tch::manual_seed` right before a random method, as the script calls
//! `torch.manual_seed`), and requires the same kind, the same shape and the same bits, or,
//! where PyTorch raises (a case with an `"error"`), an error of the `PruneError` variant the
//! case names. A bare method on a default mask of ones is also run through
//! `compute_mask_on_ones`, the shortcut model-level first pruning takes, which must give the
//! same bits.
//!
//! libtorch's CPU stream of float16/bfloat16 random draws differs between versions (torch 2.11
//! and 2.13 disagree; the fixtures come from 2.13). When the linked libtorch's stream for such a
//! kind differs from the stored RNG probe, a RandomUnstructured mask on importance of that kind
//! still has to have the right kind and shape, but differing values are listed as "not
//! compared" (printed to stderr) instead of failing. The float32 and float64 streams, which
//! every other random case uses, must match, or the test fails.
//!
//! Keep this the only test of this binary: the random methods use libtorch's global generator,
//! which a test running in parallel would advance.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::fixtures::{bit_identical, build_method, seed_for, Case, MaskFixtures, RNG_PROBE};
use tch::{Kind, Tensor};
use tch_prune::{PruneError, PruningContainer};

/// Fewer cases than this means the manifest was truncated or not regenerated.
const MIN_CASES: usize = 200;

#[test]
fn masks_match_pytorch_bit_for_bit() {
    let fixtures = MaskFixtures::load();
    assert!(
        fixtures.cases.len() >= MIN_CASES,
        "only {} cases in tests/fixtures/masks.json (at least {MIN_CASES} expected); \
         regenerate with `scripts/env.sh python scripts/make_fixtures.py`",
        fixtures.cases.len()
    );

    let mut rng_matches = HashMap::new();
    for kind in [Kind::Half, Kind::BFloat16, Kind::Float, Kind::Double] {
        rng_matches.insert(kind, fixtures.rng_stream_matches(kind).unwrap());
    }
    for kind in [Kind::Float, Kind::Double] {
        assert!(
            rng_matches[&kind],
            "libtorch's {kind:?} random stream after manual_seed(0) differs from the one in the \
             fixtures: the random methods cannot be compared with PyTorch"
        );
    }

    let mut used: BTreeSet<String> =
        fixtures.keys().into_iter().filter(|k| k.starts_with(RNG_PROBE)).collect();
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut computations = 0;
    for case in &fixtures.cases {
        let steps = if case.container { case.methods.len() } else { 1 };
        for step in 0..steps {
            computations += 1;
            let label =
                if case.container { format!("{} (step {step})", case.id) } else { case.id.clone() };
            match check_step(&fixtures, case, step, &rng_matches, &mut used) {
                Ok(Outcome::Checked) => {}
                Ok(Outcome::Skipped(why)) => skipped.push(format!("{label}: {why}")),
                Err(message) => failures.push(format!("{label}: {message}")),
            }
        }
    }

    // Every stored tensor belongs to some case: catches a manifest out of step with the file.
    let unused: Vec<String> = fixtures.keys().difference(&used).cloned().collect();
    assert!(unused.is_empty(), "tensors no case uses: {unused:?}");

    if !skipped.is_empty() {
        eprintln!(
            "parity: {} of {computations} masks not compared (this libtorch's random stream \
             differs):\n  {}",
            skipped.len(),
            skipped.join("\n  ")
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {computations} masks differ from PyTorch's ({} cases):\n  {}",
        failures.len(),
        fixtures.cases.len(),
        failures.join("\n  ")
    );
}

/// What became of one mask computation that did not fail.
enum Outcome {
    Checked,
    Skipped(String),
}

/// Computes one mask of `case` (step `step` of a container case) and compares it.
fn check_step(
    fixtures: &MaskFixtures,
    case: &Case,
    step: usize,
    rng_matches: &HashMap<Kind, bool>,
    used: &mut BTreeSet<String>,
) -> Result<Outcome, String> {
    let prefix = if case.container { format!("{}.step{step}", case.id) } else { case.id.clone() };
    let mut get = |key: String| -> Result<Tensor, String> {
        let tensor = fixtures.tensor(&key)?.shallow_clone();
        used.insert(key);
        Ok(tensor)
    };
    let importance = get(format!("{prefix}.importance"))?;
    let default_mask = get(format!("{prefix}.default_mask"))?;
    // Where PyTorch raises (the last step of a case with an "error"), no mask is stored.
    let error = case.error.as_deref().filter(|_| step + 1 == case.methods.len());
    let expected = match error {
        Some(_) => None,
        None => Some(get(format!("{prefix}.mask"))?),
    };
    let default_before = default_mask.copy();
    let importance_before = importance.copy();

    // The methods applied so far, each with its own custom mask where it has one.
    let mut methods = Vec::with_capacity(step + 1);
    for (i, spec) in case.methods.iter().enumerate().take(step + 1) {
        let custom = if spec["method"] == "custom_from_mask" {
            let key = if case.container {
                format!("{}.step{i}.custom", case.id)
            } else {
                format!("{}.custom", case.id)
            };
            Some(get(key)?)
        } else {
            None
        };
        methods.push(build_method(spec, custom.as_ref())?);
    }

    seed_for(&case.methods[step]);
    let in_container = case.container && (step > 0 || case.start_in_container);
    let result = if in_container {
        let mut container = PruningContainer::new();
        for method in std::mem::take(&mut methods) {
            container.add_pruning_method(method);
        }
        container.compute_mask(&importance, &default_mask)
    } else {
        methods[0].compute_mask(&importance, &default_mask)
    };

    bit_identical(&default_before, &default_mask)
        .map_err(|e| format!("default_mask was modified: {e}"))?;
    bit_identical(&importance_before, &importance)
        .map_err(|e| format!("importance was modified: {e}"))?;

    let expected = match (error, expected) {
        (Some(variant), _) => {
            // The variant's name is what `Debug` writes first.
            let name = |e: &PruneError| -> String {
                format!("{e:?}").chars().take_while(char::is_ascii_alphanumeric).collect()
            };
            return match result {
                Err(e) if name(&e) == variant => Ok(Outcome::Checked),
                Err(e) => Err(format!("PyTorch raises: expected PruneError::{variant}, got {e:?}")),
                Ok(mask) => Err(format!(
                    "PyTorch raises: expected PruneError::{variant}, got a mask {:?}",
                    common::fixtures::flat_values(&mask)
                )),
            };
        }
        (None, Some(expected)) => expected,
        (None, None) => unreachable!("a mask is read for every step that does not fail"),
    };
    let actual = result.map_err(|e| format!("compute_mask failed: {e}"))?;

    // Only the last method computes; RandomUnstructured draws `rand_like(importance)`. When this
    // libtorch draws another stream for that kind, only the kind and shape can agree.
    let other_stream = case.methods[step]["method"] == "random_unstructured"
        && !rng_matches.get(&importance.kind()).copied().unwrap_or(true);
    let compare = |actual: &Tensor| -> Result<Outcome, String> {
        match bit_identical(&expected, actual) {
            Ok(()) => Ok(Outcome::Checked),
            Err(_)
                if other_stream
                    && expected.kind() == actual.kind()
                    && expected.size() == actual.size() =>
            {
                Ok(Outcome::Skipped(format!(
                    "values not compared: this libtorch's {:?} random stream differs from the \
                     generating torch's",
                    importance.kind()
                )))
            }
            Err(difference) => Err(difference),
        }
    };
    let outcome = compare(&actual)?;

    // A first pruning (a bare method on a default mask of ones) also has the shortcut that does
    // not build the ones, `compute_mask_on_ones`, which model-level pruning runs: same bits.
    let all_ones = default_mask.to_kind(Kind::Double).eq(1.0).all().int64_value(&[]) == 1;
    if !in_container && all_ones {
        seed_for(&case.methods[step]);
        let on_ones = methods[0]
            .compute_mask_on_ones(&importance, &default_mask)
            .map_err(|e| format!("compute_mask_on_ones failed: {e}"))?;
        if let Some(on_ones) = on_ones {
            compare(&on_ones.into_inner()).map_err(|e| format!("compute_mask_on_ones: {e}"))?;
        }
    }
    Ok(outcome)
}
