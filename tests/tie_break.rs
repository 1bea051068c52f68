//! `TieBreak::LowestIndex` on large CPU tensors (the linear-time selection): where entries tie
//! at the threshold and only some of them go, the lowest indices go first (row-major, then
//! parameter order) — for one tensor, inside a container (the slice of unpruned entries) and
//! in global pruning; and the default still gives libtorch `topk`'s choice.

use tch::nn;
use tch::{Device, Kind, Tensor};
use tch_prune::{prunable, L1Unstructured, PrunedModel, Pruner, PruningMethod, TieBreak};

const CPU: Device = Device::Cpu;

#[derive(Debug)]
struct Net {
    a: nn::Linear,
    b: nn::Linear,
}
prunable!(Net { a, b });

/// `n` values on 17 levels (multiples of 1/8 in [-1, 1], both signs): ties everywhere.
fn levels(n: i64, phase: f64) -> Tensor {
    let x = ((Tensor::arange(n, (Kind::Double, CPU)) + phase) * 12.9898).sin();
    ((x * 8.0).round() / 8.0).to_kind(Kind::Float)
}

/// Two layers (48,000 and 15,360 weights) with tied weights.
fn net() -> (nn::VarStore, PrunedModel<Net>) {
    let vs = nn::VarStore::new(CPU);
    let net = Net {
        a: nn::linear(vs.root() / "a", 200, 240, Default::default()),
        b: nn::linear(vs.root() / "b", 240, 64, Default::default()),
    };
    for (i, w) in [&net.a.ws, &net.b.ws].into_iter().enumerate() {
        let values = levels(w.numel() as i64, i as f64).view_as(w);
        tch::no_grad(|| w.shallow_clone().copy_(&values));
    }
    let model = PrunedModel::new(net, &vs).unwrap();
    (vs, model)
}

/// The mask zeroing the `k` smallest `|scores|` among the entries where `available` is true,
/// equal magnitudes in index order (a stable sort), on top of `base`.
fn lowest_index(scores: &Tensor, available: &Tensor, k: i64, base: &Tensor) -> Tensor {
    let positions = available.reshape([-1]).nonzero().reshape([-1]);
    let slice = scores.reshape([-1]).index_select(0, &positions).abs();
    let order = slice.argsort_stable(true, 0, false).narrow(0, 0, k);
    base.reshape([-1]).index_fill(0, &positions.index_select(0, &order), 0.0).view_as(scores)
}

fn fast(amount: f64) -> L1Unstructured {
    L1Unstructured::new(amount).unwrap().with_tie_break(TieBreak::LowestIndex)
}

fn count(amount: f64, n: i64) -> i64 {
    (amount * n as f64).round_ties_even() as i64
}

#[test]
fn one_tensor_and_prune_remove_prune() {
    let (_vs, mut model) = net();
    let w = model.value("a.weight").unwrap().detach().copy();
    let n = w.numel() as i64;
    let all = w.ones_like().to_kind(Kind::Bool);
    model.apply("a.weight", fast(0.3), None).unwrap();
    let expected = lowest_index(&w, &all, count(0.3, n), &w.ones_like());
    assert!(model.mask("a.weight").unwrap().equal(&expected));
    // After `remove`, every pruned weight is 0: pruning more cuts through the zeros.
    model.remove("a.weight").unwrap();
    let w = model.value("a.weight").unwrap().detach().copy();
    model.apply("a.weight", fast(0.2), None).unwrap();
    let expected = lowest_index(&w, &all, count(0.2, n), &w.ones_like());
    assert!(model.mask("a.weight").unwrap().equal(&expected));
}

#[test]
fn container_slice_in_index_order() {
    let (_vs, mut model) = net();
    let w = model.value("a.weight").unwrap().detach().copy();
    model.apply("a.weight", fast(0.3), None).unwrap();
    let first = model.mask("a.weight").unwrap().copy();
    // The second pruning ranks the still-unpruned entries only (PyTorch's container).
    model.apply("a.weight", fast(0.3), None).unwrap();
    let available = first.eq(1.0);
    let k = count(0.3, available.sum(Kind::Int64).int64_value(&[]));
    let expected = lowest_index(&w, &available, k, &first);
    assert!(model.mask("a.weight").unwrap().equal(&expected));
}

#[test]
fn global_in_parameter_then_index_order() {
    let (_vs, mut model) = net();
    let names = ["a.weight", "b.weight"];
    let values: Vec<Tensor> =
        names.iter().map(|n| model.value(n).unwrap().detach().reshape([-1])).collect();
    let all = Tensor::cat(&values, 0);
    let k = count(0.4, all.numel() as i64);
    model.global_unstructured(&names, fast(0.4), &[]).unwrap();
    let ones = all.ones_like();
    let expected = lowest_index(&all, &ones.to_kind(Kind::Bool), k, &ones);
    let got: Vec<Tensor> = names.iter().map(|n| model.mask(n).unwrap().reshape([-1])).collect();
    assert!(Tensor::cat(&got, 0).equal(&expected));
}

/// The two rules agree where no tie straddles the cut, and differ (with the default giving
/// `topk`'s choice) where one does.
#[test]
fn default_is_topks_choice() {
    let (_vs, model) = net();
    let w = model.value("a.weight").unwrap().detach().copy();
    let ones = w.ones_like();
    let k = count(0.3, w.numel() as i64);
    let exact = L1Unstructured::new(0.3).unwrap().compute_mask(&w, &ones).unwrap();
    let (_, idx) = w.abs().reshape([-1]).topk(k, 0, false, true);
    let topk = ones.reshape([-1]).index_fill(0, &idx, 0.0).view_as(&w);
    assert!(exact.equal(&topk));
    let lowest = fast(0.3).compute_mask(&w, &ones).unwrap();
    assert!(!lowest.equal(&exact), "the levels straddle the cut: the rules must differ here");
    assert_eq!(lowest.eq(0.0).sum(Kind::Int64), exact.eq(0.0).sum(Kind::Int64));
}
