//! The two selection algorithms of libstdc++ that libtorch's CPU `topk` runs
//! (`topk_impl_loop`): `std::nth_element` (introselect) and the heap selection of
//! `std::partial_sort`, transliterated step for step (same pivots, same swaps, same heap
//! moves), so that among entries the comparator calls equal they leave exactly the same
//! entries in front as libtorch does. Which of several tied entries `topk` returns is nothing
//! but the order these algorithms leave them in; [`super::replay`] uses them to give
//! PyTorch's masks where tied entries straddle the threshold.
//!
//! `less` is the strict weak order of the comparison (`topk`'s comparator, with NaNs equal to
//! one another). Positions are slice indices; the C++ iterators `first`, `middle`, `last` are
//! the same numbers.

/// `std::__lg`: the index of the highest set bit of `n > 0`.
fn lg(n: usize) -> usize {
    (usize::BITS - 1 - n.leading_zeros()) as usize
}

/// `std::nth_element(v.begin(), v.begin() + nth, v.end(), less)`.
pub(super) fn nth_element<T: Copy>(v: &mut [T], nth: usize, less: impl Fn(&T, &T) -> bool + Copy) {
    let len = v.len();
    if len == 0 || nth >= len {
        return;
    }
    introselect(v, 0, nth, len, 2 * lg(len), less);
}

/// The max-heap `std::partial_sort(first, first + k, last)` starts from: `std::__make_heap` of
/// the first `k` entries.
pub(super) fn make_heap<T: Copy>(heap: &mut [T], less: impl Fn(&T, &T) -> bool + Copy) {
    make_heap_range(heap, 0, heap.len(), less);
}

/// One step of `std::__heap_select` for a later entry `x`: when it is smaller than the heap's
/// top it replaces the top (`std::__pop_heap` onto `x`'s place, which is never read again).
/// After every later entry, in order, the heap holds the `k` entries `std::partial_sort` leaves
/// in front (as a set: its final `sort_heap` only orders them).
#[inline(always)]
pub(super) fn heap_offer<T: Copy>(heap: &mut [T], x: T, less: impl Fn(&T, &T) -> bool + Copy) {
    if less(&x, &heap[0]) {
        adjust_heap(heap, 0, 0, heap.len(), x, less);
    }
}

/// `std::__introselect`.
fn introselect<T: Copy>(
    v: &mut [T],
    mut first: usize,
    nth: usize,
    mut last: usize,
    mut depth_limit: usize,
    less: impl Fn(&T, &T) -> bool + Copy,
) {
    while last - first > 3 {
        if depth_limit == 0 {
            heap_select(v, first, nth + 1, last, less);
            // Places the nth element in its final position.
            v.swap(first, nth);
            return;
        }
        depth_limit -= 1;
        let cut = unguarded_partition_pivot(v, first, last, less);
        if cut <= nth {
            first = cut;
        } else {
            last = cut;
        }
    }
    insertion_sort(v, first, last, less);
}

/// `std::__unguarded_partition_pivot`: the median of `first + 1`, the middle and `last - 1`
/// moved to `first`, then Hoare's partition of `first + 1 .. last` around it.
fn unguarded_partition_pivot<T: Copy>(
    v: &mut [T],
    first: usize,
    last: usize,
    less: impl Fn(&T, &T) -> bool,
) -> usize {
    let mid = first + (last - first) / 2;
    move_median_to_first(v, first, first + 1, mid, last - 1, &less);
    unguarded_partition(v, first + 1, last, first, less)
}

/// `std::__move_median_to_first`.
fn move_median_to_first<T: Copy>(
    v: &mut [T],
    result: usize,
    a: usize,
    b: usize,
    c: usize,
    less: &impl Fn(&T, &T) -> bool,
) {
    let median = if less(&v[a], &v[b]) {
        if less(&v[b], &v[c]) {
            b
        } else if less(&v[a], &v[c]) {
            c
        } else {
            a
        }
    } else if less(&v[a], &v[c]) {
        a
    } else if less(&v[b], &v[c]) {
        c
    } else {
        b
    };
    v.swap(result, median);
}

/// Entries classified per block of the partition.
const BLOCK: usize = 128;

