//! Bad `PruningRecipe`s: each is an error naming the field at fault (`steps[2].amount`, ...) and
//! leaves the model exactly as it was (the `VarStore`, the masks, the histories and what the
//! layers compute with), also when the error comes from a step after others were applied (they
//! are undone) and when a parameter pruned before the recipe was pruned again.

mod common;

use common::lenet::{lenet, zeros, LeNet, NAMES};
use tch::nn::VarStore;
use tch::Tensor;
use tch_prune::{PruneError, PrunedModel, Pruner, PruningRecipe};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Everything a recipe could change: the `VarStore` (names and values), the pruned parameters,
/// their masks and histories, and what the layers compute with.
fn state(vs: &VarStore, model: &PrunedModel<LeNet>) -> Vec<(String, Tensor)> {
    let mut out: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(name, t)| (format!("var {name}"), t.copy())).collect();
    for name in NAMES {
        if let Some(mask) = model.mask(name) {
            out.push((format!("mask {name}"), mask.copy()));
            let len = model.history(name).unwrap().len() as i64;
            out.push((format!("history {name}"), Tensor::from(len)));
        }
        out.push((format!("value {name}"), model.value(name).unwrap()));
    }
    let slots = &model.model().conv1.ws;
    out.push(("slot conv1.weight".into(), slots.copy()));
    out.push(("slot fc1.weight".into(), model.model().fc1.ws.copy()));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn assert_same_state(before: &[(String, Tensor)], after: &[(String, Tensor)]) {
    let names = |s: &[(String, Tensor)]| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(before), names(after));
    for ((name, a), (_, b)) in before.iter().zip(after) {
        assert!(a.equal(b), "{name} changed");
    }
}

/// A LeNet already pruned once (conv1.weight), so that undoing must restore an earlier mask
/// and history, not only remove new reparametrizations.
fn prepruned() -> Result<(VarStore, PrunedModel<LeNet>), PruneError> {
    let (vs, mut model) = lenet(5);
    model.l1_unstructured("conv1.weight", 10, None)?;
    Ok((vs, model))
}

/// Parses `recipe` (JSON when it starts with `{`, else TOML) and applies it; the field of the
/// error, checking that the model did not change.
fn failing_field(recipe: &str) -> String {
    let (vs, mut model) = prepruned().unwrap();
    let before = state(&vs, &model);
    let parsed = if recipe.trim_start().starts_with('{') {
        PruningRecipe::from_json_str(recipe)
    } else {
        PruningRecipe::from_toml_str(recipe)
    };
    let err = parsed.and_then(|r| r.apply(&mut model).map(|_| ())).unwrap_err();
    assert_same_state(&before, &state(&vs, &model));
    match err {
        PruneError::InvalidRecipe { field, reason } => {
            assert!(!reason.is_empty());
            field
        }
        PruneError::RecipeStepFailed { field, .. } => field,
        other => panic!("unexpected error {other:?}"),
    }
}

/// A recipe whose first steps are fine and whose last step is `bad`.
fn json_with_last_step(bad: &str) -> String {
    format!(
        r#"{{"steps": [
            {{"parameters": ["conv1.weight", "fc1.weight"], "method": "l1_unstructured", "amount": 0.3}},
            {{"layers": ["Linear"], "method": "ln_structured", "amount": 1, "n": 1, "dim": 0}},
            {bad}
        ]}}"#
    )
}

#[test]
fn unknown_method_names_the_method_field() {
    let bad = r#"{"parameters": ["fc1.weight"], "method": "l2_unstructured", "amount": 1}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].method");
    assert_eq!(
        failing_field("[[steps]]\nparameters = [\"fc1.weight\"]\nmethod = \"prune_all\"\n"),
        "steps[0].method"
    );
}

