//! What the bitmask and CSR encoders share: the row-major walk over dense bytes that knows
//! each element's column across calls, and the three regions they buffer (values, the
//! per-entry index, the row pointers).

use super::super::error::OfflineResult;
use super::super::write::RegionWriter;

/// A row-major walk over elements of `size` bytes in rows of `cols`, resumed where the last
/// call stopped (the input arrives in windows that need not end at a row).
pub(crate) struct RowWalk {
    size: usize,
    cols: usize,
    col: usize,
}

impl RowWalk {
    /// A walk from the first column, over rows of `cols` elements of `size` bytes.
    pub(crate) fn new(size: usize, cols: usize) -> Self {
        Self { size, cols, col: 0 }
    }

    /// The elements' size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The columns of a row.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Calls `f(element, column)` for every whole element of `bytes`, in order.
    pub(crate) fn walk(&mut self, bytes: &[u8], mut f: impl FnMut(&[u8], usize)) {
        for e in bytes.chunks_exact(self.size) {
            f(e, self.col);
            self.col += 1;
            if self.col == self.cols {
                self.col = 0;
            }
        }
    }
}

/// What one call of an encoder produced for each of its first three regions: the stored
/// values, the per-entry index (bitmask bytes or gaps) and the row pointers.
#[derive(Default)]
pub(crate) struct Parts {
    pub(crate) values: Vec<u8>,
    pub(crate) index: Vec<u8>,
    pub(crate) rows: Vec<u8>,
}

impl Parts {
    /// Writes the parts to `regions[0..3]` and empties them.
    pub(crate) fn flush(&mut self, regions: &mut [RegionWriter<'_>]) -> OfflineResult<()> {
        regions[0].put(&self.values)?;
        regions[1].put(&self.index)?;
        regions[2].put(&self.rows)?;
        self.values.clear();
        self.index.clear();
        self.rows.clear();
        Ok(())
    }
}

/// The row pointers (all 0) of a tensor whose rows have no columns, which a walk never visits.
pub(crate) fn put_empty_rows(
    cols: usize,
    rows: usize,
    region: &mut RegionWriter<'_>,
) -> OfflineResult<()> {
    if cols == 0 {
        for _ in 0..rows {
            region.put(&0i64.to_le_bytes())?;
        }
    }
    Ok(())
}
