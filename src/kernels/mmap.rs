//! Read-only memory maps of file windows, for offline pruning ([`crate::offline`]).
//!
//! Offline pruning reads checkpoints through maps of bounded windows (a few MiB at a time)
//! that are dropped as soon as they are processed: the pages of a mapped file count towards
//! the process's resident set while the map exists, so mapping a whole 8 GB shard would make
//! the peak RSS grow with the checkpoint.

use std::fs::File;

use memmap2::{Mmap, MmapOptions};

/// Maps `len` bytes of `file` from byte `offset`, read-only.
///
/// The caller must keep the file unmodified while the map is alive; see the SAFETY note.
pub(crate) fn map_window(file: &File, offset: u64, len: usize) -> std::io::Result<Mmap> {
    let mut options = MmapOptions::new();
    // Populate: fault the window in with one call instead of one page fault per 4 KiB.
    options.offset(offset).len(len).populate();
    // SAFETY: memmap2 maps are unsafe because another process could truncate or modify the file
    // while it is mapped, making the bytes change under a `&[u8]` (or fault). Offline pruning
    // only maps checkpoints it reads and never writes (outputs are separate temporary files,
    // and `OfflineError::OutputIsInput` refuses to write over an input), and the window's
    // bounds were checked against the file's length when the header was validated. A file
    // changed by someone else during a run is outside what any reader can guard against; the
    // documentation of `crate::offline` says so.
    let map = unsafe { options.map(file)? };
    // Sequential access: let the kernel read ahead. Advice failures are harmless.
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(map)
}
