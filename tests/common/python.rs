//! Running the repository's PyTorch scripts (`scripts/*.py`) from the tests, with the python of
//! `$TCH_PRUNE_PYTHON` (set by `scripts/env.sh`; `python3` otherwise), and a temporary directory
//! for the files they write. The tests that use them never skip: without a python that imports
//! torch and safetensors they fail and say why.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use tch::Tensor;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("tch-prune-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory as a script argument.
    pub fn arg(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `scripts/<script>` with `args` and returns its stdout; panics with its output when
/// python cannot be started or the script fails.
pub fn run_script(script: &str, args: &[&str]) -> String {
    let python = std::env::var("TCH_PRUNE_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(script);
    let output = Command::new(&python).arg(&path).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {python:?} ({e}). This test needs a python with torch and safetensors: \
             run it through scripts/env.sh, which sets TCH_PRUNE_PYTHON"
        )
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let hint = if output.status.code() == Some(2) {
            "\n(torch or safetensors does not import: run the tests through scripts/env.sh)"
        } else {
            ""
        };
        panic!(
            "{python} {} {} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}{hint}",
            path.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
}

/// The tensors of a `.safetensors` file, by name.
pub fn read_safetensors(path: &Path) -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// Runs `scripts/global_parity.py extra-scores` and returns what it wrote (its docstring lists
/// the keys).
pub fn global_extra_scores() -> BTreeMap<String, Tensor> {
    let dir = TempDir::new("global-extra-scores");
    let report = run_script("global_parity.py", &["extra-scores", dir.arg()]);
    assert!(report.starts_with("extra-scores:"), "{report}");
    read_safetensors(&dir.join("global.safetensors"))
}
