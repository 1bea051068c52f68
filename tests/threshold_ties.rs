//! Large CPU tensors (where the crate selects in linear time instead of calling `topk`) whose
//! scores tie exactly at the selection threshold, with only some of the tied entries pruned:
//! the masks must still be the ones PyTorch computes, that is libtorch `topk`'s choice on
//! exactly the tensor PyTorch calls it on. Each expected mask below replays PyTorch's algorithm
//! with the same libtorch calls (`topk`, `rand_like`, `masked_select`, `cat`); the real PyTorch
//! is compared in `tests/parity.rs` (fixtures) and `tests/global_ties_pytorch.rs`.
//!
//! The common case: prune, `remove`, prune again, and every entry the first pruning zeroed
//! ties at 0. Seeded `RandomUnstructured` masks of large tensors are PyTorch's too.

mod common;

use common::rng::rng_lock;
use tch::nn;
use tch::{Device, Kind, Tensor};
use tch_prune::{
    prunable, L1Unstructured, PrunedModel, Pruner, PruningContainer, PruningMethod,
    RandomUnstructured,
};

const CPU: Device = Device::Cpu;

#[derive(Debug)]
struct Net {
    a: nn::Linear,
    b: nn::Linear,
    c: nn::Linear,
}
prunable!(Net { a, b, c });

const NAMES: [&str; 3] = ["a.weight", "b.weight", "c.weight"];

/// Weights from a formula (no generator): `a` has 48,000 entries, 64,000 in all.
fn net() -> (nn::VarStore, PrunedModel<Net>) {
    let vs = nn::VarStore::new(CPU);
    let net = Net {
        a: nn::linear(vs.root() / "a", 200, 240, Default::default()),
        b: nn::linear(vs.root() / "b", 240, 64, Default::default()),
        c: nn::linear(vs.root() / "c", 64, 10, Default::default()),
    };
    for (i, w) in [&net.a.ws, &net.b.ws, &net.c.ws].into_iter().enumerate() {
        let values = formula(w.numel() as i64, i as f64, Kind::Float).view_as(w);
        tch::no_grad(|| w.shallow_clone().copy_(&values));
    }
    let model = PrunedModel::new(net, &vs).unwrap();
    (vs, model)
}

/// `n` well-mixed values in about [-0.1, 0.1] (distinct in practice), without the generator.
fn formula(n: i64, phase: f64, kind: Kind) -> Tensor {
    ((Tensor::arange(n, (Kind::Double, CPU)) + phase * 0.37) * 12.9898).sin().to_kind(kind) * 0.1
}

/// `n` values on 17 levels (multiples of 1/8 in [-1, 1], both signs): ties everywhere.
fn levels(n: i64, kind: Kind) -> Tensor {
    ((formula(n, 0.0, Kind::Double) * 80.0).round() / 8.0).to_kind(kind)
}

/// `round(amount * n)`, half to even, as PyTorch.
fn count(amount: f64, n: i64) -> i64 {
    (amount * n as f64).round_ties_even() as i64
}

/// Whether the `k` smallest (`largest == false`) or largest scores end among tied scores, only
/// some of which are selected: the case these tests are about.
fn straddles(scores: &Tensor, k: i64, largest: bool) -> bool {
    let flat = scores.reshape([-1]);
    let (values, _) = flat.topk(k, 0, largest, true);
    let threshold = values.double_value(&[k - 1]);
    let up_to = if largest { flat.ge(threshold) } else { flat.le(threshold) };
    up_to.sum(Kind::Int64).int64_value(&[]) > k
}

/// PyTorch's `L1Unstructured.compute_mask`: `topk(|t|.view(-1), k, largest=False)` zeroed in
/// a copy of the default mask.
fn pytorch_l1(t: &Tensor, k: i64, default: &Tensor) -> Tensor {
    let mask = default.copy();
    if k > 0 {
        let (_, idx) = t.abs().reshape([-1]).topk(k, 0, false, true);
        let _ = mask.view([-1]).index_fill_(0, &idx, 0);
    }
    mask
}

/// PyTorch's `RandomUnstructured.compute_mask` (seeded by the caller): the `k` largest of
/// `rand_like(t)` zeroed in a copy of the default mask.
fn pytorch_random(t: &Tensor, k: i64, default: &Tensor) -> Tensor {
    let mask = default.copy();
    if k > 0 {
        let (_, idx) = t.rand_like().reshape([-1]).topk(k, 0, true, true);
        let _ = mask.view([-1]).index_fill_(0, &idx, 0);
    }
    mask
}

