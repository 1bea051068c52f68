//! Exact selection of the `k` smallest keys of a stream, by histograms over the key bits.
//!
//! A [`Cut`] is the answer: every key below `key` is selected, plus the first `ties` entries
//! (in stream order) whose key equals `key`. It is found by radix selection with 16-bit digits,
//! most significant first: one pass over the stream fills the histogram of the top digit
//! (32 768 bins for the 15-bit keys of bf16/f16: one pass in all), the bin holding the `k`-th
//! key fixes that digit, and the next pass counts the next digit among the keys sharing the
//! prefix (f32: two passes; f64: four). The histograms take 2 MiB; nothing is sorted,
//! concatenated or sampled, so the cut is exact whatever the size of the stream.
//!
//! **Tie rule.** Exactly `k` entries are selected. Those whose key equals the threshold go in
//! stream order, lowest first: for a global selection that is checkpoint order (shards by file
//! name, tensors by position in the file, entries by index), the rule of the crate's in-memory
//! selection (`crate::kernels::select`) with the tensors listed in that order.

use super::error::OfflineResult;

/// Where a selection of the `k` smallest keys stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    /// The `k`-th smallest key.
    pub(crate) key: u64,
    /// How many entries with exactly that key are selected (the first ones in stream order).
    pub(crate) ties: u64,
}

/// A cut being applied to a stream: [`Cut`] plus the ties still to select.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CutState {
    key: u64,
    ties_left: u64,
}

impl CutState {
    /// Starts applying `cut` (`None`: select nothing).
    pub(crate) fn new(cut: Option<Cut>) -> Self {
        match cut {
            Some(c) => Self { key: c.key, ties_left: c.ties },
            // No key is below 0 and no tie is left: nothing is selected.
            None => Self { key: 0, ties_left: 0 },
        }
    }

    /// The threshold key and the ties still to select.
    pub(crate) fn parts(&self) -> (u64, u64) {
        (self.key, self.ties_left)
    }

    /// Records that ties were selected by a kernel that took them from [`parts`](Self::parts).
    pub(crate) fn set_ties_left(&mut self, ties_left: u64) {
        self.ties_left = ties_left;
    }

    /// Whether the next entry of the stream, of key `key`, is selected.
    #[inline(always)]
    pub(crate) fn selects(&mut self, key: u64) -> bool {
        if key < self.key {
            return true;
        }
        if key == self.key && self.ties_left > 0 {
            self.ties_left -= 1;
            return true;
        }
        false
    }
}

/// A stream of keys that can be scanned several times in the same order.
pub(crate) trait KeyStream {
    /// Calls `f` on every key, in stream order.
    fn scan<F: FnMut(u64)>(&mut self, f: F) -> OfflineResult<()>;
}

/// The cut selecting the `k` smallest of the `total` keys of `stream` (keys of at most `width`
/// bits); `None` when `k == 0`. `k` must not exceed `total`.
pub(crate) fn radix_cut(
    stream: &mut impl KeyStream,
    k: u64,
    width: u32,
) -> OfflineResult<Option<Cut>> {
    if k == 0 {
        return Ok(None);
    }
    let mut digits = width.div_ceil(16);
    let mut prefix: u64 = 0; // the digits fixed so far
    let mut remaining = k; // rank of the wanted key among the keys sharing `prefix`
                           // Four interleaved histograms: consecutive keys often share a bin, and one array would
                           // serialize their increments through memory.
    let mut hists = vec![[0u64; 4]; 1 << 16];
    while digits > 0 {
        digits -= 1;
        let shift = 16 * digits;
        let bits = (width - shift).min(16);
        let mask = (1u64 << bits) - 1;
        hists[..=mask as usize].iter_mut().for_each(|h| *h = [0; 4]);
        let high_shift = shift + 16;
        // The top digit needs no prefix test (every key fits below it): a tighter loop.
        let mut lane = 0usize;
        if high_shift >= width {
            stream.scan(|key| {
                hists[((key >> shift) & mask) as usize][lane] += 1;
                lane = (lane + 1) & 3;
            })?;
        } else {
            stream.scan(|key| {
                if key >> high_shift == prefix {
                    hists[((key >> shift) & mask) as usize][lane] += 1;
                    lane = (lane + 1) & 3;
                }
            })?;
        }
        let hist: Vec<u64> = hists[..=mask as usize].iter().map(|h| h.iter().sum()).collect();
        let mut bin = 0usize;
        loop {
            let count = hist[bin];
            if count >= remaining || bin == mask as usize {
                break;
            }
            remaining -= count;
            bin += 1;
        }
        prefix = (prefix << 16) | bin as u64;
    }
    Ok(Some(Cut { key: prefix, ties: remaining }))
}

