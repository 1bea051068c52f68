//! Unit tests of the selection: the windowed pass and the exact radix path against sorting,
//! the report of ties straddling the threshold, and the route each entry point takes.

use tch::{Device, Kind, Tensor};

use super::keys::FloatKey;
use super::radix::{exact_cut, write_exact, write_lowest_index};
use super::sample::{MAX_SAMPLE, SAMPLE_BLOCK};
use super::window::select_windowed;
use super::*;

/// The competing entries (mask exactly 1) of `parts` as (key, part, index), sorted: by key,
/// equal keys in part and index order.
fn competing_in_order<const LARGEST: bool>(
    parts: &[(Vec<f32>, Option<Vec<f32>>)],
) -> Vec<(u32, usize, usize)> {
    let mut order = Vec::new();
    for (p, (values, mask)) in parts.iter().enumerate() {
        for (i, v) in values.iter().enumerate() {
            if mask.as_ref().is_none_or(|m| m[i] == 1.0) {
                order.push((v.key::<LARGEST>(), p, i));
            }
        }
    }
    order.sort();
    order
}

/// The reference for a selection across `parts` (values, optional mask): the `k` smallest keys
/// among the competing entries (mask exactly 1), unselected entries keeping their mask value
/// (1 without a mask); `None` where keys equal to the `k`-th straddle it (or the `k`-th is a
/// NaN and some entry stays unselected): only `topk` may decide those.
fn reference<const LARGEST: bool>(
    parts: &[(Vec<f32>, Option<Vec<f32>>)],
    k: usize,
) -> Option<Vec<Vec<f32>>> {
    let order = competing_in_order::<LARGEST>(parts);
    if k > 0 {
        let threshold = order[k - 1].0;
        let up_to = order.iter().filter(|&&(key, ..)| key <= threshold).count();
        if up_to > k || (f32::is_nan_key::<LARGEST>(threshold) && k < order.len()) {
            return None;
        }
    }
    let mut out: Vec<Vec<f32>> =
        parts.iter().map(|(v, m)| m.clone().unwrap_or_else(|| vec![1.0; v.len()])).collect();
    for &(_, p, i) in &order[..k] {
        out[p][i] = 0.0;
    }
    Some(out)
}

fn views(parts: &[(Vec<f32>, Option<Vec<f32>>)]) -> Vec<Part<'_, f32, f32>> {
    parts
        .iter()
        .map(|(values, mask)| Part {
            values,
            keep: mask.as_deref().map_or(Keep::All(None), Keep::Masked),
        })
        .collect()
}

/// Runs the selection (windowed, with the exact fallback) and, separately, the exact path
/// alone; both must equal the reference (written masks, or the straddle report). Returns
/// whether the windowed pass decided.
fn check<const LARGEST: bool>(parts: &[(Vec<f32>, Option<Vec<f32>>)], k: usize) -> bool {
    let views = views(parts);
    let expected = reference::<LARGEST>(parts, k);
    let mut got: Vec<Vec<f32>> = parts.iter().map(|(v, _)| vec![f32::NAN; v.len()]).collect();
    let k_of = |_| Ok(k as u64);
    let (windowed, outcome) = {
        let mut outs: Vec<&mut [f32]> = got.iter_mut().map(|o| &mut o[..]).collect();
        let windowed =
            select_windowed::<f32, f32, LARGEST>(&views, &mut outs, &k_of, TieBreak::PyTorch)
                .unwrap();
        (
            windowed,
            select_into::<f32, f32, LARGEST>(&views, &mut outs, k_of, TieBreak::PyTorch).unwrap(),
        )
    };
    match &expected {
        Some(expected) => {
            assert_eq!(outcome, Outcome::Written, "k = {k}");
            assert!(windowed.is_none_or(|o| o == Outcome::Written), "k = {k}");
            assert!(got == *expected, "k = {k}, windowed = {windowed:?}");
        }
        None => {
            assert_eq!(outcome, Outcome::TiesStraddle, "k = {k}");
            assert!(windowed.is_none_or(|o| o == Outcome::TiesStraddle), "k = {k}");
        }
    }
    let (k_exact, cut) = exact_cut::<f32, f32, LARGEST>(&views, &k_of).unwrap();
    assert_eq!(cut.straddles, expected.is_none(), "exact path, k = {k}");
    if let Some(expected) = expected {
        for (view, out) in views.iter().zip(got.iter_mut()) {
            out.fill(f32::NAN);
            if k_exact == 0 {
                view.keep.write_unselected(out);
            } else {
                write_exact::<f32, f32, LARGEST>(view, cut.threshold, out);
            }
        }
        assert!(got == expected, "exact path, k = {k}");
    }
    check_lowest_index::<LARGEST>(parts, k);
    windowed.is_some()
}

