//! The bitmask layout (compressed-tensors' `sparse-bitmask`): stored values, one bit per
//! entry, and each row's offset into the values.

use std::io::Read;

use super::super::error::{OfflineError, OfflineResult};
use super::super::write::RegionWriter;
use super::Group;

/// Encodes dense bytes, element by element, into the `[values, bitmask, row_offsets]` regions
/// (or only counts, when no regions are given).
pub(crate) struct Encoder {
    size: usize,
    cols: usize,
    col: usize,
    byte: u8,
    nnz: u64,
    values: Vec<u8>,
    mask: Vec<u8>,
    offsets: Vec<u8>,
}

impl Encoder {
    /// An encoder for rows of `cols` elements of `size` bytes.
    pub(crate) fn new(size: usize, cols: usize) -> Self {
        Self {
            size,
            cols,
            col: 0,
            byte: 0,
            nnz: 0,
            values: Vec::new(),
            mask: Vec::new(),
            offsets: Vec::new(),
        }
    }

    /// Stored values so far.
    pub(crate) fn nnz(&self) -> u64 {
        self.nnz
    }

    /// Encodes the next elements (whole elements, in row-major order).
    pub(crate) fn feed(
        &mut self,
        bytes: &[u8],
        regions: Option<&mut [RegionWriter<'_>]>,
    ) -> OfflineResult<()> {
        let write = regions.is_some();
        for e in bytes.chunks_exact(self.size) {
            if self.col == 0 && write {
                self.offsets.extend_from_slice(&(self.nnz as i64).to_le_bytes());
            }
            if e.iter().any(|&b| b != 0) {
                self.nnz += 1;
                self.byte |= 1 << (self.col % 8);
                if write {
                    self.values.extend_from_slice(e);
                }
            }
            self.col += 1;
            if self.col.is_multiple_of(8) || self.col == self.cols {
                if write {
                    self.mask.push(self.byte);
                }
                self.byte = 0;
            }
            if self.col == self.cols {
                self.col = 0;
            }
        }
        if let Some(r) = regions {
            r[0].put(&self.values)?;
            r[1].put(&self.mask)?;
            r[2].put(&self.offsets)?;
            self.values.clear();
            self.mask.clear();
            self.offsets.clear();
        }
        Ok(())
    }

    /// Rows of no columns still have their offsets.
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
        Ok(())
    }
}

/// Decodes a bitmask group, calling `sink` with the dense bytes row by row.
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
    let width = cols.div_ceil(8);
    let (mut mask_row, mut dense, mut value) =
        (vec![0u8; width], vec![0u8; cols * size], vec![0u8; size]);
    let mut stored = 0u64;
    let values_len = g.parts[0].numel();
    for r in 0..rows {
        let mut off = [0u8; 8];
        g.readers[2].read_exact(&mut off).map_err(|e| bad(format!("row_offsets: {e}")))?;
        if i64::from_le_bytes(off) as u64 != stored {
            return Err(bad(format!(
                "row {r} starts at value {} but {stored} values precede it",
                i64::from_le_bytes(off)
            )));
        }
        g.readers[1].read_exact(&mut mask_row).map_err(|e| bad(format!("bitmask: {e}")))?;
        dense.iter_mut().for_each(|b| *b = 0);
        for c in 0..width * 8 {
            if mask_row[c / 8] >> (c % 8) & 1 == 0 {
                continue;
            }
            if c >= cols {
                return Err(bad(format!(
                    "row {r}: bitmask bit {c} is set, past the {cols} columns"
                )));
            }
            if stored >= values_len {
                return Err(bad(format!(
                    "the bitmask sets more bits than the {values_len} values stored"
                )));
            }
            g.readers[0].read_exact(&mut value).map_err(|e| bad(format!("compressed: {e}")))?;
            dense[c * size..(c + 1) * size].copy_from_slice(&value);
            stored += 1;
        }
        sink(&dense)?;
    }
    if stored != values_len {
        return Err(bad(format!(
            "the bitmask sets {stored} bits but {values_len} values are stored"
        )));
    }
    Ok(())
}
