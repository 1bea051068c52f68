//! Bad input to offline pruning: each case returns its typed error, naming the file and the
//! tensor, and writes nothing (no output, no temporary file left behind).

mod common;

use std::path::{Path, PathBuf};

use common::offline::{fixtures, TempDir};
use tch_prune::offline::{
    compress, densify, prune, Checkpoint, Format, NoProgress, OfflineError, OfflineMethod,
    PruneOptions, Scope, Selection, WandaPattern,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn global() -> PruneOptions {
    PruneOptions::new(OfflineMethod::Magnitude { scope: Scope::Global, amount: 0.5.into() })
}

/// Copies a fixture into `dir`.
fn copy(name: &str, dir: &TempDir) -> PathBuf {
    let from = fixtures().join(name);
    let to = dir.join(name);
    if from.is_dir() {
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap().flatten() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    } else {
        std::fs::copy(&from, &to).unwrap();
    }
    to
}

/// A safetensors file with the given header text and `data_len` zero bytes of data.
fn raw_file(path: &Path, header: &str, data_len: usize) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(std::iter::repeat_n(0u8, data_len));
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupt_truncated_and_unknown_dtype_files_name_the_file_and_tensor() -> TestResult {
    let dir = TempDir::new("corrupt");
    let bad_json = dir.join("bad.safetensors");
    raw_file(&bad_json, "{not json", 0);
    match Checkpoint::open(&bad_json) {
        Err(OfflineError::Header { file, .. }) => assert_eq!(file, bad_json),
        other => panic!("{other:?}"),
    }
    let unknown = dir.join("unknown.safetensors");
    raw_file(&unknown, r#"{"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,2]}}"#, 2);
    match Checkpoint::open(&unknown) {
        Err(OfflineError::UnknownDtype { file, tensor, dtype }) => {
            assert_eq!((file, tensor.as_str(), dtype.as_str()), (unknown.clone(), "w", "Q7"))
        }
        other => panic!("{other:?}"),
    }
    let wrong_size = dir.join("size.safetensors");
    raw_file(&wrong_size, r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, 8);
    assert!(
        matches!(Checkpoint::open(&wrong_size), Err(OfflineError::Header { tensor: Some(t), .. }) if t == "w")
    );

    let truncated = copy("single.safetensors", &dir);
    let len = std::fs::metadata(&truncated)?.len();
    std::fs::OpenOptions::new().write(true).open(&truncated)?.set_len(len - 10)?;
    let last = {
        let dir2 = TempDir::new("last");
        let ok = copy("single.safetensors", &dir2);
        Checkpoint::open(&ok)?.tensors().last().unwrap().1.name.clone()
    };
    match Checkpoint::open(&truncated) {
        Err(OfflineError::Truncated { file, tensor, needed, actual }) => {
            assert_eq!((file, tensor, needed, actual), (truncated.clone(), last, len, len - 10));
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[test]
fn sharded_index_errors_name_the_shard_and_tensor() -> TestResult {
    let dir = TempDir::new("shards");
    let sharded = copy("sharded", &dir);
    std::fs::remove_file(sharded.join("model-00002-of-00003.safetensors"))?;
    match Checkpoint::open(&sharded) {
        Err(OfflineError::MissingShard { shard, tensor, .. }) => {
            assert!(shard.ends_with("model-00002-of-00003.safetensors"));
            assert!(tensor.starts_with("layers.1."), "{tensor}");
        }
        other => panic!("{other:?}"),
    }
    // A tensor the index places in the wrong shard.
    let dir2 = TempDir::new("shards2");
    let sharded = copy("sharded", &dir2);
    let index = sharded.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index)?.replacen(
        "\"lm_head.weight\": \"model-00003-of-00003.safetensors\"",
        "\"lm_head.weight\": \"model-00001-of-00003.safetensors\"",
        1,
    );
    std::fs::write(&index, text)?;
    assert!(
        matches!(Checkpoint::open(&sharded), Err(OfflineError::Index { tensor: Some(t), .. }) if t == "lm_head.weight")
    );
    Ok(())
}

#[test]
fn bad_runs_write_nothing() -> TestResult {
    let dir = TempDir::new("nothing");
    let single = copy("single.safetensors", &dir);
    let ckpt = Checkpoint::open(&single)?;
    let before = dir.listing();
    let out = dir.join("out.safetensors");

    // A pattern that matches nothing.
    let options = global().selection(Selection::new().include(["*.wieght"]));
    match prune(&ckpt, &out, &options, &NoProgress) {
        Err(OfflineError::PatternMatchesNothing { pattern, .. }) => assert_eq!(pattern, "*.wieght"),
        other => panic!("{other:?}"),
    }
    // N:M groups that do not divide a selected tensor (a.bias has 64 entries: 64 % 3 != 0).
    let options = PruneOptions::new(OfflineMethod::SemiStructured { n: 1, m: 3 })
        .selection(Selection::new().include(["a.bias"]).ranks(1, None));
    assert!(
        matches!(prune(&ckpt, &out, &options, &NoProgress), Err(OfflineError::Unsupported { tensor, .. }) if tensor == "a.bias")
    );
    // Norms of the wrong shape for one tensor.
    let norms = dir.join("norms.safetensors");
    let ones = tch::Tensor::ones([47], tch::kind::FLOAT_CPU);
    tch::Tensor::write_safetensors(&[("a.weight", &ones)], &norms)?;
    let wanda =
        OfflineMethod::Wanda { norms: norms.clone(), pattern: WandaPattern::Row { sparsity: 0.5 } };
    let options = PruneOptions::new(wanda).selection(Selection::new().include(["a.weight"]));
    match prune(&ckpt, &out, &options, &NoProgress) {
        Err(OfflineError::Norms { file, tensor, .. }) => {
            assert_eq!((file, tensor.as_str()), (norms.clone(), "a.weight"))
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(&norms)?;
    // Output == input, for a file and for a sharded folder.
    assert!(matches!(
        prune(&ckpt, &single, &global(), &NoProgress),
        Err(OfflineError::OutputIsInput { .. })
    ));
    assert!(matches!(
        prune(&ckpt, &dir.0, &global(), &NoProgress),
        Err(OfflineError::OutputIsInput { .. })
    ));
    // An amount out of range.
    let options =
        PruneOptions::new(OfflineMethod::Magnitude { scope: Scope::Tensor, amount: 1.5.into() });
    assert!(matches!(prune(&ckpt, &out, &options, &NoProgress), Err(OfflineError::Prune(_))));
    assert_eq!(dir.listing(), before, "nothing written");

    let sharded = copy("sharded", &dir);
    let before = dir.listing();
    let sharded_ckpt = Checkpoint::open(&sharded)?;
    assert!(matches!(
        prune(&sharded_ckpt, &sharded, &global(), &NoProgress),
        Err(OfflineError::OutputIsInput { .. })
    ));
    assert_eq!(dir.listing(), before);
    Ok(())
}

#[test]
fn a_failure_while_writing_leaves_no_partial_output() -> TestResult {
    // A bitmask file whose row offsets disagree with its bitmask: densify fails in the middle
    // of writing the second shard's data; neither the output folder nor temporary files remain.
    let dir = TempDir::new("midway");
    let sharded = copy("sharded", &dir);
    let packed = dir.join("packed");
    compress(
        &Checkpoint::open(&sharded)?,
        &packed,
        &Selection::new(),
        Format::Bitmask,
        &NoProgress,
    )?;
    let victim = packed.join("model-00002-of-00003.safetensors");
    let ckpt = Checkpoint::open(&packed)?;
    let offsets =
        ckpt.tensors().find(|(_, t)| t.name == "layers.1.up.weight.row_offsets").unwrap().1.clone();
    let mut bytes = std::fs::read(&victim)?;
    bytes[offsets.start as usize + 8] ^= 0x01; // row 1 now claims another start
    std::fs::write(&victim, bytes)?;
    let before = dir.listing();
    let out = dir.join("dense");
    match densify(&Checkpoint::open(&packed)?, &out, &NoProgress) {
        Err(OfflineError::Compressed { file, tensor, .. }) => {
            assert_eq!((file, tensor.as_str()), (victim.clone(), "layers.1.up.weight"))
        }
        other => panic!("{other:?}"),
    }
    assert!(!out.exists());
    assert_eq!(dir.listing(), before);
    Ok(())
}
