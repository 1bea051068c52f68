//! `SparsityReport`: counts on a model with known weights, the name filter, a `VarStore` pruned
//! in place, serde round trips, the text table and the charts.

use tch::nn::{self, VarStore};
use tch::{Device, Tensor};
use tch_prune::{prunable, PruneError, PrunedModel, Pruner, SparsityReport};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Debug)]
struct Net {
    conv: nn::Conv2D,
    fc: nn::Linear,
}
prunable!(Net { conv, fc });

fn values(v: &[f32], shape: &[i64]) -> Tensor {
    Tensor::from_slice(v).reshape(shape)
}

/// conv.weight = 1..8 (shape [2, 1, 2, 2]), conv.bias = [0, 1], fc.weight = rows [1, 2, 3] and
/// [4, 5, 6], fc.bias = [0, 0]: three zeros before any pruning.
fn known_model() -> (VarStore, PrunedModel<Net>) {
    let vs = VarStore::new(Device::Cpu);
    let mut net = Net {
        conv: nn::conv2d(vs.root() / "conv", 1, 2, 2, Default::default()),
        fc: nn::linear(vs.root() / "fc", 3, 2, Default::default()),
    };
    tch::no_grad(|| {
        let w: Vec<f32> = (1..=8).map(|v| v as f32).collect();
        net.conv.ws.copy_(&values(&w, &[2, 1, 2, 2]));
        net.conv.bs.as_mut().unwrap().copy_(&values(&[0.0, 1.0], &[2]));
        net.fc.ws.copy_(&values(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]));
        net.fc.bs.as_mut().unwrap().copy_(&values(&[0.0, 0.0], &[2]));
    });
    let model = PrunedModel::new(net, &vs).unwrap();
    (vs, model)
}

/// The known model with conv.weight's 3 smallest entries and fc.weight's smaller row pruned.
fn pruned_model() -> Result<(VarStore, PrunedModel<Net>), PruneError> {
    let (vs, mut model) = known_model();
    model.l1_unstructured("conv.weight", 3, None)?;
    model.ln_structured("fc.weight", 1, 2, 0, None)?;
    Ok((vs, model))
}

/// A report row as a tuple: name, shape, numel, zeros, sparsity (%), masked.
type Row<'a> = (&'a str, &'a [i64], u64, u64, f64, bool);

#[test]
fn counts_every_parameter_in_model_order() -> TestResult {
    let (_vs, model) = pruned_model()?;
    let report = SparsityReport::from_model(&model, None)?;
    let rows: Vec<Row> = report
        .parameters
        .iter()
        .map(|p| {
            (p.name.as_str(), p.shape.as_slice(), p.numel, p.zeros, p.sparsity_percent, p.masked)
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("conv.weight", &[2i64, 1, 2, 2][..], 8, 3, 37.5, true),
            ("conv.bias", &[2][..], 2, 1, 50.0, false),
            ("fc.weight", &[2, 3][..], 6, 3, 50.0, true),
            ("fc.bias", &[2][..], 2, 2, 100.0, false),
        ]
    );
    assert_eq!((report.numel, report.zeros, report.sparsity_percent), (18, 9, 50.0));
    Ok(())
}

#[test]
fn counts_the_effective_value_not_the_original() -> TestResult {
    let (_vs, model) = pruned_model()?;
    // orig keeps its values; the report counts orig * mask, as the layer sees it.
    let orig = model.orig("conv.weight").unwrap();
    assert_eq!(orig.eq(0.0).sum(tch::Kind::Int64).int64_value(&[]), 0);
    let report = SparsityReport::from_model(&model, Some(&["conv.weight"]))?;
    assert_eq!(report.parameters[0].zeros, 3);
    Ok(())
}

