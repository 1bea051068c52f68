//! CSR with relative 8-bit indices (Deep Compression): per stored entry its value and the
//! number of zeros skipped since the previous stored entry of its row, with an explicit zero
//! "filler" stored after every run of 255 zeros that a gap cannot span.

use std::io::Read;

use super::super::error::{OfflineError, OfflineResult};
use super::super::write::RegionWriter;
use super::rows::{put_empty_rows, Parts, RowWalk};
use super::Group;

/// Encodes dense bytes into the `[values, gaps, row_ptr]` regions (or only counts).
pub(crate) struct Encoder {
    walk: RowWalk,
    gap: u64,
    stored: u64,
    parts: Parts,
}

impl Encoder {
    /// An encoder for rows of `cols` elements of `size` bytes.
    pub(crate) fn new(size: usize, cols: usize) -> Self {
        Self { walk: RowWalk::new(size, cols), gap: 0, stored: 0, parts: Parts::default() }
    }

    /// Entries stored so far (values and fillers).
    pub(crate) fn stored(&self) -> u64 {
        self.stored
    }

    /// Encodes the next elements (whole elements, in row-major order).
    pub(crate) fn feed(
        &mut self,
        bytes: &[u8],
        regions: Option<&mut [RegionWriter<'_>]>,
    ) -> OfflineResult<()> {
        let write = regions.is_some();
        let Self { walk, gap, stored, parts } = self;
        let size = walk.size();
        walk.walk(bytes, |e, col| {
            if col == 0 {
                if write {
                    parts.rows.extend_from_slice(&(*stored as i64).to_le_bytes());
                }
                *gap = 0;
            }
            if e.iter().any(|&b| b != 0) {
                while *gap > 255 {
                    if write {
                        parts.values.extend(std::iter::repeat_n(0u8, size));
                        parts.index.push(255);
                    }
                    *stored += 1;
                    *gap -= 256;
                }
                if write {
                    parts.values.extend_from_slice(e);
                    parts.index.push(*gap as u8);
                }
                *stored += 1;
                *gap = 0;
            } else {
                *gap += 1;
            }
        });
        match regions {
            Some(r) => parts.flush(r),
            None => Ok(()),
        }
    }

    /// Writes the last row pointer (and those of rows of no columns).
    pub(crate) fn finish(
        &mut self,
        rows: usize,
        regions: &mut [RegionWriter<'_>],
    ) -> OfflineResult<()> {
        put_empty_rows(self.walk.cols(), rows, &mut regions[2])?;
        regions[2].put(&(self.stored as i64).to_le_bytes())
    }
}

/// Decodes a CSR group, calling `sink` with the dense bytes row by row.
pub(crate) fn decode(
    g: &mut Group<'_>,
    mut sink: impl FnMut(&[u8]) -> OfflineResult<()>,
) -> OfflineResult<()> {
    let (rows, cols, size) = (g.rows, g.cols, g.size);
    let bad = |reason: String| OfflineError::Compressed {
        file: g.path.to_path_buf(),
        tensor: g.name.clone(),
        reason,
    };
    let total = g.parts[0].numel();
    if g.parts[1].numel() != total {
        return Err(bad(format!("{} values but {} gaps", total, g.parts[1].numel())));
    }
    let read_ptr = |reader: &mut dyn Read| -> OfflineResult<u64> {
        let mut b = [0u8; 8];
        reader.read_exact(&mut b).map_err(|e| bad(format!("row_ptr: {e}")))?;
        Ok(i64::from_le_bytes(b) as u64)
    };
    let (mut dense, mut value, mut gap) = (vec![0u8; cols * size], vec![0u8; size], [0u8; 1]);
    let mut start = read_ptr(&mut g.readers[2])?;
    if start != 0 {
        return Err(bad(format!("row_ptr starts at {start}, not 0")));
    }
    for r in 0..rows {
        let end = read_ptr(&mut g.readers[2])?;
        if end < start || end > total {
            return Err(bad(format!("row {r} spans entries {start}..{end} of {total}")));
        }
        dense.iter_mut().for_each(|b| *b = 0);
        let mut pos = 0u64;
        for _ in start..end {
            g.readers[1].read_exact(&mut gap).map_err(|e| bad(format!("gaps: {e}")))?;
            g.readers[0].read_exact(&mut value).map_err(|e| bad(format!("values: {e}")))?;
            pos += gap[0] as u64;
            if pos >= cols as u64 {
                return Err(bad(format!(
                    "row {r}: an entry lands at column {pos}, past the {cols} columns"
                )));
            }
            let p = pos as usize;
            dense[p * size..(p + 1) * size].copy_from_slice(&value);
            pos += 1;
        }
        sink(&dense)?;
        start = end;
    }
    if start != total {
        return Err(bad(format!("row_ptr ends at {start} but {total} entries are stored")));
    }
    Ok(())
}