/// The reference under [`TieBreak::LowestIndex`]: the `k` smallest keys, equal keys in part
/// and index order (a stable sort), never a straddle report.
fn reference_lowest_index<const LARGEST: bool>(
    parts: &[(Vec<f32>, Option<Vec<f32>>)],
    k: usize,
) -> Vec<Vec<f32>> {
    let order = competing_in_order::<LARGEST>(parts);
    let mut out: Vec<Vec<f32>> =
        parts.iter().map(|(v, m)| m.clone().unwrap_or_else(|| vec![1.0; v.len()])).collect();
    for &(_, p, i) in &order[..k] {
        out[p][i] = 0.0;
    }
    out
}

/// The windowed pass, the whole selection and the exact path alone under
/// [`TieBreak::LowestIndex`] all write the lowest-index reference.
fn check_lowest_index<const LARGEST: bool>(parts: &[(Vec<f32>, Option<Vec<f32>>)], k: usize) {
    let views = views(parts);
    let expected = reference_lowest_index::<LARGEST>(parts, k);
    let k_of = |_| Ok(k as u64);
    let fresh =
        || -> Vec<Vec<f32>> { parts.iter().map(|(v, _)| vec![f32::NAN; v.len()]).collect() };
    let ties = TieBreak::LowestIndex;
    let mut got = fresh();
    let mut outs: Vec<&mut [f32]> = got.iter_mut().map(|o| &mut o[..]).collect();
    let windowed = select_windowed::<f32, f32, LARGEST>(&views, &mut outs, &k_of, ties).unwrap();
    if windowed.is_some() {
        assert_eq!(windowed, Some(Outcome::Written), "lowest index, windowed, k = {k}");
        assert!(got == expected, "lowest index, windowed, k = {k}");
    }
    let mut got = fresh();
    let mut outs: Vec<&mut [f32]> = got.iter_mut().map(|o| &mut o[..]).collect();
    let outcome = select_into::<f32, f32, LARGEST>(&views, &mut outs, k_of, ties).unwrap();
    assert_eq!(outcome, Outcome::Written, "lowest index, k = {k}");
    assert!(got == expected, "lowest index, k = {k}");
    let (k_exact, cut) = exact_cut::<f32, f32, LARGEST>(&views, &k_of).unwrap();
    let mut got = fresh();
    let mut outs: Vec<&mut [f32]> = got.iter_mut().map(|o| &mut o[..]).collect();
    if cut.straddles && cut.needed < cut.equal {
        write_lowest_index::<f32, f32, LARGEST>(&views, &mut outs, cut.threshold, cut.needed);
    } else {
        for (view, out) in views.iter().zip(outs.iter_mut()) {
            if k_exact == 0 {
                view.keep.write_unselected(out);
            } else {
                write_exact::<f32, f32, LARGEST>(view, cut.threshold, out);
            }
        }
    }
    assert!(got == expected, "lowest index, exact path, k = {k}");
}

/// About `count` values of `k` (evenly spread) that end exactly at the end of a group of equal
/// keys, so that they never straddle ties, for values crowded with them.
fn group_ends(values: &[f32], count: usize) -> Vec<usize> {
    let mut keys: Vec<u32> = values.iter().map(|x| x.key::<false>()).collect();
    keys.sort_unstable();
    let ends: Vec<usize> =
        (1..=keys.len()).filter(|&i| i == keys.len() || keys[i] != keys[i - 1]).collect();
    let every = ends.len().div_ceil(count.max(1)).max(1);
    ends.into_iter().step_by(every).collect()
}

/// The outcome and the selected flags (mask 0) of a one-part selection of the `k` smallest.
fn select(values: &[f32], k: u64) -> (Outcome, Vec<bool>) {
    let mut out = vec![0f32; values.len()];
    let parts = [Part::<f32, f32> { values, keep: Keep::All(None) }];
    let outcome =
        select_into::<f32, f32, false>(&parts, &mut [&mut out], |_| Ok(k), TieBreak::PyTorch)
            .unwrap();
    (outcome, out.iter().map(|&m| m == 0.0).collect())
}

