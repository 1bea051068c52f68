//! Statistical and reproducibility tests of `RandomUnstructured` and `RandomStructured`.
//!
//! Every random test runs a fixed sequence of seeds (`tch::manual_seed(0..N)`), so the outcome
//! is deterministic and the frequency bounds (about 5 standard deviations) cannot flake. The
//! generator is process-global, so the tests of this file hold one lock while they draw.

mod common;

use std::collections::HashSet;

use common::rng::rng_lock;
use common::tensors::{dead_channels, distinct, tf, values, zeros};
use tch::{Device, Kind, Tensor};
use tch_prune::{PruningContainer, PruningMethod, RandomStructured, RandomUnstructured};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One draw from the CPU generator, to see whether two call sequences consumed the same.
fn next_cpu_draws() -> Vec<f64> {
    values(&Tensor::rand([4], (Kind::Float, Device::Cpu)))
}

/// The indices of `draws` sorted by value, smallest first.
fn argsort(draws: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..draws.len()).collect();
    order.sort_by(|&a, &b| draws[a].total_cmp(&draws[b]));
    order
}

/// Checks `counts` against the uniform expectation: no count further than `max_deviation`
/// from `expected`, and Pearson's chi-square statistic below `max_chi_square`.
#[track_caller]
fn assert_uniform(counts: &[u32], expected: f64, max_deviation: f64, max_chi_square: f64) {
    let chi_square: f64 =
        counts.iter().map(|&c| (f64::from(c) - expected).powi(2) / expected).sum();
    for (i, &c) in counts.iter().enumerate() {
        assert!(
            (f64::from(c) - expected).abs() <= max_deviation,
            "unit {i} pruned {c} times, expected about {expected}: {counts:?}"
        );
    }
    assert!(chi_square < max_chi_square, "chi-square {chi_square} for {counts:?}");
}

/// How often each entry is zero over the seeds `0..draws`, checking every mask has exactly
/// `k` zeros and only 0/1 values.
fn entry_frequencies(method: &RandomUnstructured, t: &Tensor, k: usize, draws: i64) -> Vec<u32> {
    let ones = t.ones_like();
    let mut counts = vec![0u32; t.numel()];
    let mut subsets = HashSet::new();
    for seed in 0..draws {
        tch::manual_seed(seed);
        let mask = values(&method.compute_mask(t, &ones).unwrap());
        assert!(mask.iter().all(|&v| v == 0.0 || v == 1.0), "seed {seed}: {mask:?}");
        let pruned: Vec<usize> = (0..mask.len()).filter(|&i| mask[i] == 0.0).collect();
        assert_eq!(pruned.len(), k, "seed {seed}");
        for &i in &pruned {
            counts[i] += 1;
        }
        subsets.insert(pruned);
    }
    eprintln!("{} distinct masks; counts {counts:?}", subsets.len());
    counts
}

/// How often each channel along `dim` is pruned over the seeds `0..draws`, checking every mask
/// prunes exactly `k` whole channels and leaves the others all ones. Also returns the number
/// of distinct sets of pruned channels.
fn channel_frequencies(
    method: &RandomStructured,
    t: &Tensor,
    dim: i64,
    k: usize,
    draws: i64,
) -> (Vec<u32>, usize) {
    let ones = t.ones_like();
    let channels = dead_channels(&ones, dim).len();
    let mut counts = vec![0u32; channels];
    let mut subsets = HashSet::new();
    for seed in 0..draws {
        tch::manual_seed(seed);
        let mask = method.compute_mask(t, &ones).unwrap();
        let dead = dead_channels(&mask, dim);
        let pruned: Vec<usize> = (0..channels).filter(|&c| dead[c]).collect();
        assert_eq!(pruned.len(), k, "seed {seed}");
        // Whole channels: the mask is 1 on every entry of a surviving channel.
        let per_entry = values(&mask);
        let channel_of = common::tensors::channel_of(&t.size(), dim);
        for (v, c) in per_entry.iter().zip(channel_of) {
            assert_eq!(*v, if dead[c] { 0.0 } else { 1.0 }, "seed {seed}");
        }
        for &c in &pruned {
            counts[c] += 1;
        }
        subsets.insert(pruned);
    }
    eprintln!("{} distinct channel sets; counts {counts:?}", subsets.len());
    (counts, subsets.len())
}