#[test]
fn names_and_patterns_select_rows_in_model_order() -> TestResult {
    let (_vs, model) = pruned_model()?;
    let report = SparsityReport::from_model(&model, Some(&["fc.*", "*.weight"]))?;
    let names: Vec<&str> = report.parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["conv.weight", "fc.weight", "fc.bias"]);
    assert_eq!((report.numel, report.zeros), (16, 8));

    let weights = SparsityReport::from_model(&model, Some(&["*.weight"]))?;
    assert_eq!((weights.numel, weights.zeros), (14, 6));

    // A typo is an error naming it, never an empty report.
    let err =
        SparsityReport::from_model(&model, Some(&["conv.weight", "conv.wieght"])).unwrap_err();
    assert!(matches!(err, PruneError::UnknownParameter { name } if name == "conv.wieght"));
    // `_orig` / `_mask` are not parameters of their own.
    let err = SparsityReport::from_model(&model, Some(&["conv.weight_orig"])).unwrap_err();
    assert!(matches!(err, PruneError::UnknownParameter { .. }));
    Ok(())
}

#[test]
fn var_store_report_equals_model_report() -> TestResult {
    let (vs, model) = pruned_model()?;
    assert_eq!(
        SparsityReport::from_var_store(&vs, None)?,
        SparsityReport::from_model(&model, None)?
    );
    Ok(())
}

#[test]
fn var_store_pruned_in_place_is_counted() -> TestResult {
    // What hard masking leaves: zeros written into the variables themselves.
    let (vs, model) = known_model();
    drop(model);
    tch::no_grad(|| {
        let vars = vs.variables();
        let _ = vars["fc.weight"].narrow(0, 0, 1).fill_(0.0);
    });
    let report = SparsityReport::from_var_store(&vs, Some(&["fc.weight", "fc.bias"]))?;
    assert_eq!(report.get("fc.weight").unwrap().zeros, 3);
    assert!(!report.get("fc.weight").unwrap().masked);
    assert_eq!((report.numel, report.zeros), (8, 5));
    Ok(())
}

#[test]
fn frozen_var_store_still_reports_its_parameters() -> TestResult {
    let (mut vs, model) = pruned_model()?;
    vs.freeze();
    assert_eq!(SparsityReport::from_model(&model, None)?.parameters.len(), 4);
    Ok(())
}