#[test]
fn selection_matches_sorting_or_reports_straddling_ties() {
    // 613 magnitudes, each about 8 times (and mostly with both signs).
    let values: Vec<f32> = (0..5000).map(|i| (((i * 7919) % 613) as f32 - 300.0) * 0.25).collect();
    let parts = [(values.clone(), None)];
    let mut written = 0;
    let ends = group_ends(&values, 12);
    for &k in [1, 2, 17, 613, 2500, 4999, 5000].iter().chain(&ends) {
        written += usize::from(reference::<false>(&parts, k).is_some());
        check::<false>(&parts, k);
    }
    assert!(written >= ends.len(), "{written}");
}

#[test]
fn nan_ranks_as_largest_magnitude_and_negative_zero_as_zero() {
    let values = [f32::NAN, 1.0, f32::INFINITY, -2.0, -0.0];
    assert_eq!(select(&values, 3), (Outcome::Written, vec![false, true, false, true, true]));
    assert_eq!(select(&values, 4), (Outcome::Written, vec![false, true, true, true, true]));
    assert_eq!(select(&values, 5).0, Outcome::Written);
    // -0.0 and 0.0 tie for `topk`: selecting one of them is `topk`'s choice.
    assert_eq!(select(&[0.0, 1.0, -0.0], 1).0, Outcome::TiesStraddle);
    assert_eq!(select(&[0.0, 1.0, -0.0], 2).0, Outcome::Written);
}

/// NaNs with different payloads have different keys, but `topk` compares them as equal.
#[test]
fn a_threshold_among_nans_straddles_unless_everything_is_selected() {
    let quiet = f32::NAN;
    let payload = f32::from_bits(f32::NAN.to_bits() | 0x1234);
    let values = [payload, 1.0, quiet, 2.0];
    assert_eq!(select(&values, 2), (Outcome::Written, vec![false, true, false, true]));
    assert_eq!(select(&values, 3).0, Outcome::TiesStraddle);
    assert_eq!(select(&values, 4), (Outcome::Written, vec![true; 4]));
    for k in 0..=4 {
        check::<false>(&[(values.to_vec(), None)], k);
        check::<true>(&[(values.to_vec(), None)], k);
    }
}

#[test]
fn largest_value_order_inverts() {
    let values = [0.5f32, 0.25, 0.75, 0.0];
    let mut out = [1f32; 4];
    let parts = [Part::<f32, f32> { values: &values, keep: Keep::All(None) }];
    let outcome =
        select_into::<f32, f32, true>(&parts, &mut [&mut out], |_| Ok(2), TieBreak::PyTorch)
            .unwrap();
    assert_eq!((outcome, out), (Outcome::Written, [0.0, 1.0, 0.0, 1.0]));
}

/// Deterministic pseudo-random values (a 64-bit LCG), roughly normal (sum of four uniforms),
/// scaled like initialised weights.
fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut uniform = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n).map(|_| ((0..4).map(|_| uniform()).sum::<f32>() - 2.0) * 0.05).collect()
}

#[test]
fn windowed_selection_equals_sorting_and_usually_decides_alone() {
    let n = 100_003;
    let values = weights(n, 1);
    let parts = [(values, None)];
    let mut decided = 0;
    for k in [1, 2, 10, 1000, n / 5, 2 * n / 5, n / 2, n - 1000, n - 1, n] {
        decided += usize::from(check::<false>(&parts, k));
    }
    // Every k but the extremes (where the window reaches past the sample) decides alone.
    assert!(decided >= 6, "{decided}");
}

#[test]
fn windowed_selection_across_masked_parts() {
    let mut parts = Vec::new();
    for (p, n) in [50_000usize, 7, 30_001, 0, 4096].into_iter().enumerate() {
        let values = weights(n, p as u64 + 10);
        let mask = (p % 2 == 0).then(|| {
            // Mostly 1, some 0, a few 0.5 (which does not compete, and is kept as it is).
            weights(n, p as u64 + 100)
                .iter()
                .map(|&u| {
                    if u > 0.05 {
                        0.0
                    } else if u < -0.12 {
                        0.5
                    } else {
                        1.0
                    }
                })
                .collect()
        });
        parts.push((values, mask));
    }
    let available: usize = parts
        .iter()
        .map(|(v, m): &(Vec<f32>, Option<Vec<f32>>)| {
            m.as_ref().map_or(v.len(), |m| m.iter().filter(|&&x| x == 1.0).count())
        })
        .sum();
    for k in [0, 1, available / 10, available / 3, available - 1, available] {
        check::<false>(&parts, k);
        check::<true>(&parts, k);
    }
}