#[test]
fn random_unstructured_prunes_the_exact_count_every_time() -> TestResult {
    let _rng = rng_lock();
    let cases: [(&[i64], RandomUnstructured, usize); 6] = [
        (&[10], RandomUnstructured::new(3)?, 3),
        (&[10], RandomUnstructured::new(0.25)?, 2), // round(2.5) = 2
        (&[10], RandomUnstructured::new(0.35)?, 4), // round(3.5) = 4
        (&[2, 5], RandomUnstructured::new(10)?, 10),
        (&[3, 4, 2], RandomUnstructured::new(0.5)?, 12),
        (&[2, 1, 3, 2], RandomUnstructured::new(1)?, 1),
    ];
    for (shape, method, k) in cases {
        let t = distinct(shape);
        for seed in 0..100 {
            tch::manual_seed(seed);
            let mask = method.compute_mask(&t, &t.ones_like())?;
            assert_eq!(zeros(&mask), k, "{method:?} on {shape:?}, seed {seed}");
        }
    }
    Ok(())
}

#[test]
fn random_structured_prunes_the_exact_count_every_time() -> TestResult {
    let _rng = rng_lock();
    let cases: [(&[i64], RandomStructured, usize); 5] = [
        (&[10, 3], RandomStructured::new(3, 0)?, 3),
        (&[3, 10], RandomStructured::new(0.25, -1)?, 2), // round(2.5) = 2
        (&[4, 2, 5], RandomStructured::new(0.5, 1)?, 1),
        (&[2, 3, 4, 5], RandomStructured::new(4, -2)?, 4),
        (&[5, 4, 2], RandomStructured::new(0.6, 2)?, 1), // round(1.2) = 1
    ];
    for (shape, method, k) in cases {
        let t = distinct(shape);
        let (_, _) = channel_frequencies(&method, &t, method.dim(), k, 100);
    }
    Ok(())
}

#[test]
fn random_unstructured_prunes_every_entry_equally_often() -> TestResult {
    let _rng = rng_lock();
    // 10 entries, 3 pruned per draw, 2000 draws: each entry about 600 times (sd ~20.5).
    let t = Tensor::ones([10], (Kind::Float, Device::Cpu));
    let counts = entry_frequencies(&RandomUnstructured::new(3)?, &t, 3, 2000);
    assert_uniform(&counts, 600.0, 100.0, 40.0);

    // Every one of the C(10, 3) = 120 subsets occurs.
    let mut subsets = HashSet::new();
    for seed in 0..2000 {
        tch::manual_seed(seed);
        let mask = values(&RandomUnstructured::new(3)?.compute_mask(&t, &t.ones_like())?);
        subsets.insert(mask.iter().map(|&v| v == 0.0).collect::<Vec<_>>());
    }
    assert_eq!(subsets.len(), 120);

    // A 2-D tensor with ties everywhere (all equal values): 20 entries, 5 pruned, about 500
    // times each (sd ~19.4). The draws, not the values, decide.
    let t = Tensor::full([4, 5], 2.0, (Kind::Float, Device::Cpu));
    let counts = entry_frequencies(&RandomUnstructured::new(0.25)?, &t, 5, 2000);
    assert_uniform(&counts, 500.0, 100.0, 70.0);

    // float64 tensors draw float64 values: still uniform.
    let t = Tensor::ones([2, 5], (Kind::Double, Device::Cpu));
    let counts = entry_frequencies(&RandomUnstructured::new(3)?, &t, 3, 2000);
    assert_uniform(&counts, 600.0, 100.0, 40.0);
    Ok(())
}

#[test]
fn random_structured_prunes_every_channel_equally_often() -> TestResult {
    let _rng = rng_lock();
    // 10 rows, 3 pruned per draw, 2000 draws: each row about 600 times (sd ~20.5), and every
    // one of the 120 sets of rows occurs.
    let t = Tensor::ones([10, 3], (Kind::Float, Device::Cpu));
    let (counts, subsets) = channel_frequencies(&RandomStructured::new(3, 0)?, &t, 0, 3, 2000);
    assert_uniform(&counts, 600.0, 100.0, 40.0);
    assert_eq!(subsets, 120);

    // 10 channels on the last axis of a 3-D tensor, half of them pruned: about 1000 times
    // each (sd ~22.4).
    let t = distinct(&[2, 3, 10]);
    let (counts, _) = channel_frequencies(&RandomStructured::new(0.5, -1)?, &t, -1, 5, 2000);
    assert_uniform(&counts, 1000.0, 110.0, 40.0);
    Ok(())
}

