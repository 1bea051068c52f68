//! Helpers for the offline-pruning tests: temporary folders, the fixture script
//! (`scripts/offline_fixtures.py`, run with `$TCH_PRUNE_PYTHON`), and reading outputs back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tch::{Kind, Tensor};

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir()
            .join(format!("tch-prune-offline-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        Self(path)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Every entry of the folder (recursively), to check that nothing was written.
    pub fn listing(&self) -> Vec<String> {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                out.push(e.path().display().to_string());
                if e.path().is_dir() {
                    walk(&e.path(), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &mut out);
        out.sort();
        out
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn python() -> String {
    std::env::var("TCH_PRUNE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs `scripts/offline_fixtures.py` with `args`; panics with its output on failure (the tests
/// never skip: they need the pinned torch, see scripts/env.sh).
pub fn run_script(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/offline_fixtures.py");
    let output = Command::new(python()).arg(&script).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {:?} ({e}); run the tests through scripts/env.sh", python())
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{stdout}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The fixtures, made once per test binary (kept for the process; each test copies what it
/// modifies).
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("tch-prune-offline-fixtures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        run_script(&["make", dir.to_str().unwrap()]);
        dir
    })
}

/// The tensors of a `.safetensors` file by name (tch's reader).
pub fn read(path: &Path) -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// The tensors of a file or a sharded folder.
pub fn read_all(path: &Path) -> BTreeMap<String, Tensor> {
    if path.is_dir() {
        let mut all = BTreeMap::new();
        for e in std::fs::read_dir(path).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "safetensors") {
                all.extend(read(&e.path()));
            }
        }
        all
    } else {
        read(path)
    }
}

/// `t != 0` as a bool tensor (the kept entries, for inputs without zeros).
pub fn kept(t: &Tensor) -> Tensor {
    t.ne(0.0)
}

/// `mask` as bool.
pub fn as_bool(mask: &Tensor) -> Tensor {
    mask.to_kind(Kind::Bool)
}
