//! The linear-time selection (large CPU f32/f64 tensors) against libtorch's `topk`, which
//! PyTorch uses: the same masks, ties at the threshold included (where tied entries straddle
//! it, the replay of `topk`'s selection decides), and `RandomUnstructured`'s opt-in hashed draws.

mod common;

use common::rng::rng_lock;
use tch::{Device, Kind, Tensor};
use tch_prune::{L1Unstructured, PruningMethod, RandomUnstructured};

/// The size from which the crate selects in linear time (and hashes, on request, random keys);
/// an internal tuning threshold, restated here.
const LARGE: usize = 1 << 15;

/// Distinct magnitudes with random signs, shuffled: `n` entries of `kind`.
fn distinct(n: i64, kind: Kind) -> Tensor {
    let magnitudes = (Tensor::randperm(n, (Kind::Int64, Device::Cpu)) + 1).to_kind(kind) / n as f64;
    let signs = Tensor::randint(2, [n], (Kind::Int64, Device::Cpu)).to_kind(kind) * 2.0 - 1.0;
    magnitudes * signs
}

/// PyTorch's L1Unstructured mask: `topk(|t|, k, largest=False)` zeroed in a ones mask.
fn topk_l1_mask(t: &Tensor, k: i64) -> Tensor {
    let mask = t.ones_like();
    let (_, idx) = t.abs().reshape([-1]).topk(k, 0, false, true);
    let _ = mask.view([-1]).index_fill_(0, &idx, 0);
    mask
}

#[test]
fn l1_fast_path_equals_topk_on_distinct_magnitudes() {
    let _rng = rng_lock();
    tch::manual_seed(1);
    let n = 3 * (LARGE as i64 + 17);
    for kind in [Kind::Float, Kind::Double] {
        let t = distinct(n, kind).reshape([3, -1]);
        for k in [1, 2, n / 10, n / 2, n - 1, n] {
            let ours = L1Unstructured::new(k).unwrap().compute_mask(&t, &t.ones_like()).unwrap();
            assert!(ours.equal(&topk_l1_mask(&t, k)), "{kind:?} k={k}");
            assert_eq!(ours.kind(), kind);
        }
        let ours = L1Unstructured::new(0.4).unwrap().compute_mask(&t, &t.ones_like()).unwrap();
        let k = (0.4 * n as f64).round_ties_even() as i64;
        assert!(ours.equal(&topk_l1_mask(&t, k)), "{kind:?} fraction 0.4");
    }
}

#[test]
fn l1_fast_path_with_massive_ties_is_topks_choice() {
    let n = 2 * LARGE as i64;
    // Values in {-2, -1, 0, 1, 2}: massive ties. |t| == 0 (n/5 entries), then |t| == 1 (2n/5).
    let t = (Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(5) - 2).to_kind(Kind::Float);
    // Straddling the zeros, straddling the ones, and ending exactly after the ones.
    for k in [n / 10, n / 2 + 3, 3 * n / 5] {
        let mask = L1Unstructured::new(k).unwrap().compute_mask(&t, &t.ones_like()).unwrap();
        assert_eq!(mask.eq(0.0).sum(Kind::Int64).int64_value(&[]), k);
        assert!(mask.equal(&topk_l1_mask(&t, k)), "k = {k}");
    }
}

#[test]
fn l1_fast_path_keeps_the_default_mask_kind_and_zeros() {
    let _rng = rng_lock();
    let n = 2 * LARGE as i64;
    let t = distinct(n, Kind::Float);
    let default = Tensor::ones([n], (Kind::Int64, Device::Cpu));
    let _ = default.narrow(0, 0, 10).fill_(0);
    let mask = L1Unstructured::new(100).unwrap().compute_mask(&t, &default).unwrap();
    assert_eq!(mask.kind(), Kind::Int64);
    assert_eq!(mask.narrow(0, 0, 10).sum(Kind::Int64).int64_value(&[]), 0);
}

/// PyTorch's draws at every size, selected in linear time: `topk`'s mask for every seed and
/// count (draws tied at the threshold: `tests/threshold_ties.rs`).
#[test]
fn random_fast_path_equals_topk_of_pytorchs_draws() {
    let _rng = rng_lock();
    let n = 4 * LARGE as i64;
    let t = Tensor::ones([4, n / 4], (Kind::Float, Device::Cpu));
    for seed in 0..20 {
        for k in [1, n / 3, n - 5] {
            tch::manual_seed(seed);
            let ours =
                RandomUnstructured::new(k).unwrap().compute_mask(&t, &t.ones_like()).unwrap();
            assert_eq!(ours.eq(0.0).sum(Kind::Int64).int64_value(&[]), k);
            // PyTorch's draws and selection, replayed.
            tch::manual_seed(seed);
            let draws = t.rand_like().reshape([-1]);
            let (_, idx) = draws.topk(k, 0, true, true);
            let expected = t.ones_like();
            let _ = expected.view([-1]).index_fill_(0, &idx, 0);
            assert!(ours.equal(&expected), "seed {seed} k {k}");
        }
    }
}