#[test]
fn same_seed_same_mask() -> TestResult {
    let _rng = rng_lock();
    let t = distinct(&[6, 5]);
    let ones = t.ones_like();
    let methods: Vec<Box<dyn PruningMethod>> = vec![
        Box::new(RandomUnstructured::new(0.4)?),
        Box::new(RandomUnstructured::new(7)?),
        Box::new(RandomStructured::new(2, 0)?),
        Box::new(RandomStructured::new(0.4, 1)?),
    ];
    for method in &methods {
        let mut distinct_masks = HashSet::new();
        for seed in [0, 1, 7, 42, 2024, 123_456_789] {
            tch::manual_seed(seed);
            let first = values(&method.compute_mask(&t, &ones)?);
            // Something else draws in between: reseeding alone decides the mask.
            let _ = Tensor::rand([100], (Kind::Float, Device::Cpu));
            tch::manual_seed(seed);
            let second = values(&method.compute_mask(&t, &ones)?);
            assert_eq!(first, second, "{method:?}, seed {seed}");
            distinct_masks.insert(first.iter().map(|&v| v as u8).collect::<Vec<_>>());
        }
        // Different seeds give different masks (6 seeds, at least 2 masks).
        assert!(distinct_masks.len() > 1, "{method:?}");
    }

    // The same holds inside a container, on the remaining entries / channels.
    let default_mask = tf(
        &[
            1., 1., 1., 1., 1., 0., 0., 0., 0., 0., 1., 0., 1., 0., 1., 1., 1., 1., 1., 1., 1., 1.,
            1., 1., 1., 1., 1., 1., 1., 1.,
        ],
        &[6, 5],
    );
    for method in methods {
        let name = format!("{method:?}");
        let mut container = PruningContainer::new();
        container.add_pruning_method(method);
        tch::manual_seed(99);
        let first = values(&container.compute_mask(&t, &default_mask)?);
        tch::manual_seed(99);
        let second = values(&container.compute_mask(&t, &default_mask)?);
        assert_eq!(first, second, "{name}");
    }
    Ok(())
}

/// PyTorch's draw pattern: `rand_like(t)` (t's kind and device), then the `k` largest draws
/// are pruned; nothing else is drawn.
#[test]
fn random_unstructured_draws_rand_like_then_prunes_the_largest() -> TestResult {
    let _rng = rng_lock();
    for kind in [Kind::Float, Kind::Double] {
        let t = distinct(&[3, 4]).to_kind(kind);
        let method = RandomUnstructured::new(5)?;
        for seed in [0, 1, 42, 1234] {
            tch::manual_seed(seed);
            let mask = method.compute_mask(&t, &t.ones_like())?;
            let after = next_cpu_draws();

            tch::manual_seed(seed);
            let draws = values(&t.rand_like());
            let after_expected = next_cpu_draws();

            let mut expected = vec![1.0; 12];
            for &i in argsort(&draws).iter().rev().take(5) {
                expected[i] = 0.0;
            }
            assert_eq!(values(&mask), expected, "{kind:?}, seed {seed}");
            assert_eq!(after, after_expected, "{kind:?}, seed {seed}: draws consumed");
        }
    }
    Ok(())
}

/// PyTorch's draw pattern: `rand(nch)` as float32 on the CPU generator whatever the tensor's
/// kind, then the `k` channels with the smallest draws are pruned.
#[test]
fn random_structured_draws_nch_float32_values_from_the_cpu_generator() -> TestResult {
    let _rng = rng_lock();
    for kind in [Kind::Float, Kind::Double, Kind::Int64] {
        let t = distinct(&[6, 2, 3]).to_kind(kind);
        for (dim, k) in [(0i64, 2usize), (-1, 1), (1, 1)] {
            let channels = t.size()[dim.rem_euclid(3) as usize];
            let method = RandomStructured::new(k as i64, dim)?;
            for seed in [0, 3, 99, 4321] {
                tch::manual_seed(seed);
                let mask = method.compute_mask(&t, &t.ones_like())?;
                let after = next_cpu_draws();

                tch::manual_seed(seed);
                let draws = values(&Tensor::rand([channels], (Kind::Float, Device::Cpu)));
                let after_expected = next_cpu_draws();

                let mut expected = vec![false; channels as usize];
                for &c in argsort(&draws).iter().take(k) {
                    expected[c] = true;
                }
                assert_eq!(mask.kind(), kind);
                assert_eq!(dead_channels(&mask, dim), expected, "{kind:?} dim {dim} seed {seed}");
                assert_eq!(after, after_expected, "{kind:?} dim {dim} seed {seed}");
            }
        }
    }
    Ok(())
}

/// With nothing to prune no random numbers are drawn (PyTorch returns before drawing).
#[test]
fn count_zero_draws_nothing() -> TestResult {
    let _rng = rng_lock();
    let t = distinct(&[4, 5]);
    let methods: Vec<Box<dyn PruningMethod>> = vec![
        Box::new(RandomUnstructured::new(0)?),
        Box::new(RandomUnstructured::new(0.0)?),
        Box::new(RandomUnstructured::new(0.02)?), // round(0.4) = 0
        Box::new(RandomStructured::new(0, 0)?),
        Box::new(RandomStructured::new(0.1, 0)?), // round(0.4) = 0
        Box::new(RandomStructured::new(0.0, -1)?),
    ];
    for method in methods {
        tch::manual_seed(5);
        let mask = method.compute_mask(&t, &t.ones_like())?;
        let after = next_cpu_draws();
        tch::manual_seed(5);
        assert_eq!(after, next_cpu_draws(), "{method:?}");
        assert_eq!(zeros(&mask), 0, "{method:?}");
    }
    Ok(())
}