/// PyTorch's container step for an unstructured method: the method runs on `t[mask == 1]`
/// (amount relative to that slice) and its mask is written back into `mask.to(t.dtype)`.
fn pytorch_container(
    t: &Tensor,
    mask: &Tensor,
    amount: f64,
    method: fn(&Tensor, i64, &Tensor) -> Tensor,
) -> Tensor {
    let new_mask = mask.to_kind(t.kind()).copy();
    let available = mask.eq(1.0);
    let slice = t.masked_select(&available);
    let k = count(amount, slice.numel() as i64);
    let partial = method(&slice, k, &mask.masked_select(&available));
    new_mask.masked_scatter(&available, &partial.to_kind(new_mask.kind()))
}

/// PyTorch's `global_unstructured`: the container step on the concatenated current values
/// and masks (ones for parameters never pruned), split back per parameter.
fn pytorch_global(
    model: &PrunedModel<Net>,
    amount: f64,
    method: fn(&Tensor, i64, &Tensor) -> Tensor,
) -> Vec<Tensor> {
    let mut values = Vec::new();
    let mut masks = Vec::new();
    for name in NAMES {
        let value = model.value(name).unwrap().detach();
        let mask = model.mask(name).map_or_else(|| value.ones_like(), Tensor::shallow_clone);
        values.push(value.reshape([-1]));
        masks.push(mask.reshape([-1]));
    }
    let all = pytorch_container(&Tensor::cat(&values, 0), &Tensor::cat(&masks, 0), amount, method);
    let mut offset = 0;
    values
        .iter()
        .map(|v| {
            let n = v.numel() as i64;
            let part = all.narrow(0, offset, n);
            offset += n;
            part
        })
        .collect()
}

#[track_caller]
fn assert_same_mask(actual: &Tensor, expected: &Tensor, what: &str) {
    assert_eq!(actual.kind(), expected.kind(), "{what}: kind");
    let expected = expected.reshape(actual.size().as_slice());
    let differ = actual.ne_tensor(&expected).sum(Kind::Int64).int64_value(&[]);
    assert_eq!(
        differ,
        0,
        "{what}: {differ} of {} mask entries differ from PyTorch's",
        actual.numel()
    );
}

#[test]
fn l1_with_ties_straddling_the_threshold_is_topks_choice() {
    let n = 48_000;
    for kind in [Kind::Float, Kind::Double] {
        let t = levels(n, kind).reshape([240, 200]);
        let default = t.ones_like();
        let _ = default.narrow(0, 0, 3).fill_(0);
        let mut straddling = 0;
        // 0.01: `k * 64 <= n`, where libtorch's `topk` selects with a heap, not nth_element.
        for amount in [0.01, 0.05, 0.3, 0.5, 0.77] {
            let k = count(amount, n);
            straddling += i32::from(straddles(&t.abs(), k, false));
            let ours = L1Unstructured::new(amount).unwrap().compute_mask(&t, &default).unwrap();
            assert_same_mask(&ours, &pytorch_l1(&t, k, &default), &format!("{kind:?} {amount}"));
        }
        assert!(straddling >= 4, "only {straddling} amounts straddle ties");
    }
}

#[test]
fn prune_remove_prune_on_a_large_layer_is_pytorchs() {
    let (_vs, mut model) = net();
    let name = "a.weight";
    model.l1_unstructured(name, 0.5, None).unwrap();
    model.remove(name).unwrap();
    // Half the weights are now exactly zero (some -0.0): 30 % of them are pruned again.
    let weights = model.value(name).unwrap().detach().copy();
    let k = count(0.3, weights.numel() as i64);
    assert!(straddles(&weights.abs(), k, false));
    model.l1_unstructured(name, 0.3, None).unwrap();
    let expected = pytorch_l1(&weights, k, &weights.ones_like());
    assert_same_mask(model.mask(name).unwrap(), &expected, "after remove");

    // Pruning again goes through the container: the unpruned slice still holds 9,600 zeros.
    let current = model.value(name).unwrap().detach();
    let expected = pytorch_container(&current, &expected, 0.1, pytorch_l1);
    model.l1_unstructured(name, 0.1, None).unwrap();
    assert_same_mask(model.mask(name).unwrap(), &expected, "container step");
}

#[test]
fn container_with_ties_in_the_unpruned_slice_is_pytorchs() {
    let n = 40_000;
    for kind in [Kind::Float, Kind::Double] {
        let t = levels(n, kind).reshape([200, 200]);
        // Entries 0, 1 and 0.5 (only mask == 1 competes), in the mask's own kind.
        let default =
            (formula(n, 3.0, Kind::Double).reshape([200, 200]) * 20.0).round().clamp(0.0, 2.0)
                / 2.0;
        let default = default.to_kind(Kind::Float);
        let available = default.eq(1.0);
        assert!(available.sum(Kind::Int64).int64_value(&[]) >= 32768 / 4);
        for amount in [0.01, 0.2, 0.6] {
            let slice = t.masked_select(&available);
            assert!(straddles(&slice.abs(), count(amount, slice.numel() as i64), false));
            let container: PruningContainer =
                [L1Unstructured::new(amount).unwrap()].into_iter().collect();
            let ours = container.compute_mask(&t, &default).unwrap();
            let expected = pytorch_container(&t, &default, amount, pytorch_l1);
            assert_same_mask(&ours, &expected, &format!("{kind:?} {amount}"));
        }
    }
}