/// The cut selecting the `k` smallest of `keys` (reordered in the process); `None` when
/// `k == 0`. `k` must not exceed `keys.len()`.
pub(crate) fn cut_in_memory(keys: &mut [u64], k: usize) -> Option<Cut> {
    if k == 0 || keys.is_empty() {
        return None;
    }
    let k = k.min(keys.len());
    let (below, kth, _) = keys.select_nth_unstable(k - 1);
    let key = *kth;
    let strictly_below = below.iter().filter(|&&b| b < key).count();
    Some(Cut { key, ties: (k - strictly_below) as u64 })
}

/// For one group of keys (N:M), sets `pruned[i]` for the `drop` smallest, ties lowest index
/// first (a stable ascending sort's first `drop`): an entry goes when fewer than `drop` entries
/// rank before it. Branch-free counting; groups are small (4 for 2:4).
#[inline(always)]
pub(crate) fn smallest_in_group(keys: &[u64], drop: usize, pruned: &mut [bool]) {
    for (i, &ki) in keys.iter().enumerate() {
        let mut rank = 0usize;
        for (j, &kj) in keys.iter().enumerate() {
            rank += ((kj < ki) | ((kj == ki) & (j < i))) as usize;
        }
        pruned[i] = rank < drop;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct VecStream(Vec<u64>, usize);
    impl KeyStream for VecStream {
        fn scan<F: FnMut(u64)>(&mut self, mut f: F) -> OfflineResult<()> {
            self.1 += 1;
            self.0.iter().for_each(|&k| f(k));
            Ok(())
        }
    }

    /// The brute-force answer: the stable sort's first `k` entries.
    fn expected(keys: &[u64], k: usize) -> Vec<bool> {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by_key(|&i| (keys[i], i));
        let mut sel = vec![false; keys.len()];
        order[..k].iter().for_each(|&i| sel[i] = true);
        sel
    }

    fn apply(cut: Option<Cut>, keys: &[u64]) -> Vec<bool> {
        let mut state = CutState::new(cut);
        keys.iter().map(|&k| state.selects(k)).collect()
    }

    #[test]
    fn radix_and_in_memory_cuts_equal_the_stable_sort() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for (width, len, modulo) in
            [(15, 5000, 1 << 15), (31, 4000, 1 << 31), (63, 3000, u64::MAX >> 1), (31, 3000, 7)]
        {
            let keys: Vec<u64> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % modulo
                })
                .collect();
            for k in [0, 1, len / 3, len / 2, len - 1, len] {
                let mut stream = VecStream(keys.clone(), 0);
                let cut = radix_cut(&mut stream, k as u64, width).unwrap();
                assert_eq!(apply(cut, &keys), expected(&keys, k), "width {width} k {k}");
                assert_eq!(stream.1, if k == 0 { 0 } else { width.div_ceil(16) as usize });
                let mut copy = keys.clone();
                assert_eq!(cut_in_memory(&mut copy, k), cut, "width {width} k {k}");
            }
        }
    }

    #[test]
    fn groups_drop_the_smallest_lowest_index_first() {
        let mut pruned = [false; 4];
        smallest_in_group(&[5, 1, 5, 1], 2, &mut pruned);
        assert_eq!(pruned, [false, true, false, true]);
        smallest_in_group(&[3, 3, 3, 3], 3, &mut pruned);
        assert_eq!(pruned, [true, true, true, false]);
    }
}