#[test]
fn bad_amounts_name_the_amount_field() {
    for amount in ["1.5", "-3", "\"lots\"", "null"] {
        let bad = format!(
            r#"{{"parameters": ["fc1.weight"], "method": "l1_unstructured", "amount": {amount}}}"#
        );
        assert_eq!(failing_field(&json_with_last_step(&bad)), "steps[2].amount", "amount {amount}");
    }
    assert_eq!(
        failing_field("[[steps]]\nparameters = [\"fc1.weight\"]\nmethod = \"l1_unstructured\"\namount = 2.5\n"),
        "steps[0].amount"
    );
    // Valid in itself, too large for the parameter: found when the step runs, after two
    // steps were applied, which are undone.
    let bad = r#"{"parameters": ["fc3.bias"], "method": "l1_unstructured", "amount": 11}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].amount");
    // conv1.weight (54 entries) already has 10 pruned, then 30% of the other 44: 31 remain.
    let bad = r#"{"parameters": ["conv1.weight"], "method": "l1_unstructured", "amount": 32}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].amount");
}

#[test]
fn patterns_that_match_nothing_name_the_pattern() {
    let bad = r#"{"parameters": ["fc1.weight", "fc4.*"], "method": "identity"}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].parameters[1]");
    let bad = r#"{"parameters": ["conv1.weight_orig"], "method": "identity"}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].parameters[0]");
    let bad = r#"{"parameters": [""], "method": "identity"}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].parameters[0]");
}

#[test]
fn unknown_or_absent_layer_kinds_name_the_layer() {
    let bad = r#"{"layers": ["Linear", "Conv4D"], "method": "identity"}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].layers[1]");
    let bad = r#"{"layers": ["Embedding"], "method": "identity"}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].layers[0]");
    // Layers and patterns with nothing in common.
    let bad = r#"{"layers": ["Conv2D"], "parameters": ["fc1.*"], "method": "identity"}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2]");
}

