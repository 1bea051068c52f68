//! `PruningRecipe`: JSON and TOML recipes applied to the tutorial's LeNet give the masks of the
//! equivalent `PrunedModel` calls; scheduled steps give the `GradualPruner`s written in code;
//! recipes round-trip through JSON, TOML and serde. Bad recipes are in `tests/recipe_errors.rs`.

mod common;

use common::lenet::{lenet, zeros, LeNet, NAMES};
use common::rng::rng_lock;
use tch::nn::VarStore;
use tch_prune::{
    Amount, ConstantSparsity, Cubic, GlobalPruningMethod, GradualPruner, L1Unstructured, LayerKind,
    PolynomialDecay, PruneError, PrunedModel, Pruner, PruningRecipe, PruningSchedule, PruningScope,
    RandomUnstructured, RecipeMethod, RecipeStep, ScheduleConfig,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Masks, histories and `VarStore` entries of two models are the same.
fn assert_same_pruning(
    a: &PrunedModel<LeNet>,
    va: &VarStore,
    b: &PrunedModel<LeNet>,
    vb: &VarStore,
) {
    assert_eq!(
        a.pruned_parameters().collect::<Vec<_>>(),
        b.pruned_parameters().collect::<Vec<_>>()
    );
    for name in NAMES {
        match (a.mask(name), b.mask(name)) {
            (Some(ma), Some(mb)) => assert!(ma.equal(mb), "mask of {name}"),
            (None, None) => {}
            _ => panic!("{name} is pruned in one model only"),
        }
        assert_eq!(
            a.history(name).map(|h| h.len()),
            b.history(name).map(|h| h.len()),
            "history of {name}"
        );
    }
    let mut ka: Vec<String> = va.variables().into_keys().collect();
    let mut kb: Vec<String> = vb.variables().into_keys().collect();
    ka.sort();
    kb.sort();
    assert_eq!(ka, kb);
}

const JSON_RECIPE: &str = r#"{
  "steps": [
    {"layers": ["Conv2d"], "method": "ln_structured", "amount": 0.5, "n": 2, "dim": 0},
    {"parameters": ["fc?.weight"], "method": "global_unstructured", "amount": 0.2},
    {"layers": ["Linear"], "parameters": ["*.bias"], "method": "l1_unstructured", "amount": 3},
    {"parameters": ["conv1.weight"], "method": "l1_unstructured", "amount": 5}
  ]
}"#;

#[test]
fn json_recipe_matches_the_equivalent_calls() -> TestResult {
    let _rng = rng_lock();
    let (va, mut a) = lenet(7);
    let outcome = PruningRecipe::from_json_str(JSON_RECIPE)?.apply(&mut a)?;

    let (vb, mut b) = lenet(7);
    b.ln_structured("conv1.weight", 0.5, 2, 0, None)?;
    b.ln_structured("conv2.weight", 0.5, 2, 0, None)?;
    b.global_unstructured(
        &["fc1.weight", "fc2.weight", "fc3.weight"],
        L1Unstructured::new(0.2)?,
        &[],
    )?;
    for bias in ["fc1.bias", "fc2.bias", "fc3.bias"] {
        b.l1_unstructured(bias, 3, None)?;
    }
    b.l1_unstructured("conv1.weight", 5, None)?;
    assert_same_pruning(&a, &va, &b, &vb);

    // The outcome: the parameters of each step, and the sparsities they reached.
    let steps: Vec<(&str, Vec<&str>)> = outcome
        .steps
        .iter()
        .map(|s| (s.method.as_str(), s.parameters.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        steps,
        [
            ("ln_structured", vec!["conv1.weight", "conv2.weight"]),
            ("global_unstructured", vec!["fc1.weight", "fc2.weight", "fc3.weight"]),
            ("l1_unstructured", vec!["fc1.bias", "fc2.bias", "fc3.bias"]),
            ("l1_unstructured", vec!["conv1.weight"]),
        ]
    );
    // conv1: 3 of 6 filters of 9 entries, then 5 more entries.
    assert_eq!(zeros(&a, "conv1.weight"), 27 + 5);
    assert_eq!(zeros(&a, "conv2.weight"), 8 * 6 * 9);
    let fc_weights: i64 =
        ["fc1.weight", "fc2.weight", "fc3.weight"].iter().map(|n| zeros(&a, n)).sum();
    assert_eq!(fc_weights, 11784); // round(0.2 * 58920), ranked across the three
    let report = &outcome.sparsity;
    let names: Vec<&str> = report.parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        NAMES
            .iter()
            .filter(|n| **n != "conv1.bias" && **n != "conv2.bias")
            .copied()
            .collect::<Vec<_>>()
    );
    assert_eq!(report.get("conv1.weight").unwrap().zeros, 32);
    assert_eq!(report.get("fc3.bias").unwrap().zeros, 3);
    assert!(!a.is_parameter_pruned("conv1.bias"));
    Ok(())
}

