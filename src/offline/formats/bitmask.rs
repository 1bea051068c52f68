//! The bitmask layout (compressed-tensors' `sparse-bitmask`): stored values, one bit per
//! entry, and each row's offset into the values.

use std::io::Read;

use super::super::error::{OfflineError, OfflineResult};
use super::super::write::RegionWriter;
use super::rows::{put_empty_rows, Parts, RowWalk};
use super::Group;

/// Encodes dense bytes, element by element, into the `[values, bitmask, row_offsets]` regions
/// (or only counts, when no regions are given).
pub(crate) struct Encoder {
    walk: RowWalk,
    byte: u8,
    nnz: u64,
    parts: Parts,
}

impl Encoder {
    /// An encoder for rows of `cols` elements of `size` bytes.
    pub(crate) fn new(size: usize, cols: usize) -> Self {
        Self { walk: RowWalk::new(size, cols), byte: 0, nnz: 0, parts: Parts::default() }
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
        let Self { walk, byte, nnz, parts } = self;
        let cols = walk.cols();
        walk.walk(bytes, |e, col| {
            if col == 0 && write {
                parts.rows.extend_from_slice(&(*nnz as i64).to_le_bytes());
            }
            if e.iter().any(|&b| b != 0) {
                *nnz += 1;
                *byte |= 1 << (col % 8);
                if write {
                    parts.values.extend_from_slice(e);
                }
            }
            if (col + 1).is_multiple_of(8) || col + 1 == cols {
                if write {
                    parts.index.push(*byte);
                }
                *byte = 0;
            }
        });
        match regions {
            Some(r) => parts.flush(r),
            None => Ok(()),
        }
    }

    /// Rows of no columns still have their offsets.
    pub(crate) fn finish(
        &mut self,
        rows: usize,
        regions: &mut [RegionWriter<'_>],
    ) -> OfflineResult<()> {
        put_empty_rows(self.walk.cols(), rows, &mut regions[2])
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
