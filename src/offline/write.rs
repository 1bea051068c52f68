//! Atomic output: every file is written under a temporary name next to its final place and
//! renamed only when all of them are complete, so a failed or interrupted run leaves no
//! partial output (at worst a `.tch-prune-tmp` file, if the process is killed), and an input
//! is never overwritten.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::checkpoint::Checkpoint;
use super::error::{io_error, OfflineError, OfflineResult};

/// Files being written, renamed into place by [`Staged::commit`] and removed if dropped
/// before that.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    files: Vec<(PathBuf, PathBuf)>,
    created_dir: Option<PathBuf>,
}

impl Staged {
    /// Creates the folder `dir` if it does not exist (removed again if the run fails).
    pub(crate) fn ensure_dir(&mut self, dir: &Path) -> OfflineResult<()> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
            self.created_dir = Some(dir.to_path_buf());
        }
        Ok(())
    }

    /// A new temporary file that [`commit`](Self::commit) will rename to `target`.
    pub(crate) fn create(&mut self, target: &Path) -> OfflineResult<File> {
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = target.with_file_name(format!(".{name}.{}.tch-prune-tmp", std::process::id()));
        let file = File::create(&tmp).map_err(io_error("create", &tmp))?;
        self.files.push((tmp, target.to_path_buf()));
        Ok(file)
    }

    /// Writes `bytes` as the whole of `target`.
    pub(crate) fn write_all(&mut self, target: &Path, bytes: &[u8]) -> OfflineResult<()> {
        let mut file = self.create(target)?;
        file.write_all(bytes).map_err(io_error("write", target))
    }

    /// Flushes every file to disk and renames it into place; returns the final paths.
    pub(crate) fn commit(mut self) -> OfflineResult<Vec<PathBuf>> {
        for (tmp, _) in &self.files {
            let f = File::options().write(true).open(tmp).map_err(io_error("open", tmp))?;
            f.sync_all().map_err(io_error("sync", tmp))?;
        }
        let files = std::mem::take(&mut self.files);
        let mut done = Vec::with_capacity(files.len());
        for (i, (tmp, target)) in files.iter().enumerate() {
            if let Err(e) = std::fs::rename(tmp, target) {
                // Leave nothing half-done that can be undone: the rest is removed.
                for (t, _) in &files[i..] {
                    let _ = std::fs::remove_file(t);
                }
                return Err(OfflineError::Io {
                    operation: "rename into",
                    path: target.clone(),
                    source: e,
                });
            }
            done.push(target.clone());
        }
        self.created_dir = None;
        Ok(done)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
        if let Some(dir) = &self.created_dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Where the output files go: for a single-file input, `output` itself (or
/// `output/<input name>` when `output` is a folder); for a sharded input, the folder `output`
/// with the shards' file names. Fails if a target is an input file.
pub(crate) fn output_layout(
    ckpt: &Checkpoint,
    output: &Path,
) -> OfflineResult<(PathBuf, Vec<PathBuf>)> {
    let targets: Vec<PathBuf> = if ckpt.is_sharded() {
        ckpt.shards().iter().map(|s| output.join(s.file_name())).collect()
    } else {
        let name = ckpt.shards()[0].file_name();
        vec![if output.is_dir() { output.join(name) } else { output.to_path_buf() }]
    };
    let dir = if ckpt.is_sharded() {
        output.to_path_buf()
    } else {
        targets[0].parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let inputs: Vec<PathBuf> = ckpt.files().iter().filter_map(|f| f.canonicalize().ok()).collect();
    let same_dir = ckpt.is_sharded()
        && match (output.canonicalize(), ckpt.path().parent().map(|p| p.canonicalize())) {
            (Ok(a), Some(Ok(b))) => a == b,
            _ => false,
        };
    let clash = targets.iter().any(|t| {
        let resolved = t.canonicalize().ok().or_else(|| {
            let parent = t.parent()?.canonicalize().ok()?;
            Some(parent.join(t.file_name()?))
        });
        resolved.is_some_and(|r| inputs.contains(&r))
    });
    if same_dir || clash {
        return Err(OfflineError::OutputIsInput {
            input: ckpt.path().to_path_buf(),
            output: output.to_path_buf(),
        });
    }
    Ok((dir, targets))
}

/// A buffered writer into a region of a file, by position (several can fill one file's regions
/// at once, each at its own offset).
pub(crate) struct RegionWriter<'f> {
    file: &'f File,
    path: &'f Path,
    pos: u64,
    buf: Vec<u8>,
}

impl<'f> RegionWriter<'f> {
    /// A writer starting at byte `pos` of `file`.
    pub(crate) fn new(file: &'f File, path: &'f Path, pos: u64) -> Self {
        Self { file, path, pos, buf: Vec::with_capacity(1 << 20) }
    }

    /// Appends `bytes`.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> OfflineResult<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes out what is buffered.
    pub(crate) fn flush(&mut self) -> OfflineResult<()> {
        write_at(self.file, &self.buf, self.pos).map_err(io_error("write", self.path))?;
        self.pos += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], pos: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, pos)
}

#[cfg(windows)]
fn write_at(file: &File, mut bytes: &[u8], mut pos: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, bytes, pos)?;
        bytes = &bytes[n..];
        pos += n as u64;
    }
    Ok(())
}