const TOML_RECIPE: &str = r#"
# Random methods, seeded by the test.
[[steps]]
parameters = ["conv2.weight"]
method = "random_unstructured"
amount = 0.3

[[steps]]
parameters = ["fc3.weight"]
method = "random_structured"
amount = 2
dim = 0

[[steps]]
layers = ["Linear"]
parameters = ["fc1.*", "fc2.weight"]
method = "global_unstructured"
pruning_method = "random_unstructured"
amount = 1000

[[steps]]
parameters = ["conv?.bias"]
method = "identity"
"#;

#[test]
fn toml_recipe_matches_the_equivalent_calls() -> TestResult {
    let _rng = rng_lock();
    let (va, mut a) = lenet(3);
    let recipe = PruningRecipe::from_toml_str(TOML_RECIPE)?;
    tch::manual_seed(11);
    let outcome = recipe.apply(&mut a)?;

    let (vb, mut b) = lenet(3);
    tch::manual_seed(11);
    b.random_unstructured("conv2.weight", 0.3)?;
    b.random_structured("fc3.weight", 2, 0)?;
    b.global_unstructured(
        &["fc1.weight", "fc1.bias", "fc2.weight"],
        RandomUnstructured::new(1000)?,
        &[],
    )?;
    b.identity("conv1.bias")?;
    b.identity("conv2.bias")?;
    assert_same_pruning(&a, &va, &b, &vb);

    assert_eq!(zeros(&a, "conv2.weight"), 259); // round(0.3 * 864)
    assert_eq!(zeros(&a, "fc3.weight"), 2 * 84);
    let global: i64 = ["fc1.weight", "fc1.bias", "fc2.weight"].iter().map(|n| zeros(&a, n)).sum();
    assert_eq!(global, 1000);
    assert_eq!(zeros(&a, "conv1.bias"), 0);
    assert!(a.is_parameter_pruned("conv1.bias"));
    assert_eq!(outcome.steps[2].parameters, ["fc1.weight", "fc1.bias", "fc2.weight"]);
    Ok(())
}

#[test]
fn layers_alone_select_their_weights() -> TestResult {
    let _rng = rng_lock();
    let (_vs, mut model) = lenet(1);
    let recipe = PruningRecipe::new(vec![RecipeStep::new(RecipeMethod::l1_unstructured(0.5)?)
        .with_layers([LayerKind::Linear, LayerKind::Conv2D])]);
    let outcome = recipe.apply(&mut model)?;
    assert_eq!(
        outcome.steps[0].parameters,
        ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"]
    );
    assert!(!model.is_parameter_pruned("fc1.bias"));
    Ok(())
}