/// `std::__unguarded_partition` of `first .. last` around the entry at `pivot` (which lies
/// before `first` and is never moved: it stops the downward scan), with the same swaps in the
/// same order but without its data-dependent branches, block by block (as in Edelkamp and
/// Weiß's BlockQuicksort).
///
/// Hoare's loop swaps the `i`-th entry from the left that is not less than the pivot (a left
/// stop) with the `i`-th entry from the right that the pivot is not less than (a right stop),
/// until they meet. While the blocks scanned from the left lie wholly before those scanned
/// from the right, these stops are those of the untouched values, so they are collected
/// branch-free, a block at a time, and paired in order; the last two blocks' worth (where the
/// scans meet) runs as the scalar loop from the state after the last swap.
fn unguarded_partition<T: Copy>(
    v: &mut [T],
    first: usize,
    last: usize,
    pivot: usize,
    less: impl Fn(&T, &T) -> bool,
) -> usize {
    let p = v[pivot];
    // The unscanned middle `lo .. hi`; stops not yet paired in `left[ls..ln]`, `right[rs..rn]`.
    let (mut lo, mut hi) = (first, last);
    let (mut left, mut ls, mut ln) = ([0usize; BLOCK], 0, 0);
    let (mut right, mut rs, mut rn) = ([0usize; BLOCK], 0, 0);
    // The scalar loop's `first` and `last` after the swaps made so far.
    let (mut scalar_first, mut scalar_last) = (first, last);
    loop {
        if ls == ln {
            if hi - lo < BLOCK {
                break;
            }
            (ls, ln) = (0, 0);
            for (j, x) in v[lo..lo + BLOCK].iter().enumerate() {
                left[ln] = lo + j;
                ln += usize::from(!less(x, &p));
            }
            lo += BLOCK;
        }
        if rs == rn {
            if hi - lo < BLOCK {
                break;
            }
            (rs, rn) = (0, 0);
            for (j, x) in v[hi - BLOCK..hi].iter().rev().enumerate() {
                right[rn] = hi - 1 - j;
                rn += usize::from(!less(&p, x));
            }
            hi -= BLOCK;
        }
        let pairs = (ln - ls).min(rn - rs);
        for (&a, &b) in left[ls..ls + pairs].iter().zip(&right[rs..rs + pairs]) {
            v.swap(a, b);
        }
        if pairs > 0 {
            (scalar_first, scalar_last) = (left[ls + pairs - 1] + 1, right[rs + pairs - 1]);
        }
        ls += pairs;
        rs += pairs;
    }
    scalar_partition(v, scalar_first, scalar_last, p, less)
}

/// Hoare's loop of `std::__unguarded_partition` as written, from `first` and `last` on, around
/// the value `p` (a copy of the pivot entry, which stays before `first`).
fn scalar_partition<T: Copy>(
    v: &mut [T],
    mut first: usize,
    mut last: usize,
    p: T,
    less: impl Fn(&T, &T) -> bool,
) -> usize {
    loop {
        while less(&v[first], &p) {
            first += 1;
        }
        last -= 1;
        while less(&p, &v[last]) {
            last -= 1;
        }
        if first >= last {
            return first;
        }
        v.swap(first, last);
        first += 1;
    }
}

/// `std::__insertion_sort` of `first .. last`.
fn insertion_sort<T: Copy>(v: &mut [T], first: usize, last: usize, less: impl Fn(&T, &T) -> bool) {
    if first == last {
        return;
    }
    for i in first + 1..last {
        let val = v[i];
        if less(&val, &v[first]) {
            v.copy_within(first..i, first + 1);
            v[first] = val;
        } else {
            // `std::__unguarded_linear_insert`: `v[first]` is not greater, so the scan stops.
            let mut hole = i;
            while less(&val, &v[hole - 1]) {
                v[hole] = v[hole - 1];
                hole -= 1;
            }
            v[hole] = val;
        }
    }
}

/// `std::__heap_select`: a max-heap of `first .. middle`, then every later entry smaller than
/// its top replaces the top.
fn heap_select<T: Copy>(
    v: &mut [T],
    first: usize,
    middle: usize,
    last: usize,
    less: impl Fn(&T, &T) -> bool + Copy,
) {
    make_heap_range(v, first, middle, less);
    for i in middle..last {
        if less(&v[i], &v[first]) {
            // `std::__pop_heap(first, middle, i)`.
            let value = v[i];
            v[i] = v[first];
            adjust_heap(v, first, 0, middle - first, value, less);
        }
    }
}

/// `std::__make_heap` of `first .. last`.
fn make_heap_range<T: Copy>(
    v: &mut [T],
    first: usize,
    last: usize,
    less: impl Fn(&T, &T) -> bool + Copy,
) {
    let len = last - first;
    if len < 2 {
        return;
    }
    let mut parent = (len - 2) / 2;
    loop {
        let value = v[first + parent];
        adjust_heap(v, first, parent, len, value, less);
        if parent == 0 {
            return;
        }
        parent -= 1;
    }
}

