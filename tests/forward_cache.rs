//! Evaluation without gradients reuses `orig * mask` while neither tensor changes; any change
//! (optimizer step, load, re-pruning, `set_data`) is picked up by the next forward.

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};
use tch_prune::{PrunedModel, Pruner};

fn model() -> (nn::VarStore, PrunedModel<nn::Linear>) {
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let fc = nn::linear(vs.root() / "fc", 6, 4, Default::default());
    let mut m = PrunedModel::with_prefix(fc, &vs, "fc").unwrap();
    m.l1_unstructured("fc.weight", 0.5, None).unwrap();
    (vs, m)
}

/// The output an unpruned layer with weight `orig * mask` gives.
fn reference(m: &PrunedModel<nn::Linear>, x: &Tensor) -> Tensor {
    let w = m.orig("fc.weight").unwrap() * m.mask("fc.weight").unwrap();
    tch::no_grad(|| x.matmul(&w.tr()) + m.model().bs.as_ref().unwrap())
}

#[test]
fn evaluation_reuses_the_pruned_weight_while_nothing_changes() {
    let (_vs, mut m) = model();
    let x = Tensor::randn([3, 6], (Kind::Float, Device::Cpu));
    let first = tch::no_grad(|| m.forward(&x)).unwrap();
    let ptr = m.model().ws.data_ptr();
    let second = tch::no_grad(|| m.forward(&x)).unwrap();
    assert_eq!(m.model().ws.data_ptr(), ptr, "the cached product is reused");
    assert!(first.equal(&second));
    assert!(second.allclose(&reference(&m, &x), 1e-6, 1e-6, false));
}

#[test]
fn evaluation_sees_optimizer_steps_loads_and_re_pruning() {
    let (vs, mut m) = model();
    let mut opt = nn::Sgd::default().build(&vs, 0.5).unwrap();
    let x = Tensor::randn([3, 6], (Kind::Float, Device::Cpu));
    let _ = tch::no_grad(|| m.forward(&x)).unwrap();

    // A training step changes orig in place: the next evaluation must see it.
    let loss = m.forward(&x).unwrap().square().sum(Kind::Float);
    opt.backward_step(&loss);
    let after_step = tch::no_grad(|| m.forward(&x)).unwrap();
    assert!(after_step.allclose(&reference(&m, &x), 1e-6, 1e-6, false));

    // A manual in-place edit of orig.
    let _ = tch::no_grad(|| m.orig("fc.weight").unwrap().shallow_clone().fill_(0.25));
    let after_edit = tch::no_grad(|| m.forward(&x)).unwrap();
    assert!(after_edit.allclose(&reference(&m, &x), 1e-6, 1e-6, false));
    assert!(!after_edit.allclose(&after_step, 1e-6, 1e-6, false));

    // Re-pruning replaces the mask.
    m.l1_unstructured("fc.weight", 2, None).unwrap();
    let after_prune = tch::no_grad(|| m.forward(&x)).unwrap();
    assert!(after_prune.allclose(&reference(&m, &x), 1e-6, 1e-6, false));

    // Loading a checkpoint writes into orig and mask in place.
    let dir = std::env::temp_dir().join(format!("tch-prune-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    vs.save(&path).unwrap();
    let _ = tch::no_grad(|| m.mask("fc.weight").unwrap().shallow_clone().fill_(1.0));
    let _ = tch::no_grad(|| m.forward(&x)).unwrap();
    let mut vs = vs;
    vs.load(&path).unwrap();
    let after_load = tch::no_grad(|| m.forward(&x)).unwrap();
    assert!(after_load.allclose(&after_prune, 1e-6, 1e-6, false));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn training_forward_after_evaluation_still_backpropagates_through_the_mask() {
    let (_vs, mut m) = model();
    let x = Tensor::ones([1, 6], (Kind::Float, Device::Cpu));
    let _ = tch::no_grad(|| m.forward(&x)).unwrap();
    for _ in 0..2 {
        let out = m.forward(&x).unwrap().sum(Kind::Float);
        m.orig("fc.weight").unwrap().shallow_clone().zero_grad();
        out.backward();
        let grad = m.orig("fc.weight").unwrap().grad();
        let expected = m.mask("fc.weight").unwrap().expand([4, 6], false);
        assert!(grad.equal(&expected));
    }
    let _ = m.model().forward(&x);
}

/// `orig.set_data(a)` then `orig.set_data(b)` with no forward between frees the storage the
/// cached product was formed from, and `b`'s storage can be allocated at its address, with an
/// unchanged version counter (`set_data` keeps it). A cache keyed on data pointer and version
/// then returned the old product. The weight is over 32 MiB so that the allocation is
/// reproducible: glibc maps blocks that large on their own, and the kernel hands a freed
/// block's address back to the next block of that size.
#[test]
fn evaluation_sees_set_data_when_the_old_address_is_reused() {
    let vs = nn::VarStore::new(Device::Cpu);
    let config = nn::LinearConfig { bias: false, ..Default::default() };
    let fc = nn::linear(vs.root() / "fc", 4096, 2050, config);
    let mut m = PrunedModel::with_prefix(fc, &vs, "fc").unwrap();
    m.identity("fc.weight").unwrap();
    let x = Tensor::ones([1, 4096], (Kind::Float, Device::Cpu));
    let _ = tch::no_grad(|| m.forward(&x)).unwrap(); // caches orig * mask

    let mut orig = m.orig("fc.weight").unwrap().shallow_clone();
    let (address, shape) = (orig.data_ptr(), orig.size());
    let full = |v: f64| Tensor::full(shape.as_slice(), v, (Kind::Float, Device::Cpu));
    orig.set_data(&full(1.0)); // frees the first storage, unless something still holds it
                               // A storage of the same size at the freed address, if the allocator gives it back.
    let mut held = Vec::new();
    let b = loop {
        let t = full(2.0);
        if t.data_ptr() == address || held.len() == 2 {
            break t;
        }
        held.push(t);
    };
    drop(held);
    orig.set_data(&b);
    drop(b);

    // Every weight is 2 now: each output is 2 * 4096.
    let out = tch::no_grad(|| m.forward(&x)).unwrap();
    assert_eq!(out.size(), [1, 2050]);
    assert!(out.eq(8192.0).all().int64_value(&[]) == 1, "the cached product was reused");
}