#[test]
fn recipes_round_trip_through_json_and_toml() -> TestResult {
    for recipe in
        [PruningRecipe::from_json_str(JSON_RECIPE)?, PruningRecipe::from_toml_str(TOML_RECIPE)?]
    {
        let json = recipe.to_json_string()?;
        assert_eq!(PruningRecipe::from_json_str(&json)?, recipe, "{json}");
        let toml = recipe.to_toml_string()?;
        assert_eq!(PruningRecipe::from_toml_str(&toml)?, recipe, "{toml}");
        // Through serde directly (a recipe embedded in another configuration).
        let value = serde_json::to_value(&recipe)?;
        assert_eq!(serde_json::from_value::<PruningRecipe>(value)?, recipe);
    }
    // Every method, every kind of amount and norm, written in code.
    let recipe = PruningRecipe::new(vec![
        RecipeStep::new(RecipeMethod::identity()).with_parameters(["fc1.bias"]),
        RecipeStep::new(RecipeMethod::random_unstructured(7)?).with_parameters(["fc2.*"]),
        RecipeStep::new(RecipeMethod::ln_structured(1.0, f64::INFINITY, -1)?)
            .with_layers([LayerKind::Conv2D]),
        RecipeStep::new(RecipeMethod::ln_structured(0.25, tch_prune::Norm::Fro, 1)?)
            .with_layers([LayerKind::Linear]),
        RecipeStep::new(RecipeMethod::random_structured(0.5, 0)?).with_parameters(["fc3.weight"]),
        RecipeStep::new(RecipeMethod::global_unstructured(
            GlobalPruningMethod::RandomUnstructured,
            0.1,
        )?)
        .with_parameters(["*.weight"]),
    ]);
    assert_eq!(PruningRecipe::from_json_str(&recipe.to_json_string()?)?, recipe);
    assert_eq!(PruningRecipe::from_toml_str(&recipe.to_toml_string()?)?, recipe);
    // A fraction of 1.0 stays a fraction (all), an integer stays a count.
    let json = recipe.to_json_string()?;
    assert!(json.contains(r#""amount": 1.0"#) && json.contains(r#""amount": 7"#), "{json}");
    Ok(())
}

#[test]
fn recipe_files_are_read_by_extension() -> TestResult {
    let dir = std::env::temp_dir().join(format!("tch-prune-recipes-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("r.json"), JSON_RECIPE)?;
    std::fs::write(dir.join("r.toml"), TOML_RECIPE)?;
    assert_eq!(
        PruningRecipe::from_path(dir.join("r.json"))?,
        PruningRecipe::from_json_str(JSON_RECIPE)?
    );
    assert_eq!(
        PruningRecipe::from_path(dir.join("r.toml"))?,
        PruningRecipe::from_toml_str(TOML_RECIPE)?
    );
    let err = PruningRecipe::from_path(dir.join("r.yaml")).unwrap_err();
    assert!(matches!(err, PruneError::InvalidRecipe { field, .. } if field == "path"));
    let err = PruningRecipe::from_path(dir.join("missing.toml")).unwrap_err();
    assert!(matches!(err, PruneError::Io { operation: "read", .. }));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

const SCHEDULED_RECIPE: &str = r#"
# Each convolution weight by itself, along Zhu & Gupta's cubic: 0% -> 80% at steps 10, 20, 30, 40.
[[steps]]
layers = ["Conv2d"]
method = "l1_unstructured"
schedule = { kind = "cubic", initial_sparsity = 0.0, final_sparsity = 0.8, begin_step = 10, pruning_steps = 3, frequency = 10 }

# The linear weights together, 10% -> 90% every 10 steps from 0 to 50 (TF-MOT's class name).
[[steps]]
parameters = ["fc?.weight"]
method = "global_unstructured"
pruning_method = "l1_unstructured"

[steps.schedule]
kind = "PolynomialDecay"
initial_sparsity = 0.1
final_sparsity = 0.9
begin_step = 0
end_step = 50
frequency = 10
power = 2

# Pruned now.
[[steps]]
parameters = ["fc3.bias"]
method = "l1_unstructured"
amount = 2
"#;

#[test]
fn scheduled_steps_become_gradual_pruners_that_follow_the_schedule() -> TestResult {
    let _rng = rng_lock();
    let (va, mut a) = lenet(13);
    let outcome = PruningRecipe::from_toml_str(SCHEDULED_RECIPE)?.apply(&mut a)?;
    let steps: Vec<(&str, bool)> =
        outcome.steps.iter().map(|s| (s.method.as_str(), s.scheduled)).collect();
    assert_eq!(
        steps,
        [("l1_unstructured", true), ("global_unstructured", true), ("l1_unstructured", false)]
    );
    assert_eq!(outcome.steps[0].parameters, ["conv1.weight", "conv2.weight"]);
    // Only the amount step pruned; the sparsity report covers every selected parameter.
    assert_eq!(a.pruned_parameters().collect::<Vec<_>>(), ["fc3.bias"]);
    assert_eq!(outcome.sparsity.parameters.len(), 6);
    assert_eq!(outcome.sparsity.get("fc1.weight").unwrap().zeros, 0);

    let mut pruners = outcome.into_gradual_pruners();
    assert_eq!(pruners.len(), 2);
    assert_eq!(pruners[0].names(), ["conv1.weight", "conv2.weight"]);
    assert_eq!(pruners[0].scope(), PruningScope::Local);
    assert_eq!(pruners[1].names(), ["fc1.weight", "fc2.weight", "fc3.weight"]);
    assert_eq!(pruners[1].scope(), PruningScope::Global);

    // The same pruning written in code, on an equal model.
    let (vb, mut b) = lenet(13);
    b.l1_unstructured("fc3.bias", 2, None)?;
    let cubic = Cubic::new(0.0, 0.8, 10, 3, 10)?;
    let poly = PolynomialDecay::new(0.1, 0.9, 0, 50)?.with_power(2.0)?.with_frequency(10)?;
    let mut expected = [
        GradualPruner::new(cubic, ["conv1.weight", "conv2.weight"])?,
        GradualPruner::new(poly, ["fc1.weight", "fc2.weight", "fc3.weight"])?
            .with_scope(PruningScope::Global),
    ];
    let schedules: [&dyn PruningSchedule; 2] = [&cubic, &poly];

    let mut pruned_at = [Vec::new(), Vec::new()];
    for step in 0..70 {
        for (k, (pruner, reference)) in pruners.iter_mut().zip(&mut expected).enumerate() {
            let progress = pruner.step(&mut a, step)?;
            assert_eq!(progress, reference.step(&mut b, step)?, "pruner {k} at step {step}");
            let target = schedules[k].prune_at(step);
            assert_eq!(progress.as_ref().map(|p| p.target()), target, "pruner {k} at step {step}");
            let Some(progress) = progress else { continue };
            pruned_at[k].push(step);
            if k == 0 {
                // Local: each weight exactly at the target of its own entries.
                for p in progress.parameters() {
                    assert_eq!(
                        p.pruned(),
                        Amount::Fraction(progress.target()).count_for(p.numel())?
                    );
                }
            } else {
                // Global: the three weights together.
                let total = Amount::Fraction(progress.target()).count_for(progress.numel())?;
                assert_eq!(progress.pruned(), total);
            }
        }
    }
    assert_eq!(pruned_at, [vec![10, 20, 30, 40], vec![0, 10, 20, 30, 40, 50]]);
    assert_eq!(zeros(&a, "conv2.weight"), 691); // round(0.8 * 864)
    let fc: i64 = ["fc1.weight", "fc2.weight", "fc3.weight"].iter().map(|n| zeros(&a, n)).sum();
    assert_eq!(fc, 53028); // round(0.9 * 58920)
    assert_same_pruning(&a, &va, &b, &vb);
    Ok(())
}

#[test]
fn scheduled_steps_built_in_code_match_the_file() -> TestResult {
    let from_file = PruningRecipe::from_toml_str(SCHEDULED_RECIPE)?;
    let poly = PolynomialDecay::new(0.1, 0.9, 0, 50)?.with_power(2.0)?.with_frequency(10)?;
    let in_code = PruningRecipe::new(vec![
        RecipeStep::new(RecipeMethod::gradual(
            PruningScope::Local,
            Cubic::new(0.0, 0.8, 10, 3, 10)?,
        ))
        .with_layers([LayerKind::Conv2D]),
        RecipeStep::new(RecipeMethod::gradual(PruningScope::Global, poly))
            .with_parameters(["fc?.weight"]),
        RecipeStep::new(RecipeMethod::l1_unstructured(2)?).with_parameters(["fc3.bias"]),
    ]);
    assert_eq!(from_file, in_code);
    assert_eq!(from_file.steps()[1].method().schedule(), Some(&ScheduleConfig::from(poly)));
    assert_eq!(from_file.steps()[2].method().schedule(), None);
    Ok(())
}

#[test]
fn scheduled_recipes_round_trip_through_json_and_toml() -> TestResult {
    let constant = ConstantSparsity::new(0.5, 100, None, 25)?;
    let recipe = PruningRecipe::new(vec![
        RecipeStep::new(RecipeMethod::gradual(PruningScope::Local, constant))
            .with_parameters(["fc1.weight"]),
        RecipeStep::new(RecipeMethod::gradual(
            PruningScope::Global,
            PolynomialDecay::new(0.0, 0.875, 0, 1000)?,
        ))
        .with_layers([LayerKind::Linear])
        .with_parameters(["*.weight"]),
        RecipeStep::new(RecipeMethod::gradual(
            PruningScope::Local,
            Cubic::new(0.25, 1.0, 7, 5, 3)?,
        ))
        .with_layers([LayerKind::Conv2D]),
        RecipeStep::new(RecipeMethod::l1_unstructured(0.5)?).with_parameters(["fc3.bias"]),
    ]);
    for recipe in [recipe, PruningRecipe::from_toml_str(SCHEDULED_RECIPE)?] {
        let json = recipe.to_json_string()?;
        assert_eq!(PruningRecipe::from_json_str(&json)?, recipe, "{json}");
        let toml = recipe.to_toml_string()?;
        assert_eq!(PruningRecipe::from_toml_str(&toml)?, recipe, "{toml}");
        let value = serde_json::to_value(&recipe)?;
        assert_eq!(serde_json::from_value::<PruningRecipe>(value)?, recipe);
    }
    // Written with every field explicit (TF-MOT's defaults too), in the recipe's snake case.
    let recipe = PruningRecipe::new(vec![RecipeStep::new(RecipeMethod::gradual(
        PruningScope::Global,
        PolynomialDecay::new(0.0, 0.9, 0, 1000)?,
    ))
    .with_parameters(["*.weight"])]);
    let json: serde_json::Value = serde_json::from_str(&recipe.to_json_string()?)?;
    assert_eq!(
        json,
        serde_json::json!({"steps": [{
            "parameters": ["*.weight"],
            "method": "global_unstructured",
            "schedule": {
                "kind": "polynomial_decay", "initial_sparsity": 0.0, "final_sparsity": 0.9,
                "begin_step": 0, "end_step": 1000, "frequency": 100, "power": 3.0
            }
        }]})
    );
    let toml = recipe.to_toml_string()?;
    assert!(toml.contains("kind = \"polynomial_decay\"") && !toml.contains("amount"), "{toml}");
    // `ScheduleConfig` on its own reads and writes the same table.
    let config: ScheduleConfig = serde_json::from_value(json["steps"][0]["schedule"].clone())?;
    assert_eq!(recipe.steps()[0].method().schedule(), Some(&config));
    assert_eq!(serde_json::to_value(config)?, json["steps"][0]["schedule"]);
    Ok(())
}

#[test]
fn recipe_methods_hold_validated_methods_and_refuse_hashed_draws_when_written() {
    use tch_prune::{LnStructured, PruneError, RandomUnstructured};
    // A variant holds the method itself: its arguments were checked by the method's `new`.
    let ln = LnStructured::builder().amount(2).n(1).dim(0).build().unwrap();
    let recipe = PruningRecipe::new(vec![
        RecipeStep::new(RecipeMethod::LnStructured(ln)).with_parameters(["fc1.weight"])
    ]);
    let back = PruningRecipe::from_json_str(&recipe.to_json_string().unwrap()).unwrap();
    assert_eq!(back.steps()[0].method(), &RecipeMethod::LnStructured(ln));
    // The file format has no hashed draws: writing such a method is an error, not a change.
    let hashed = RandomUnstructured::new(0.5).unwrap().with_hashed_draws();
    let recipe =
        PruningRecipe::new(vec![RecipeStep::new(RecipeMethod::RandomUnstructured(hashed))
            .with_parameters(["fc1.weight"])]);
    for written in [recipe.to_json_string(), recipe.to_toml_string()] {
        assert!(matches!(
            written,
            Err(PruneError::InvalidRecipe { ref field, .. }) if field == "steps[0].method"
        ));
    }
}