#[test]
fn ties_and_misleading_samples_fall_back_to_the_exact_result() {
    let n = 70_000;
    // Five distinct magnitudes: the window is crowded with ties.
    let few: Vec<f32> = (0..n).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
    // Periodic with the sampling stride: the sample sees one value only.
    let blocks = (n / 64).clamp(2048, MAX_SAMPLE).min(n).div_ceil(SAMPLE_BLOCK);
    let stride = n / blocks;
    let periodic: Vec<f32> =
        (0..n).map(|i| if i % stride < SAMPLE_BLOCK { 1.0 } else { (i % 997) as f32 }).collect();
    // Sorted: blocks are far apart in value.
    let sorted: Vec<f32> = (0..n).map(|i| i as f32 * 1e-3).collect();
    for values in [few, periodic, sorted] {
        let ends = group_ends(&values, 6);
        let parts = [(values, None)];
        for &k in [1, n / 7, n / 2, n - 3].iter().chain(&ends) {
            check::<false>(&parts, k);
        }
    }
}

/// A large tensor half of whose entries are exactly zero (`-0.0` for some): pruning more than
/// the zeros is decided by the selection alone, pruning fewer straddles the zeros and is
/// replayed as libtorch's `topk` ([`super::replay`]); both give `topk`'s mask.
#[test]
fn prune_mask_gives_topks_mask_with_and_without_straddling_ties() {
    let n = 48_000usize;
    let values: Vec<f32> = weights(n, 7)
        .iter()
        .enumerate()
        .map(|(i, &w)| match i % 4 {
            0 => 0.0,
            1 => -0.0,
            _ => w + 1.0,
        })
        .collect();
    let ones = MaskDefault::Ones(Kind::Float, Device::Cpu);
    let magnitudes = Tensor::from_slice(&values).reshape([240, 200]);
    let draws = magnitudes.abs();
    for (scores, order, largest) in
        [(&magnitudes, Order::SmallestMagnitude, false), (&draws, Order::LargestValue, true)]
    {
        for k in [1, n / 4, n / 2 - 1, n / 2, n / 2 + 1, 3 * n / 4] {
            let Some(mask) = prune_mask(scores, k as i64, order, ones, TieBreak::PyTorch).unwrap()
            else {
                // Straddling ties go to libtorch's `topk` where it does not run libstdc++.
                assert!(!std::hint::black_box(REPLAY_IS_LIBTORCHS), "k = {k}, {order:?}");
                continue;
            };
            let (_, idx) = scores.abs().reshape([-1]).topk(k as i64, 0, largest, true);
            let expected = scores.ones_like();
            let _ = expected.view([-1]).index_fill_(0, &idx, 0);
            assert!(mask.equal(&expected), "k = {k}, {order:?}");
        }
    }
}

#[test]
fn global_selection_spans_parts_in_order_and_skips_unavailable() {
    let a = Tensor::from_slice(&[5.0f32, 1.0, 3.0, 3.0]);
    let b = Tensor::from_slice(&[3.0f32, 0.0, 9.0, 0.5]);
    let b_mask = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 0.0]);
    let parts =
        [GlobalPart { scores: a, mask: None }, GlobalPart { scores: b, mask: Some(b_mask.copy()) }];
    // Available magnitudes 0, 1, 3, 3, 3, 5, 9: five take every 3.
    let masks = select_global_smallest(&parts, Amount::Count(5), TieBreak::PyTorch).unwrap();
    assert_eq!(Vec::<f32>::try_from(&masks[0]).unwrap(), vec![1.0, 0.0, 0.0, 0.0]);
    assert_eq!(Vec::<f32>::try_from(&masks[1]).unwrap(), vec![0.0, 0.0, 1.0, 0.0]);
    // Three or four take some of the three: `topk` on the available entries of the
    // concatenation decides (PyTorch's container step, replayed here).
    for k in [3, 4] {
        let masks = select_global_smallest(&parts, Amount::Count(k), TieBreak::PyTorch).unwrap();
        let scores = Tensor::cat(&[parts[0].scores.shallow_clone(), parts[1].scores.copy()], 0);
        let mask = Tensor::cat(&[Tensor::ones([4], (Kind::Float, Device::Cpu)), b_mask.copy()], 0);
        let available = mask.eq(1.0);
        let slice = scores.masked_select(&available);
        let (_, idx) = slice.abs().topk(k, 0, false, true);
        let mut partial = slice.ones_like();
        let _ = partial.index_fill_(0, &idx, 0);
        let expected = mask.masked_scatter(&available, &partial);
        let got = Tensor::cat(&[masks[0].shallow_clone(), masks[1].shallow_clone()], 0);
        assert!(got.equal(&expected), "k = {k}");
    }
}