#[test]
fn serde_round_trips() -> TestResult {
    let (_vs, model) = pruned_model()?;
    let report = SparsityReport::from_model(&model, None)?;

    let json = serde_json::to_string(&report)?;
    assert!(json.contains(r#""name":"conv.weight""#));
    assert!(json.contains(r#""sparsity_percent":37.5"#));
    assert_eq!(serde_json::from_str::<SparsityReport>(&json)?, report);

    let toml = toml::to_string(&report)?;
    assert!(toml.contains("[[parameters]]"));
    assert_eq!(toml::from_str::<SparsityReport>(&toml)?, report);

    // A global sparsity that is not a short decimal survives too.
    let odd = SparsityReport::from_tensors([("w", &values(&[0.0, 1.0, 2.0], &[3]))])?;
    assert_eq!(serde_json::from_str::<SparsityReport>(&serde_json::to_string(&odd)?)?, odd);
    Ok(())
}

#[test]
fn table_lists_every_parameter_aligned() -> TestResult {
    let (_vs, model) = pruned_model()?;
    let text = SparsityReport::from_model(&model, None)?.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let tokens = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(tokens(lines[0]), ["parameter", "shape", "numel", "zeros", "sparsity", "masked"]);
    assert_eq!(
        tokens(lines[1]),
        ["conv.weight", "[2,", "1,", "2,", "2]", "8", "3", "37.50%", "yes"]
    );
    assert_eq!(tokens(lines[2]), ["conv.bias", "[2]", "2", "1", "50.00%", "no"]);
    assert_eq!(tokens(lines[3]), ["fc.weight", "[2,", "3]", "6", "3", "50.00%", "yes"]);
    assert_eq!(tokens(lines[4]), ["fc.bias", "[2]", "2", "2", "100.00%", "no"]);
    assert!(lines[5].chars().all(|c| c == '-'));
    assert_eq!(tokens(lines[6]), ["global", "18", "9", "50.00%"]);
    assert_eq!(lines.len(), 7);
    // Right-aligned percentages end in one column.
    let ends: Vec<usize> =
        lines[1..5].iter().chain(&lines[6..]).map(|l| l.find('%').unwrap()).collect();
    assert!(ends.windows(2).all(|w| w[0] == w[1]), "{text}");
    Ok(())
}

#[test]
fn alternate_form_prints_the_tutorial_lines() -> TestResult {
    let (_vs, model) = pruned_model()?;
    let text = format!("{:#}", SparsityReport::from_model(&model, Some(&["*.weight"]))?);
    assert_eq!(
        text,
        "Sparsity in conv.weight: 37.50%\nSparsity in fc.weight: 50.00%\nGlobal sparsity: 42.86%\n"
    );
    Ok(())
}

#[test]
fn empty_report_is_valid() -> TestResult {
    let report = SparsityReport::from_tensors(std::iter::empty::<(&str, &Tensor)>())?;
    assert_eq!((report.numel, report.zeros, report.sparsity_percent), (0, 0, 0.0));
    assert!(report.to_string().contains("global"));
    Ok(())
}

#[cfg(feature = "plot")]
fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tch-prune-reports-{}-{name}", std::process::id()))
}

#[cfg(feature = "plot")]
#[test]
fn svg_chart_names_every_parameter() -> TestResult {
    let (_vs, model) = pruned_model()?;
    let report = SparsityReport::from_model(&model, None)?;
    let path = temp_path("chart.svg");
    report.write_svg(&path)?;
    let svg = std::fs::read_to_string(&path)?;
    std::fs::remove_file(&path)?;
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for p in &report.parameters {
        assert!(svg.contains(&p.name), "{} missing from the chart", p.name);
        assert!(svg.contains(&format!("{:.2}%", p.sparsity_percent)));
    }
    assert!(svg.contains("global 50.00%"));
    // One bar per parameter, drawn in the bar colour.
    assert_eq!(svg.matches("#4C72B0").count(), report.parameters.len());
    Ok(())
}

#[cfg(feature = "plot")]
#[test]
fn svg_chart_of_no_parameters_is_valid() -> TestResult {
    let report = SparsityReport::from_tensors(std::iter::empty::<(&str, &Tensor)>())?;
    let svg = report.to_svg()?;
    assert!(svg.starts_with("<svg") && svg.contains("global 0.00%"));
    Ok(())
}

#[cfg(feature = "plot")]
#[test]
fn svg_write_error_names_the_path() -> TestResult {
    let report = SparsityReport::from_tensors([("w", &values(&[0.0, 1.0], &[2]))])?;
    let path = temp_path("no-such-dir").join("chart.svg");
    let err = report.write_svg(&path).unwrap_err();
    assert!(matches!(&err, PruneError::Io { operation: "write", path: p, .. } if *p == path));
    Ok(())
}

#[cfg(feature = "plot-png")]
#[test]
fn png_chart_is_written() -> TestResult {
    let (_vs, model) = pruned_model()?;
    let report = SparsityReport::from_model(&model, None)?;
    let path = temp_path("chart.png");
    report.write_png(&path)?;
    let bytes = std::fs::read(&path)?;
    if std::env::var_os("TCH_PRUNE_KEEP_CHART").is_none() {
        std::fs::remove_file(&path)?;
    }
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 1000);
    Ok(())
}

/// Reports as hostile JSON or TOML (or a careless edit of the public fields) can make them:
/// each `(edit, field, value)` puts one out-of-range percentage in an otherwise valid report.
#[cfg(feature = "plot")]
fn hostile_reports() -> Result<Vec<(SparsityReport, String, f64)>, PruneError> {
    let base = SparsityReport::from_tensors([
        ("a", &values(&[0.0, 1.0], &[2])),
        ("b", &values(&[0.0, 0.0, 1.0, 2.0], &[4])),
    ])?;
    let mut out = Vec::new();
    for bad in
        [-50.0, -1e-9, 100.000001, 150.0, 1e300, f64::MAX, f64::NAN, f64::INFINITY, -f64::INFINITY]
    {
        let mut row = base.clone();
        row.parameters[1].sparsity_percent = bad;
        out.push((row, "parameters[1].sparsity_percent".to_string(), bad));
        let mut global = base.clone();
        global.sparsity_percent = bad;
        out.push((global, "sparsity_percent".to_string(), bad));
    }
    // Straight from JSON and TOML (TOML spells out NaN and infinities).
    let json = r#"{"parameters": [{"name": "w", "shape": [4], "numel": 4, "zeros": 9,
        "sparsity_percent": 225.0, "masked": true}], "numel": 4, "zeros": 9,
        "sparsity_percent": 225.0}"#;
    out.push((
        serde_json::from_str(json).expect("json"),
        "parameters[0].sparsity_percent".into(),
        225.0,
    ));
    let toml = "numel = 0\nzeros = 0\nsparsity_percent = -inf\nparameters = []\n";
    out.push((toml::from_str(toml).expect("toml"), "sparsity_percent".into(), f64::NEG_INFINITY));
    Ok(out)
}