/// Large CPU tensors with hashed draws: keys hashed from the indices instead of `rand_like`.
/// Exactly `k` pruned on top of the default mask, reproducible after `manual_seed`, three draws
/// from the generator, any float kind, and every entry pruned equally often across seeds.
#[test]
fn hashed_random_selection_is_exact_reproducible_and_uniform() {
    let _rng = rng_lock();
    let n = LARGE as i64;
    let k = n / 4;
    let method = RandomUnstructured::new(k).unwrap().with_hashed_draws();
    let t = Tensor::ones([8, n / 8], (Kind::Float, Device::Cpu));
    let ones = t.ones_like();

    tch::manual_seed(5);
    let first = method.compute_mask(&t, &ones).unwrap();
    let next = Tensor::rand([4], (Kind::Float, Device::Cpu));
    tch::manual_seed(5);
    let again = method.compute_mask(&t, &ones).unwrap();
    assert!(first.equal(&again), "same seed, same mask");
    tch::manual_seed(5);
    let _ = Tensor::randint(1i64 << 32, [3], (Kind::Int64, Device::Cpu));
    assert!(next.equal(&Tensor::rand([4], (Kind::Float, Device::Cpu))), "three draws consumed");
    assert_eq!(first.eq(0.0).sum(Kind::Int64).int64_value(&[]), k);

    // The default mask's zeros stay, its kind is kept, and the values are never read.
    let default = Tensor::ones([8, n / 8], (Kind::Uint8, Device::Cpu));
    let _ = default.narrow(0, 0, 1).fill_(0);
    for kind in [Kind::Float, Kind::Half, Kind::BFloat16, Kind::Double] {
        tch::manual_seed(5);
        let mask = method.compute_mask(&t.to_kind(kind), &default).unwrap();
        assert_eq!(mask.kind(), Kind::Uint8);
        assert_eq!(mask.narrow(0, 0, 1).sum(Kind::Int64).int64_value(&[]), 0);
        let expected = first.to_kind(Kind::Uint8) * &default;
        assert!(mask.equal(&expected), "{kind:?}");
    }

    // 400 seeds: each entry is pruned Binomial(400, 1/4) times; Pearson's statistic over the
    // n entries has mean n - 1 and standard deviation sqrt(2 n) (~0.8 % of n here).
    let seeds = 400;
    let mut counts = Tensor::zeros([n], (Kind::Int64, Device::Cpu));
    let mut masks = Vec::new();
    for seed in 0..seeds {
        tch::manual_seed(1000 + seed);
        let mask = method.compute_mask(&t, &ones).unwrap().reshape([-1]);
        assert_eq!(mask.eq(0.0).sum(Kind::Int64).int64_value(&[]), k);
        counts += mask.eq(0.0).to_kind(Kind::Int64);
        if seed < 3 {
            masks.push(mask);
        }
    }
    assert!(!masks[0].equal(&masks[1]) && !masks[1].equal(&masks[2]), "seeds differ");
    let expected = seeds as f64 / 4.0;
    let counts = Vec::<i64>::try_from(&counts).unwrap();
    let chi_square: f64 =
        counts.iter().map(|&c| (c as f64 - expected).powi(2) / (expected * 0.75)).sum();
    let ratio = chi_square / n as f64;
    assert!((ratio - 1.0).abs() < 0.06, "chi-square / n = {ratio}");
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    // 6 standard deviations (8.7 each) around 100.
    assert!(*min > 48 && *max < 152, "counts between {min} and {max}");
}

/// With hashed draws, smaller tensors still draw PyTorch's `rand_like`.
#[test]
fn hashed_draws_leave_small_tensors_pytorchs() {
    let _rng = rng_lock();
    let n = LARGE as i64 - 1;
    let t = Tensor::ones([n], (Kind::Float, Device::Cpu));
    let k = n / 3;
    let method = RandomUnstructured::new(k).unwrap().with_hashed_draws();
    tch::manual_seed(9);
    let ours = method.compute_mask(&t, &t.ones_like()).unwrap();
    tch::manual_seed(9);
    let (_, idx) = t.rand_like().topk(k, 0, true, true);
    let mut expected = t.ones_like();
    let _ = expected.index_fill_(0, &idx, 0);
    assert!(ours.equal(&expected));
}