/// Inside a container the draws are made on the still-unpruned part only: `rand_like` of the
/// 1-D vector of remaining entries, or `rand(alive channels)`.
#[test]
fn container_draws_on_the_remaining_units_only() -> TestResult {
    let _rng = rng_lock();
    let t = distinct(&[3, 4]);
    // 7 entries remain (row-major positions 0, 2, 3, 8, 9, 10, 11); row 1 is dead.
    let default_mask = tf(&[1., 0., 1., 1., 0., 0., 0., 0., 1., 1., 1., 1.], &[3, 4]);
    let remaining = [0usize, 2, 3, 8, 9, 10, 11];

    let mut container = PruningContainer::new();
    container.add_pruning_method(Box::new(RandomUnstructured::new(3)?));
    for seed in [0, 8, 77] {
        tch::manual_seed(seed);
        let mask = container.compute_mask(&t, &default_mask)?;
        let after = next_cpu_draws();
        tch::manual_seed(seed);
        let draws = values(&Tensor::rand([7], (Kind::Float, Device::Cpu)));
        let after_expected = next_cpu_draws();
        let mut expected = values(&default_mask);
        for &j in argsort(&draws).iter().rev().take(3) {
            expected[remaining[j]] = 0.0;
        }
        assert_eq!(values(&mask), expected, "seed {seed}");
        assert_eq!(after, after_expected, "seed {seed}");
    }

    // Structured: rows 0 and 2 are alive; one of them goes.
    let mut container = PruningContainer::new();
    container.add_pruning_method(Box::new(RandomStructured::new(1, 0)?));
    for seed in [0, 8, 77] {
        tch::manual_seed(seed);
        let mask = container.compute_mask(&t, &default_mask)?;
        let after = next_cpu_draws();
        tch::manual_seed(seed);
        let draws = values(&Tensor::rand([2], (Kind::Float, Device::Cpu)));
        let after_expected = next_cpu_draws();
        let pruned_row = if draws[0] <= draws[1] { 0 } else { 2 };
        let mut expected = values(&default_mask);
        for col in 0..4 {
            expected[pruned_row * 4 + col] = 0.0;
        }
        assert_eq!(values(&mask), expected, "seed {seed}");
        assert_eq!(after, after_expected, "seed {seed}");
    }
    Ok(())
}

/// On CUDA: RandomStructured still draws from the CPU generator (same mask as on the CPU),
/// RandomUnstructured draws from the CUDA generator and leaves the CPU one alone. Runs with
/// `--features cuda-tests` on a machine with CUDA; otherwise it says why and passes.
#[test]
fn cuda_random_methods_use_the_documented_generators() -> TestResult {
    if !cfg!(feature = "cuda-tests") {
        eprintln!("skipped: build with --features cuda-tests to run the CUDA variant");
        return Ok(());
    }
    if !tch::Cuda::is_available() {
        eprintln!("skipped: --features cuda-tests, but no CUDA device is available");
        return Ok(());
    }
    let _rng = rng_lock();
    let cuda = Device::Cuda(0);
    let cpu_t = distinct(&[6, 4]);
    let cuda_t = cpu_t.to_device(cuda);

    let structured = RandomStructured::new(2, 0)?;
    for seed in [0, 1, 2, 3] {
        tch::manual_seed(seed);
        let cpu_mask = structured.compute_mask(&cpu_t, &cpu_t.ones_like())?;
        tch::manual_seed(seed);
        let cuda_mask = structured.compute_mask(&cuda_t, &cuda_t.ones_like())?;
        assert_eq!(cuda_mask.device(), cuda);
        assert_eq!(values(&cuda_mask), values(&cpu_mask), "seed {seed}");
    }

    let unstructured = RandomUnstructured::new(5)?;
    for seed in [0, 1, 2, 3] {
        tch::manual_seed(seed);
        let mask = unstructured.compute_mask(&cuda_t, &cuda_t.ones_like())?;
        let after = next_cpu_draws();
        tch::manual_seed(seed);
        let draws = values(&cuda_t.rand_like());
        let after_expected = next_cpu_draws();
        let mut expected = vec![1.0; 24];
        for &i in argsort(&draws).iter().rev().take(5) {
            expected[i] = 0.0;
        }
        assert_eq!(mask.device(), cuda);
        assert_eq!(values(&mask), expected, "seed {seed}");
        assert_eq!(after, after_expected, "seed {seed}: no CPU draws");
    }
    Ok(())
}