/// The value an `InvalidReport` error carries equals `expected` (NaN included).
#[cfg(feature = "plot")]
#[track_caller]
fn assert_invalid_report(err: PruneError, field: &str, expected: f64) {
    match err {
        PruneError::InvalidReport { field: f, value, .. } => {
            assert_eq!(f, field);
            assert!(value == expected || (value.is_nan() && expected.is_nan()), "{value}");
        }
        other => panic!("{field}: expected InvalidReport, got {other:?}"),
    }
}

/// Out-of-range percentages used to overflow inside plotters (a panic); now the charts refuse
/// them with a typed error naming the field and the value, and the text forms still print.
#[cfg(feature = "plot")]
#[test]
fn charts_refuse_out_of_range_percentages() -> TestResult {
    for (report, field, value) in hostile_reports()? {
        let err = report.to_svg().unwrap_err();
        assert!(err.to_string().contains(&field), "{err}");
        assert_invalid_report(err, &field, value);
        #[cfg(feature = "plot-png")]
        assert_invalid_report(report.to_png().unwrap_err(), &field, value);
        let path = temp_path("hostile.svg");
        assert_invalid_report(report.write_svg(&path).unwrap_err(), &field, value);
        assert!(!path.exists(), "nothing is written for an invalid report");
        // The text forms never fail.
        assert!(report.to_string().contains("global"));
        assert!(format!("{report:#}").contains("Global sparsity"));
    }
    Ok(())
}

/// What is not a percentage is drawn as given, whatever it holds: counts up to `u64::MAX`, zero
/// totals with a non-zero sparsity, names of any length, `-0.0`, both ends of the range.
#[cfg(feature = "plot")]
#[test]
fn charts_draw_odd_but_valid_reports() -> TestResult {
    let mut report = SparsityReport::from_tensors([
        ("a", &values(&[0.0, 1.0], &[2])),
        ("b", &values(&[0.0, 0.0], &[2])),
    ])?;
    report.numel = u64::MAX;
    report.zeros = u64::MAX;
    report.sparsity_percent = 100.0;
    report.parameters[0].numel = 0;
    report.parameters[0].zeros = u64::MAX;
    report.parameters[0].sparsity_percent = -0.0;
    report.parameters[1].name = "x".repeat(100_000);
    report.parameters[1].shape = vec![i64::MAX, i64::MIN];
    let svg = report.to_svg()?;
    assert!(svg.starts_with("<svg") && svg.contains(&u64::MAX.to_string()));
    #[cfg(feature = "plot-png")]
    assert_eq!(&report.to_png()?[1..4], b"PNG");
    assert!(report.to_string().contains(&u64::MAX.to_string()));
    Ok(())
}

/// A report with very many rows (as hostile JSON can hold) would need a PNG buffer of many
/// gigabytes (the allocation aborts the process when it fails): `to_png` refuses charts of
/// more than 2^28 pixels with a typed error instead. SVG has no such buffer.
#[cfg(feature = "plot-png")]
#[test]
fn png_chart_refuses_a_huge_report() -> TestResult {
    let mut report = SparsityReport::from_tensors([("w", &values(&[0.0, 1.0], &[2]))])?;
    let row = report.parameters[0].clone();
    report.parameters = vec![row; 100_000];
    match report.to_png().unwrap_err() {
        PruneError::InvalidReport { field, value, .. } => {
            assert_eq!((field.as_str(), value), ("parameters", 100_000.0));
        }
        other => panic!("expected InvalidReport, got {other:?}"),
    }
    Ok(())
}