#[test]
fn global_prune_remove_prune_is_pytorchs() {
    let (_vs, mut model) = net();
    model.global_unstructured(&NAMES, L1Unstructured::new(0.5).unwrap(), &[]).unwrap();
    for name in NAMES {
        model.remove(name).unwrap();
    }
    // Global pruning ranks all 64,000 entries; the 32,000 zeros tie.
    for amount in [0.3, 0.2] {
        let expected = pytorch_global(&model, amount, pytorch_l1);
        model.global_unstructured(&NAMES, L1Unstructured::new(amount).unwrap(), &[]).unwrap();
        for (name, expected) in NAMES.iter().zip(&expected) {
            assert_same_mask(model.mask(name).unwrap(), expected, &format!("{name} {amount}"));
        }
    }
}

#[test]
fn seeded_random_unstructured_on_large_tensors_is_pytorchs() {
    let _rng = rng_lock();
    for (kind, shape) in [(Kind::Float, [200i64, 200]), (Kind::Double, [180, 190])] {
        let t = Tensor::zeros(shape, (kind, CPU));
        let default = t.ones_like();
        let _ = default.narrow(1, 0, 1).fill_(0);
        for (seed, amount) in [(0, 0.3), (7, 0.5), (11, 0.01)] {
            let k = count(amount, t.numel() as i64);
            tch::manual_seed(seed);
            let ours = RandomUnstructured::new(amount).unwrap().compute_mask(&t, &default).unwrap();
            tch::manual_seed(seed);
            let expected = pytorch_random(&t, k, &default);
            assert_same_mask(&ours, &expected, &format!("{kind:?} seed {seed}"));
        }
    }
}

/// `f32` draws are multiples of 2^-24: among 40,000 of them some are equal. With `k` ending on
/// such a pair, only one of the two is pruned, and which one is `topk`'s choice.
#[test]
fn random_draws_tied_at_the_threshold_are_topks_choice() {
    let _rng = rng_lock();
    let t = Tensor::zeros([200, 200], (Kind::Float, CPU));
    tch::manual_seed(5);
    let draws = t.rand_like().reshape([-1]);
    let (sorted, _) = draws.sort(0, true);
    let equal = sorted.narrow(0, 1, 39_999).eq_tensor(&sorted.narrow(0, 0, 39_999));
    let pairs = equal.nonzero().reshape([-1]);
    assert!(pairs.numel() > 0, "no two equal draws");
    // The first of a tied pair (in descending order) is at `i`: prune `i + 1` draws.
    for p in [0, pairs.numel() as i64 / 2] {
        let k = pairs.int64_value(&[p]) + 1;
        assert!(straddles(&draws, k, true));
        tch::manual_seed(5);
        let ours = RandomUnstructured::new(k).unwrap().compute_mask(&t, &t.ones_like()).unwrap();
        tch::manual_seed(5);
        let expected = pytorch_random(&t, k, &t.ones_like());
        assert_same_mask(&ours, &expected, &format!("k {k}"));
    }
}

/// Model-level random pruning, inside a container (the unpruned slice is above 32768 entries)
/// and globally: PyTorch's draws on PyTorch's tensors.
#[test]
fn model_level_and_global_random_pruning_is_pytorchs() {
    let _rng = rng_lock();
    let (_vs, mut model) = net();
    let name = "a.weight";
    let weights = model.value(name).unwrap().detach().copy();
    tch::manual_seed(21);
    let expected = pytorch_random(&weights, count(0.2, 48_000), &weights.ones_like());
    tch::manual_seed(21);
    model.random_unstructured(name, 0.2).unwrap();
    assert_same_mask(model.mask(name).unwrap(), &expected, "first");

    let current = model.value(name).unwrap().detach();
    tch::manual_seed(22);
    let expected = pytorch_container(&current, &expected, 0.25, pytorch_random);
    tch::manual_seed(22);
    model.random_unstructured(name, 0.25).unwrap();
    assert_same_mask(model.mask(name).unwrap(), &expected, "container");

    tch::manual_seed(23);
    let expected = pytorch_global(&model, 0.4, pytorch_random);
    tch::manual_seed(23);
    model.global_unstructured(&NAMES, RandomUnstructured::new(0.4).unwrap(), &[]).unwrap();
    for (name, expected) in NAMES.iter().zip(&expected) {
        assert_same_mask(model.mask(name).unwrap(), expected, &format!("global {name}"));
    }
}