#[test]
fn missing_refused_and_unknown_arguments_name_the_argument() {
    let cases = [
        (
            r#"{"parameters": ["fc1.weight"], "method": "ln_structured", "amount": 1, "n": 2}"#,
            "steps[2].dim",
        ),
        (
            r#"{"parameters": ["fc1.weight"], "method": "ln_structured", "amount": 1, "dim": 0}"#,
            "steps[2].n",
        ),
        (r#"{"parameters": ["fc1.weight"], "method": "l1_unstructured"}"#, "steps[2].amount"),
        (
            r#"{"parameters": ["fc1.weight"], "method": "l1_unstructured", "amount": 1, "dim": 0}"#,
            "steps[2].dim",
        ),
        (r#"{"parameters": ["fc1.weight"], "method": "identity", "amount": 1}"#, "steps[2].amount"),
        (
            r#"{"parameters": ["fc1.weight"], "method": "l1_unstructured", "amount": 1, "pruning_method": "random_unstructured"}"#,
            "steps[2].pruning_method",
        ),
        (
            r#"{"parameters": ["fc1.weight"], "method": "global_unstructured", "amount": 1, "pruning_method": "l2"}"#,
            "steps[2].pruning_method",
        ),
        (
            r#"{"parameters": ["fc1.weight"], "method": "ln_structured", "amount": 1, "n": "nuc", "dim": 0}"#,
            "steps[2].n",
        ),
        (
            r#"{"parameters": ["fc1.weight"], "method": "l1_unstructured", "amout": 1}"#,
            "steps[2].amout",
        ),
        (r#"{"parameters": ["fc1.weight"], "amount": 1}"#, "steps[2].method"),
        (r#"{"method": "identity"}"#, "steps[2]"),
    ];
    for (bad, field) in cases {
        assert_eq!(failing_field(&json_with_last_step(bad)), field, "{bad}");
    }
    assert_eq!(failing_field(r#"{"step": []}"#), "step");
    assert_eq!(failing_field(r#"{}"#), "steps");
}

#[test]
fn failures_while_pruning_name_the_step_and_parameter() {
    // A structured method on a bias (1-D): the method does not fit the parameter.
    let bad =
        r#"{"parameters": ["fc3.bias"], "method": "ln_structured", "amount": 1, "n": 2, "dim": 0}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].method");
    let bad =
        r#"{"parameters": ["fc3.weight"], "method": "random_structured", "amount": 1, "dim": 2}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].dim");
    // "fro" on a convolution's 4-D weight, where PyTorch's `torch.norm` raises.
    let bad = r#"{"parameters": ["conv2.weight"], "method": "ln_structured", "amount": 0, "n": "fro", "dim": 0}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].n");
    let bad = r#"{"parameters": ["*.bias"], "method": "global_unstructured", "amount": 1000}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].amount");

    let (_vs, mut model) = prepruned().unwrap();
    let recipe = PruningRecipe::from_json_str(&json_with_last_step(
        r#"{"parameters": ["fc2.bias", "fc3.bias"], "method": "l1_unstructured", "amount": 20}"#,
    ))
    .unwrap();
    match recipe.apply(&mut model).unwrap_err() {
        PruneError::RecipeStepFailed { field, parameter, source } => {
            assert_eq!((field.as_str(), parameter.as_str()), ("steps[2].amount", "fc3.bias"));
            assert!(matches!(*source, PruneError::AmountTooLarge { requested: 20, available: 10 }));
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn malformed_documents_are_invalid_recipes() {
    assert!(!failing_field(r#"{"steps": [}"#).is_empty());
    assert!(!failing_field(r#"{"steps": []} trailing"#).is_empty());
    assert!(!failing_field("[[steps]\nmethod = \"identity\"\n").is_empty());
    // A type error deep inside a step points there.
    let bad = r#"{"layers": "Linear", "method": "identity"}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].layers");
    let bad =
        r#"{"parameters": ["fc1.weight"], "method": "random_structured", "amount": 1, "dim": 0.5}"#;
    assert_eq!(failing_field(&json_with_last_step(bad)), "steps[2].dim");
}

#[test]
fn a_good_recipe_after_a_failed_one_applies_normally() -> TestResult {
    let (vs, mut model) = prepruned()?;
    let bad = PruningRecipe::from_json_str(&json_with_last_step(
        r#"{"parameters": ["fc3.bias"], "method": "l1_unstructured", "amount": 11}"#,
    ))?;
    assert!(bad.apply(&mut model).is_err());
    let good = PruningRecipe::from_json_str(&json_with_last_step(
        r#"{"parameters": ["fc3.bias"], "method": "l1_unstructured", "amount": 10}"#,
    ))?;
    good.apply(&mut model)?;
    assert_eq!(zeros(&model, "fc3.bias"), 10);
    // conv1.weight: 10, then 30% of the remaining 44 (13).
    assert_eq!(zeros(&model, "conv1.weight"), 23);
    assert_eq!(model.history("conv1.weight").unwrap().len(), 2);
    let keys = vs.variables();
    assert!(keys.contains_key("fc3.bias_mask") && !keys.contains_key("fc3.bias"));
    // The layers compute with the pruned values.
    model.refresh()?;
    assert!(model.model().fc3.bs.as_ref().unwrap().equal(&model.value("fc3.bias")?));
    Ok(())
}

/// A step pruning `fc1.weight` by `method` with `extra` fields (JSON, without braces).
fn scheduled(method: &str, extra: &str) -> String {
    json_with_last_step(&format!(
        r#"{{"parameters": ["fc1.weight"], "method": "{method}", {extra}}}"#
    ))
}

const POLY: &str =
    r#""kind": "polynomial_decay", "initial_sparsity": 0.0, "begin_step": 0, "end_step": 100"#;

#[test]
fn bad_schedules_name_the_schedule_field() {
    let cases = [
        (format!(r#""schedule": {{{POLY}, "final_sparsity": 1.5}}"#), "steps[2].schedule.final_sparsity"),
        (format!(r#""schedule": {{{POLY}}}"#), "steps[2].schedule.final_sparsity"),
        (
            r#""schedule": {"kind": "polynomial_decay", "initial_sparsity": 0.0, "final_sparsity": 0.5, "begin_step": 0}"#.into(),
            "steps[2].schedule.end_step",
        ),
        (
            format!(r#""schedule": {{{POLY}, "final_sparsity": 0.5, "frequency": 0}}"#),
            "steps[2].schedule.frequency",
        ),
        (
            format!(r#""schedule": {{{POLY}, "final_sparsity": 0.5, "power": -1}}"#),
            "steps[2].schedule.power",
        ),
        (
            format!(r#""schedule": {{{POLY}, "final_sparsity": 0.5, "pruning_steps": 3}}"#),
            "steps[2].schedule.pruning_steps",
        ),
        (
            format!(r#""schedule": {{{POLY}, "final_sparsity": 0.5, "start_step": 3}}"#),
            "steps[2].schedule.start_step",
        ),
        (
            r#""schedule": {"kind": "polynomial_decay", "initial_sparsity": 0.0, "final_sparsity": 0.5, "begin_step": 0, "end_step": -1}"#.into(),
            "steps[2].schedule.end_step",
        ),
        (r#""schedule": {"kind": "linear", "final_sparsity": 0.5}"#.into(), "steps[2].schedule.kind"),
        (r#""schedule": {"final_sparsity": 0.5}"#.into(), "steps[2].schedule.kind"),
        (
            r#""schedule": {"kind": "constant_sparsity", "target_sparsity": 1.0, "begin_step": 0}"#.into(),
            "steps[2].schedule.target_sparsity",
        ),
        (
            r#""schedule": {"kind": "constant_sparsity", "target_sparsity": "high", "begin_step": 0}"#.into(),
            "steps[2].schedule.target_sparsity",
        ),
        (
            r#""schedule": {"kind": "constant_sparsity", "target_sparsity": 0.5, "begin_step": -5}"#.into(),
            "steps[2].schedule.begin_step",
        ),
        (
            r#""schedule": {"kind": "constant_sparsity", "target_sparsity": 0.5, "begin_step": 0, "power": 3}"#.into(),
            "steps[2].schedule.power",
        ),
        (
            r#""schedule": {"kind": "cubic", "initial_sparsity": 0.0, "final_sparsity": 0.9, "begin_step": 0, "pruning_steps": 0, "frequency": 10}"#.into(),
            "steps[2].schedule.pruning_steps",
        ),
        (
            r#""schedule": {"kind": "cubic", "initial_sparsity": 0.0, "final_sparsity": 0.9, "begin_step": 0, "pruning_steps": 3}"#.into(),
            "steps[2].schedule.frequency",
        ),
        (r#""schedule": 0.5"#.into(), "steps[2].schedule"),
    ];
    for (extra, field) in &cases {
        for method in ["l1_unstructured", "global_unstructured"] {
            assert_eq!(failing_field(&scheduled(method, extra)), *field, "{method}: {extra}");
        }
    }
    // TOML, inline or as a sub-table.
    let toml = |schedule: &str| {
        format!(
            "[[steps]]\nparameters = [\"fc1.weight\"]\nmethod = \"l1_unstructured\"\n{schedule}\n"
        )
    };
    assert_eq!(
        failing_field(&toml(
            "schedule = { kind = \"polynomial_decay\", initial_sparsity = 0.0, final_sparsity = 1.5, begin_step = 0, end_step = 1000, frequency = 100, power = 3 }"
        )),
        "steps[0].schedule.final_sparsity"
    );
    assert_eq!(
        failing_field(&toml("[steps.schedule]\nkind = \"cubic\"\ninitial_sparsity = 0.0\nfinal_sparsity = 0.5\nbegin_step = 0\nfrequency = 10\n")),
        "steps[0].schedule.pruning_steps"
    );
    assert_eq!(
        failing_field(&toml("schedule = { kind = \"exponential\" }")),
        "steps[0].schedule.kind"
    );
}

#[test]
fn schedules_go_only_where_an_amount_of_l1_pruning_would() {
    let schedule = format!(r#""schedule": {{{POLY}, "final_sparsity": 0.5}}"#);
    let cases = [
        // Methods a `GradualPruner` does not run.
        ("ln_structured", format!(r#""n": 2, "dim": 0, {schedule}"#)),
        ("random_structured", format!(r#""dim": 0, {schedule}"#)),
        ("random_unstructured", schedule.clone()),
        ("identity", schedule.clone()),
        ("global_unstructured", format!(r#""pruning_method": "random_unstructured", {schedule}"#)),
        // Both an amount and a schedule.
        ("l1_unstructured", format!(r#""amount": 0.5, {schedule}"#)),
        ("global_unstructured", format!(r#""amount": 10, {schedule}"#)),
    ];
    for (method, extra) in &cases {
        assert_eq!(
            failing_field(&scheduled(method, extra)),
            "steps[2].schedule",
            "{method}: {extra}"
        );
    }
    // Neither.
    for method in ["l1_unstructured", "global_unstructured"] {
        assert_eq!(failing_field(&scheduled(method, r#""layers": ["Linear"]"#)), "steps[2].amount");
    }
    // A scheduled step refuses the other methods' arguments as its method does.
    assert_eq!(
        failing_field(&scheduled("l1_unstructured", &format!(r#""dim": 0, {schedule}"#))),
        "steps[2].dim"
    );
    assert_eq!(
        failing_field(&scheduled(
            "l1_unstructured",
            &format!(r#""pruning_method": "l1_unstructured", {schedule}"#)
        )),
        "steps[2].pruning_method"
    );
}

#[test]
fn scheduled_steps_are_resolved_with_the_others_and_fail_the_same_way() {
    let schedule = format!(r#""schedule": {{{POLY}, "final_sparsity": 0.5}}"#);
    // Its selection is checked like any step's.
    let bad =
        format!(r#"{{"parameters": ["fc9.weight"], "method": "l1_unstructured", {schedule}}}"#);
    assert_eq!(failing_field(&json_with_last_step(&bad)), "steps[2].parameters[0]");
    let bad =
        format!(r#"{{"layers": ["Embedding"], "method": "global_unstructured", {schedule}}}"#);
    assert_eq!(failing_field(&json_with_last_step(&bad)), "steps[2].layers[0]");
    // A good scheduled step before a step that fails on the model: no pruner, nothing changed.
    let recipe = format!(
        r#"{{"steps": [
            {{"layers": ["Linear"], "method": "global_unstructured", {schedule}}},
            {{"parameters": ["fc2.bias"], "method": "l1_unstructured", "amount": 3}},
            {{"parameters": ["fc3.bias"], "method": "l1_unstructured", "amount": 11}}
        ]}}"#
    );
    assert_eq!(failing_field(&recipe), "steps[2].amount");
}

/// A linear layer and a lookup table that is a slot of the model but not a trainable variable
/// (`zeros_no_train`: PyTorch's buffer-like `Parameter(requires_grad=False)`).
#[derive(Debug)]
struct WithTable {
    fc: tch::nn::Linear,
    table: Tensor,
}

impl tch_prune::Prunable for WithTable {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut out = vec![("fc.weight".to_string(), &mut self.fc.ws)];
        if let Some(bias) = self.fc.bs.as_mut() {
            out.push(("fc.bias".to_string(), bias));
        }
        out.push(("emb.table".to_string(), &mut self.table));
        out
    }
}

fn with_table() -> (VarStore, PrunedModel<WithTable>) {
    let vs = VarStore::new(tch::Device::Cpu);
    let mut fc = tch::nn::linear(vs.root() / "fc", 4, 3, Default::default());
    let mut table = (vs.root() / "emb").zeros_no_train("table", &[2, 5]);
    // Fixed, distinct magnitudes (no random generator: tests run in parallel).
    let float = (tch::Kind::Float, tch::Device::Cpu);
    tch::no_grad(|| {
        fc.ws.copy_(&((Tensor::arange(12, float) - 5.3) * 0.3).reshape([3, 4]));
        table.copy_(&(Tensor::arange(10, float).reshape([2, 5]) * 0.45 - 2.1));
    });
    let model = PrunedModel::new(WithTable { fc, table }, &vs).unwrap();
    (vs, model)
}

/// A recipe over a parameter that is not trainable prunes it as the direct call does. It used to
/// prune it, fail while reporting (`no parameter "emb.table" in the VarStore`: the report
/// only knew trainable variables) and undo everything.
#[test]
fn recipes_prune_non_trainable_parameters_like_the_direct_calls() -> TestResult {
    let recipe = PruningRecipe::from_json_str(
        r#"{"steps": [
            {"parameters": ["emb.table"], "method": "l1_unstructured", "amount": 3},
            {"parameters": ["fc.weight", "emb.*"], "method": "global_unstructured", "amount": 0.25}
        ]}"#,
    )?;
    let (vs, mut model) = with_table();
    let outcome = recipe.apply(&mut model)?;
    assert_eq!(outcome.steps[0].parameters, ["emb.table"]);
    assert_eq!(outcome.steps[1].parameters, ["fc.weight", "emb.table"]);
    let row = outcome.sparsity.get("emb.table").expect("emb.table is reported");
    assert!(row.masked);
    assert_eq!((row.numel, row.shape.as_slice()), (10, &[2i64, 5][..]));
    assert!(outcome.sparsity.get("fc.weight").is_some());
    assert_eq!(outcome.sparsity.parameters.len(), 2);

    // The same calls made directly give the same masks.
    let (_vs2, mut direct) = with_table();
    direct.l1_unstructured("emb.table", 3, None)?;
    direct.global_unstructured(
        &["fc.weight", "emb.table"],
        tch_prune::L1Unstructured::new(0.25)?,
        &[],
    )?;
    for name in ["emb.table", "fc.weight"] {
        assert!(model.mask(name).unwrap().equal(direct.mask(name).unwrap()), "{name}");
    }
    let direct_zeros = direct.value("emb.table")?.eq(0.0).sum(tch::Kind::Int64).int64_value(&[]);
    assert_eq!(row.zeros, direct_zeros as u64);
    assert!(!vs.variables()["emb.table_orig"].requires_grad());
    Ok(())
}

#[test]
fn amount_that_is_not_a_number_says_what_an_amount_is() {
    for (recipe, field) in [
        (
            r#"{"steps": [{"parameters": ["fc1.weight"], "method": "l1_unstructured", "amount": "half"}]}"#,
            "steps[0].amount",
        ),
        (
            "[[steps]]\nparameters = [\"fc1.weight\"]\nmethod = \"l1_unstructured\"\namount = true\n",
            "steps[0].amount",
        ),
    ] {
        let parsed = if recipe.starts_with('{') {
            PruningRecipe::from_json_str(recipe)
        } else {
            PruningRecipe::from_toml_str(recipe)
        };
        match parsed.unwrap_err() {
            PruneError::InvalidRecipe { field: f, reason } => {
                assert_eq!(f, field);
                assert!(
                    reason.contains("an integer count, or a fraction in [0, 1]"),
                    "reason: {reason}"
                );
            }
            other => panic!("unexpected error {other:?}"),
        }
    }
    // Integers too large for a count are refused by the deserializer, not wrapped around.
    let huge = r#"{"steps": [{"parameters": ["fc1.weight"], "method": "l1_unstructured", "amount": 18446744073709551615}]}"#;
    assert!(matches!(
        PruningRecipe::from_json_str(huge),
        Err(PruneError::InvalidRecipe { ref field, .. }) if field == "steps[0].amount"
    ));
}