/// `std::__adjust_heap`: sifts the hole at `hole` down to a leaf along the larger children,
/// then pushes `value` up from there (`std::__push_heap`).
fn adjust_heap<T: Copy>(
    v: &mut [T],
    first: usize,
    mut hole: usize,
    len: usize,
    value: T,
    less: impl Fn(&T, &T) -> bool,
) {
    let top = hole;
    let mut child = hole;
    while child < (len - 1) / 2 {
        child = 2 * (child + 1);
        if less(&v[first + child], &v[first + child - 1]) {
            child -= 1;
        }
        v[first + hole] = v[first + child];
        hole = child;
    }
    if len & 1 == 0 && child == (len - 2) / 2 {
        child = 2 * (child + 1);
        v[first + hole] = v[first + child - 1];
        hole = child - 1;
    }
    while hole > top {
        let parent = (hole - 1) / 2;
        if !less(&v[first + parent], &value) {
            break;
        }
        v[first + hole] = v[first + parent];
        hole = parent;
    }
    v[first + hole] = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (the tests must not depend on `rand`'s stream).
    fn draws(n: usize, distinct: u32, seed: u64) -> Vec<(u32, u32)> {
        let mut s = seed;
        (0..n as u32)
            .map(|i| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (((s >> 33) as u32) % distinct, i)
            })
            .collect()
    }

    fn less(a: &(u32, u32), b: &(u32, u32)) -> bool {
        a.0 < b.0
    }

    /// Both selections put the `k` smallest keys in front (as a multiset of keys) and keep
    /// every entry once, with ties, short ranges and the depth limit exercised.
    #[test]
    fn selections_put_the_k_smallest_in_front() {
        for (n, distinct) in
            [(1, 1), (2, 2), (3, 1), (4, 3), (17, 4), (100, 7), (1000, 1000), (5000, 2)]
        {
            for seed in 0..4 {
                let v = draws(n, distinct, seed);
                let mut sorted: Vec<u32> = v.iter().map(|e| e.0).collect();
                sorted.sort_unstable();
                for k in [1, n / 3 + 1, n / 2 + 1, n] {
                    let mut a = v.clone();
                    nth_element(&mut a, k - 1, less);
                    let mut b = v.clone();
                    heap_select(&mut b, 0, k, n, less);
                    for w in [&a, &b] {
                        let mut front: Vec<u32> = w[..k].iter().map(|e| e.0).collect();
                        front.sort_unstable();
                        assert_eq!(front, sorted[..k], "n {n} k {k}");
                        let mut ids: Vec<u32> = w.iter().map(|e| e.1).collect();
                        ids.sort_unstable();
                        assert!(ids.iter().enumerate().all(|(i, &id)| id == i as u32));
                    }
                    assert_eq!(a[k - 1].0, sorted[k - 1], "nth in place, n {n} k {k}");
                }
            }
        }
    }

    /// The block partition makes the same swaps as Hoare's scalar loop: same array, same cut.
    #[test]
    fn block_partition_equals_scalar_loop() {
        for (n, distinct) in [(5, 2), (300, 3), (1000, 1000), (4097, 17), (20_000, 5)] {
            for seed in 0..5 {
                let mut a = draws(n, distinct, seed);
                // Pivot at 0, and an entry not less than it at the end, as the median of three
                // guarantees.
                let max = a.iter().map(|e| e.0).max().unwrap_or(0);
                a[n - 1].0 = max;
                let mut b = a.clone();
                let cut_a = unguarded_partition(&mut a, 1, n, 0, less);
                let p = b[0];
                let cut_b = scalar_partition(&mut b, 1, n, p, less);
                assert_eq!((cut_a, &a), (cut_b, &b), "n {n} distinct {distinct} seed {seed}");
            }
        }
    }

    /// The depth limit's heap fallback runs (a zero limit) and still selects correctly.
    #[test]
    fn depth_limit_fallback_selects() {
        let v = draws(300, 5, 9);
        let mut a = v.clone();
        introselect(&mut a, 0, 149, 300, 0, less);
        let mut keys: Vec<u32> = v.iter().map(|e| e.0).collect();
        keys.sort_unstable();
        let mut front: Vec<u32> = a[..150].iter().map(|e| e.0).collect();
        front.sort_unstable();
        assert_eq!(front, keys[..150]);
        assert_eq!(a[149].0, keys[149]);
    }
}
