//! CSR with relative 8-bit indices (Deep Compression): per stored entry its value and the
//! number of zeros skipped since the previous stored entry of its row, with an explicit zero
//! "filler" stored after every run of 255 zeros that a gap cannot span.

use std::io::Read;

use super::super::error::{OfflineError, OfflineResult};
use super::super::write::RegionWriter;
use super::Group;

/// Encodes dense bytes into the `[values, gaps, row_ptr]` regions (or only counts).
pub(crate) struct Encoder {
    size: usize,
    cols: usize,
    col: usize,
    gap: u64,
    stored: u64,
    values: Vec<u8>,
    gaps: Vec<u8>,
    ptr: Vec<u8>,
}

impl Encoder {
    /// An encoder for rows of `cols` elements of `size` bytes.
    pub(crate) fn new(size: usize, cols: usize) -> Self {
        Self {
            size,
            cols,
            col: 0,
            gap: 0,
            stored: 0,
            values: Vec::new(),
            gaps: Vec::new(),
            ptr: Vec::new(),
        }
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
        for e in bytes.chunks_exact(self.size) {
            if self.col == 0 {
                if write {
                    self.ptr.extend_from_slice(&(self.stored as i64).to_le_bytes());
                }
                self.gap = 0;
            }
            if e.iter().any(|&b| b != 0) {
                while self.gap > 255 {
                    if write {
                        self.values.extend(std::iter::repeat_n(0u8, self.size));
                        self.gaps.push(255);
                    }
                    self.stored += 1;
                    self.gap -= 256;
                }
                if write {
                    self.values.extend_from_slice(e);
                    self.gaps.push(self.gap as u8);
                }
                self.stored += 1;
                self.gap = 0;
            } else {
                self.gap += 1;
            }
            self.col += 1;
            if self.col == self.cols {
                self.col = 0;
            }
        }
        if let Some(r) = regions {
            r[0].put(&self.values)?;
            r[1].put(&self.gaps)?;
            r[2].put(&self.ptr)?;
            self.values.clear();
            self.gaps.clear();
            self.ptr.clear();
        }
        Ok(())
    }

    /// Writes the last row pointer (and those of rows of no columns).
    pub(crate) fn finish(
        &mut self,
        rows: usize,
        regions: &mut [RegionWriter<'_>],
    ) -> OfflineResult<()> {
        if self.cols == 0 {
            for _ in 0..rows {
                regions[2].put(&0i64.to_le_bytes())?;
            }
        }
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
