//! Reading tensors in bounded windows through memory maps, and the key streams the threshold
//! passes scan.

use std::fs::File;
use std::path::Path;

use super::dtype::{for_each_key, Float, KeySpace};
use super::error::{io_error, OfflineResult};
use super::header::TensorInfo;
use super::progress::Progress;
use super::threshold::KeyStream;
use crate::kernels::mmap::map_window;

/// Default window size: 8 MiB of tensor data mapped at a time.
///
/// ```
/// assert_eq!(tch_prune::offline::DEFAULT_WINDOW_BYTES, 8 << 20);
/// ```
pub const DEFAULT_WINDOW_BYTES: usize = 8 << 20;

/// Calls `f(first_element, bytes)` on consecutive windows of `tensor`'s data, each a whole
/// number of `align_bytes` (the last one possibly shorter) and at most `window` bytes unless
/// `align_bytes` is larger. Only one window is mapped at a time.
pub(crate) fn for_each_window(
    file: &File,
    path: &Path,
    tensor: &TensorInfo,
    elem: usize,
    align_bytes: usize,
    window: usize,
    mut f: impl FnMut(u64, &[u8]) -> OfflineResult<()>,
) -> OfflineResult<()> {
    let align = align_bytes.max(1);
    let step = (window / align).max(1) * align;
    let mut done = 0u64;
    while done < tensor.len {
        let len = (tensor.len - done).min(step as u64) as usize;
        let map = map_window(file, tensor.start + done, len).map_err(io_error("map", path))?;
        f(done / elem as u64, &map)?;
        done += len as u64;
    }
    Ok(())
}

/// The open shard files of a checkpoint, by shard index.
pub(crate) struct Files {
    pub(crate) files: Vec<(File, std::path::PathBuf)>,
}

impl Files {
    /// Opens every shard of `paths`.
    pub(crate) fn open(paths: impl IntoIterator<Item = std::path::PathBuf>) -> OfflineResult<Self> {
        let files = paths
            .into_iter()
            .map(|p| Ok((File::open(&p).map_err(io_error("open", &p))?, p)))
            .collect::<OfflineResult<Vec<_>>>()?;
        Ok(Self { files })
    }
}

/// The magnitude keys of a list of tensors, in order, in one key space.
pub(crate) struct MagnitudeKeys<'a> {
    pub(crate) files: &'a Files,
    /// `(shard, tensor, dtype)` in stream order.
    pub(crate) tensors: Vec<(usize, &'a TensorInfo, Float)>,
    pub(crate) space: KeySpace,
    pub(crate) window: usize,
    pub(crate) progress: &'a dyn Progress,
}

impl KeyStream for MagnitudeKeys<'_> {
    fn scan<F: FnMut(u64)>(&mut self, mut f: F) -> OfflineResult<()> {
        for &(shard, info, float) in &self.tensors {
            let (file, path) = &self.files.files[shard];
            for_each_window(
                file,
                path,
                info,
                float.size(),
                float.size(),
                self.window,
                |_, bytes| {
                    for_each_key(float, self.space, bytes, |_, k| f(k));
                    self.progress.advance(bytes.len() as u64);
                    Ok(())
                },
            )?;
        }
        Ok(())
    }
}

/// The random keys of one tensor: a seeded hash of each index (no data is read).
pub(crate) struct RandomKeys {
    pub(crate) seed: u64,
    pub(crate) numel: u64,
}

impl KeyStream for RandomKeys {
    fn scan<F: FnMut(u64)>(&mut self, mut f: F) -> OfflineResult<()> {
        for i in 0..self.numel {
            f(random_key(self.seed, i));
        }
        Ok(())
    }
}

/// A 32-bit uniform key for entry `i` under `seed` (splitmix64's finalizer).
#[inline(always)]
pub(crate) fn random_key(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) >> 32
}

/// A per-tensor seed: the user's seed mixed with the tensor's name (FNV-1a), so tensors get
/// independent draws that do not depend on their position.
pub(crate) fn tensor_seed(seed: u64, name: &str) -> u64 {
    let mut h = 0xCBF2_9CE4_8422_2325u64 ^ seed;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}
