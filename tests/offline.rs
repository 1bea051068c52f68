//! Offline pruning against the in-memory path and the Python references, on small
//! checkpoints written by `scripts/offline_fixtures.py` (single file with f32/bf16/f16/f64
//! weights, a bias and an int tensor; a three-shard bf16 checkpoint with its index): the masks
//! of global and per-tensor L1, N:M and Wanda, and the output loaded by PyTorch
//! (`safetensors.torch.load_file`) equal to the input times the mask.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::offline::{as_bool, fixtures, kept, read, read_all, run_script, TempDir};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};
use tch_prune::offline::{
    dry_run, prune, Checkpoint, NoProgress, OfflineMethod, PruneOptions, Scope, Selection,
    WandaPattern, METADATA_KEY,
};
use tch_prune::{HardMask, L1Unstructured, Pruner, PruningMethod, SemiStructured};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The selected (rank >= 2, float) tensor names of a checkpoint, in checkpoint order.
fn selected(ckpt: &Checkpoint) -> Vec<String> {
    ckpt.tensors()
        .filter(|(_, t)| t.shape.len() >= 2 && !t.dtype.to_string().starts_with('I'))
        .map(|(_, t)| t.name.clone())
        .collect()
}

/// Runs `prune` and returns the output's tensors.
fn run(input: &Path, out: &Path, method: OfflineMethod) -> BTreeMap<String, Tensor> {
    let ckpt = Checkpoint::open(input).unwrap();
    prune(&ckpt, out, &PruneOptions::new(method), &NoProgress).unwrap();
    read_all(out)
}

/// Writes `masks` (as f32) and has PyTorch check that `out == input * mask` and that every
/// other tensor is copied bit for bit.
fn verify_with_pytorch(dir: &TempDir, out: &Path, input: &Path, masks: &BTreeMap<String, Tensor>) {
    let path = dir.join("masks.safetensors");
    let f32_masks: Vec<(String, Tensor)> =
        masks.iter().map(|(n, m)| (n.clone(), m.to_kind(Kind::Float))).collect();
    Tensor::write_safetensors(&f32_masks, &path).unwrap();
    let args = ["verify", out.to_str().unwrap(), input.to_str().unwrap(), path.to_str().unwrap()];
    assert_eq!(run_script(&args).trim(), "ok");
}

/// A VarStore holding `tensors` (as f32) under their dotted names.
fn var_store(tensors: &BTreeMap<String, Tensor>, names: &[String]) -> VarStore {
    let vs = VarStore::new(Device::Cpu);
    for name in names {
        let mut path = vs.root();
        let parts: Vec<&str> = name.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            path = path / *p;
        }
        let _ = path.var_copy(parts[parts.len() - 1], &tensors[name].to_kind(Kind::Float));
    }
    vs
}

#[test]
fn global_magnitude_equals_in_memory_global_unstructured_and_loads_in_pytorch() -> TestResult {
    let input = fixtures().join("single.safetensors");
    let dir = TempDir::new("global");
    let out = dir.join("out.safetensors");
    let ckpt = Checkpoint::open(&input)?;
    let names = selected(&ckpt);
    assert_eq!(names.len(), 5, "{names:?}");
    let tensors = read(&input);
    let result =
        run(&input, &out, OfflineMethod::Magnitude { scope: Scope::Global, amount: 0.6.into() });

    let vs = var_store(&tensors, &names);
    let mut hard = HardMask::new(&vs);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    hard.global_unstructured(&refs, L1Unstructured::new(0.6)?, &[])?;
    let mut masks = BTreeMap::new();
    let (mut total, mut pruned) = (0i64, 0i64);
    for name in &names {
        let expected = as_bool(hard.mask(name).unwrap());
        assert!(kept(&result[name]).equal(&expected), "{name}");
        total += expected.numel() as i64;
        pruned += expected.numel() as i64 - expected.sum(Kind::Int64).int64_value(&[]);
        masks.insert(name.clone(), expected);
    }
    // Round half to even of 0.6 * total.
    assert_eq!(pruned, (0.6 * total as f64).round_ties_even() as i64);
    verify_with_pytorch(&dir, &out, &input, &masks);
    Ok(())
}

#[test]
fn per_tensor_and_per_row_magnitude_equal_l1_unstructured() -> TestResult {
    let input = fixtures().join("single.safetensors");
    let tensors = read(&input);
    let names = selected(&Checkpoint::open(&input)?);
    let dir = TempDir::new("tensor");
    let per_tensor = run(
        &input,
        &dir.join("t.safetensors"),
        OfflineMethod::Magnitude { scope: Scope::Tensor, amount: 0.3.into() },
    );
    let per_row = run(
        &input,
        &dir.join("r.safetensors"),
        OfflineMethod::Magnitude { scope: Scope::Row, amount: 5.into() },
    );
    let mut masks = BTreeMap::new();
    for name in &names {
        // f64 holds every value of every dtype exactly.
        let w = tensors[name].to_kind(Kind::Double);
        let expected = as_bool(&L1Unstructured::new(0.3)?.compute_mask(&w, &w.ones_like())?);
        assert!(kept(&per_tensor[name]).equal(&expected), "{name}");
        masks.insert(name.clone(), expected);
        let rows: Vec<Tensor> = (0..w.size()[0])
            .map(|r| {
                let row = w.get(r);
                as_bool(
                    &L1Unstructured::new(5).unwrap().compute_mask(&row, &row.ones_like()).unwrap(),
                )
            })
            .collect();
        assert!(kept(&per_row[name]).equal(&Tensor::stack(&rows, 0)), "{name}");
    }
    verify_with_pytorch(&dir, &dir.join("t.safetensors"), &input, &masks);
    Ok(())
}

#[test]
fn two_four_equals_weight_norm_sparsifier_and_semi_structured() -> TestResult {
    let refs = read(&fixtures().join("refs.safetensors"));
    let dir = TempDir::new("nm");
    for (input, out) in [
        (fixtures().join("single.safetensors"), dir.join("o.safetensors")),
        (fixtures().join("sharded"), dir.join("sharded")),
    ] {
        let tensors = read_all(&input);
        let result = run(&input, &out, OfflineMethod::SemiStructured { n: 2, m: 4 });
        let names = selected(&Checkpoint::open(&input)?);
        let mut masks = BTreeMap::new();
        for name in &names {
            let reference = as_bool(&refs[&format!("nm24/{name}")]);
            assert!(kept(&result[name]).equal(&reference), "{name} vs WeightNormSparsifier");
            let w = &tensors[name];
            let ours = as_bool(&SemiStructured::new(2, 4)?.compute_mask(w, &w.ones_like())?);
            assert!(ours.equal(&reference), "{name}: SemiStructured vs WeightNormSparsifier");
            masks.insert(name.clone(), reference);
        }
        verify_with_pytorch(&dir, &out, &input, &masks);
    }
    Ok(())
}

#[test]
fn wanda_equals_the_reference_rules() -> TestResult {
    let refs = read(&fixtures().join("refs.safetensors"));
    let norms = fixtures().join("norms.safetensors");
    let dir = TempDir::new("wanda");
    for input in [fixtures().join("sharded"), fixtures().join("single.safetensors")] {
        // The reference scores f64 weights in f64; ours are f32 (see crate::offline).
        let selection =
            Selection::new().exclude(if input.is_dir() { vec![] } else { vec!["d.weight"] });
        for (key, pattern) in [
            ("wanda_row", WandaPattern::Row { sparsity: 0.5 }),
            ("wanda_24", WandaPattern::SemiStructured { n: 2, m: 4 }),
        ] {
            let out = dir.join(&format!("{key}-{}", input.file_name().unwrap().to_string_lossy()));
            let method = OfflineMethod::Wanda { norms: norms.clone(), pattern };
            let ckpt = Checkpoint::open(&input)?;
            let summary = prune(
                &ckpt,
                &out,
                &PruneOptions::new(method).selection(selection.clone()),
                &NoProgress,
            )?;
            let result = read_all(&out);
            assert!(!summary.tensors.is_empty());
            for t in &summary.tensors {
                let reference = as_bool(&refs[&format!("{key}/{}", t.name)]);
                assert!(kept(&result[&t.name]).equal(&reference), "{key} {}", t.name);
                assert_eq!(
                    t.pruned as i64,
                    reference.numel() as i64 - reference.sum(Kind::Int64).int64_value(&[])
                );
            }
        }
    }
    Ok(())
}

#[test]
fn sharded_output_keeps_names_layout_index_and_records_settings() -> TestResult {
    let input = fixtures().join("sharded");
    let dir = TempDir::new("sharded");
    let out = dir.join("out");
    let ckpt = Checkpoint::open(&input)?;
    assert!(ckpt.is_sharded());
    assert_eq!(ckpt.shards().len(), 3);
    let names = selected(&ckpt);
    let tensors = read_all(&input);
    let result =
        run(&input, &out, OfflineMethod::Magnitude { scope: Scope::Global, amount: 0.5.into() });
    // Same files, same index (byte for byte), same names per shard.
    for shard in ckpt.shards() {
        let written = read(&out.join(shard.file_name()));
        let expected: Vec<&String> = shard.tensors.iter().map(|t| &t.name).collect();
        assert_eq!(written.keys().collect::<Vec<_>>().len(), expected.len());
        let out_ckpt = Checkpoint::open(out.join(shard.file_name()))?;
        let out_names: Vec<&String> =
            out_ckpt.shards()[0].tensors.iter().map(|t| &t.name).collect();
        assert_eq!(out_names, expected, "data order kept");
        assert!(out_ckpt.shards()[0].metadata.contains_key(METADATA_KEY));
        assert_eq!(out_ckpt.shards()[0].metadata.get("format").map(String::as_str), Some("pt"));
    }
    let index = |p: &Path| std::fs::read(p.join("model.safetensors.index.json")).unwrap();
    assert_eq!(index(&input), index(&out));
    // Global mask equals the in-memory one; the 1-D norm and the int tensor are untouched.
    let vs = var_store(&tensors, &names);
    let mut hard = HardMask::new(&vs);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    hard.global_unstructured(&refs, L1Unstructured::new(0.5)?, &[])?;
    let mut masks = BTreeMap::new();
    for name in &names {
        let expected = as_bool(hard.mask(name).unwrap());
        assert!(kept(&result[name]).equal(&expected), "{name}");
        masks.insert(name.clone(), expected);
    }
    verify_with_pytorch(&dir, &out, &input, &masks);
    Ok(())
}

#[test]
fn ties_at_the_threshold_go_in_checkpoint_order() -> TestResult {
    // Two bf16 tensors of equal magnitudes (all ±1): any cut falls among ties. The first k in
    // checkpoint order (the file's data order, then index) are pruned, exactly k of them.
    let dir = TempDir::new("ties");
    let input = dir.join("ties.safetensors");
    let a = Tensor::from_slice(&[1.0f32, -1.0, 1.0, -1.0, 1.0, 1.0])
        .reshape([2, 3])
        .to_kind(Kind::BFloat16);
    let b = Tensor::from_slice(&[-1.0f32, 1.0, 1.0, 1.0, -1.0, 0.5])
        .reshape([3, 2])
        .to_kind(Kind::BFloat16);
    Tensor::write_safetensors(&[("a", &a), ("b", &b)], &input)?;
    let order: Vec<String> =
        Checkpoint::open(&input)?.tensors().map(|(_, t)| t.name.clone()).collect();
    let out = run(
        &input,
        &dir.join("g.safetensors"),
        OfflineMethod::Magnitude { scope: Scope::Global, amount: 5.into() },
    );
    // 0.5 goes first, then the first four ±1 in checkpoint order.
    let mut left = 4;
    for name in &order {
        let got = Vec::<f32>::try_from(&out[name].to_kind(Kind::Float).reshape([-1]))?;
        let orig = Vec::<f32>::try_from(
            &(if name == "a" { &a } else { &b }).to_kind(Kind::Float).reshape([-1]),
        )?;
        for (g, o) in got.iter().zip(&orig) {
            let expect_pruned = o.abs() == 0.5
                || (left > 0 && {
                    left -= 1;
                    true
                });
            assert_eq!(*g == 0.0, expect_pruned, "{name}: {got:?}");
        }
    }
    // Per tensor: the same rule inside each tensor, and the same mask as in memory (f32 fast
    // path needs 32768 entries, so compare with the rule directly).
    let out = run(
        &input,
        &dir.join("t.safetensors"),
        OfflineMethod::Magnitude { scope: Scope::Tensor, amount: 2.into() },
    );
    let got = Vec::<f32>::try_from(&out["a"].to_kind(Kind::Float).reshape([-1]))?;
    assert_eq!(got, vec![0.0, 0.0, 1.0, -1.0, 1.0, 1.0]);
    Ok(())
}

#[test]
fn random_prunes_exactly_the_amount_reproducibly_and_dry_run_counts() -> TestResult {
    let input = fixtures().join("single.safetensors");
    let dir = TempDir::new("random");
    let method = OfflineMethod::Random { amount: 0.25.into(), seed: 7 };
    let first = run(&input, &dir.join("1.safetensors"), method.clone());
    let second = run(&input, &dir.join("2.safetensors"), method.clone());
    let other = run(
        &input,
        &dir.join("3.safetensors"),
        OfflineMethod::Random { amount: 0.25.into(), seed: 8 },
    );
    let ckpt = Checkpoint::open(&input)?;
    for name in selected(&ckpt) {
        let m = kept(&first[&name]);
        let n = m.numel() as i64;
        assert_eq!(
            n - m.sum(Kind::Int64).int64_value(&[]),
            (0.25 * n as f64).round_ties_even() as i64
        );
        assert!(m.equal(&kept(&second[&name])));
        assert!(!m.equal(&kept(&other[&name])), "{name}: another seed, another draw");
    }
    let (planned, total) = dry_run(&ckpt, &PruneOptions::new(method))?;
    assert_eq!(planned.len(), 5);
    assert_eq!(total, planned.iter().map(|p| p.to_prune.unwrap()).sum::<u64>());
    let (_, global) = dry_run(
        &ckpt,
        &PruneOptions::new(OfflineMethod::Magnitude { scope: Scope::Global, amount: 0.5.into() }),
    )?;
    let numel: u64 = planned.iter().map(|p| p.shape.iter().product::<usize>() as u64).sum();
    assert_eq!(global, numel / 2);
    Ok(())
}
