//! Module-level pruning: the cases of PyTorch's `test/nn/test_pruning.py` (class `TestPruningNN`)
//! that need a module, ported to [`PrunedModel`] under the same names,
//! followed by the crate's own promises: a failing call changes nothing, an
//! optimizer built before pruning keeps training `<name>_orig`, and the gradient reaching
//! `<name>_orig` is the upstream gradient times the mask.
//!
//! Above each ported test is the PyTorch code it comes from (shortened). PyTorch's `mock.patch`
//! of a method's `compute_mask` becomes a test-only [`PruningMethod`] that returns a fixed mask
//! ([`ReturnsMask`]) or fails ([`Fails`]); `m.weight` (the attribute the pre-hook sets) is the
//! model's slot, read with [`slot`]; `named_parameters()` / `named_buffers()` /
//! `state_dict()` are the `VarStore`'s keys.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use tch::nn::{self, Module, OptimizerConfig, VarStore};
use tch::{Device, Kind, TchError, Tensor};
use tch_prune::{
    prunable, CustomFromMask, L1Unstructured, LnStructured, Prunable, PruneError, PrunedModel,
    Pruner, PruningMethod, PruningType,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const CPU: Device = Device::Cpu;

/// A float32 tensor of the given shape from row-major values.
fn tf(values: &[f32], shape: &[i64]) -> Tensor {
    Tensor::from_slice(values).reshape(shape)
}

/// The values of `t`, row-major, as `f64`.
fn vals(t: &Tensor) -> Vec<f64> {
    let flat = t.detach().to_device(CPU).to_kind(Kind::Double).contiguous().reshape([-1]);
    Vec::<f64>::try_from(&flat).expect("tensor converts to Vec<f64>")
}

/// Asserts that two tensors have the same shape and (exactly) the same values.
#[track_caller]
fn assert_same_values(actual: &Tensor, expected: &Tensor, what: &str) {
    assert_eq!(actual.size(), expected.size(), "{what}: shape");
    assert_eq!(vals(actual), vals(expected), "{what}: values");
}

/// Asserts that two tensors have the same shape and values within `tol`.
#[track_caller]
fn assert_close(actual: &Tensor, expected: &Tensor, tol: f64, what: &str) {
    assert_eq!(actual.size(), expected.size(), "{what}: shape");
    for (i, (a, e)) in vals(actual).into_iter().zip(vals(expected)).enumerate() {
        assert!((a - e).abs() <= tol, "{what}: entry {i}: {a} vs {e} (tolerance {tol})");
    }
}

/// The `VarStore`'s variable names (PyTorch: the `state_dict` keys).
fn keys(vs: &VarStore) -> BTreeSet<String> {
    vs.variables().into_keys().collect()
}

/// A set of names, for comparing with [`keys`].
fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The `VarStore` variable `name` (a shallow clone: the same tensor).
#[track_caller]
fn var(vs: &VarStore, name: &str) -> Tensor {
    vs.variables()
        .remove(name)
        .unwrap_or_else(|| panic!("no variable {name:?} in the VarStore: {:?}", keys(vs)))
}

/// The model's slot for `name`: what the layer computes with (PyTorch: `getattr(m, name)`).
#[track_caller]
fn slot<M: Prunable>(model: &mut PrunedModel<M>, name: &str) -> Tensor {
    model
        .model_mut()
        .param_slots()
        .into_iter()
        .find(|(path, _)| path == name)
        .map(|(_, t)| t.shallow_clone())
        .unwrap_or_else(|| panic!("the model has no slot {name:?}"))
}

/// Points the model's slot `name` at `value` (to compute the upstream gradient by hand).
fn set_slot<M: Prunable>(model: &mut PrunedModel<M>, name: &str, value: &Tensor) {
    for (path, slot) in model.model_mut().param_slots() {
        if path == name {
            *slot = value.shallow_clone();
        }
    }
}

/// Writes `value` into the variable `t` in place (PyTorch: `m.weight.data = value`).
fn fill(t: &mut Tensor, value: &Tensor) {
    tch::no_grad(|| t.f_copy_(value)).expect("copy_");
}

/// Zeroes the gradient of every trainable variable (PyTorch: `m.zero_grad()`).
fn zero_grad(vs: &VarStore) {
    for mut t in vs.trainable_variables() {
        t.zero_grad();
    }
}

/// The `Debug` names of the methods in the pruning history of `name`.
fn history_names<M: Prunable>(model: &PrunedModel<M>, name: &str) -> Vec<String> {
    model
        .history(name)
        .unwrap_or_else(|| panic!("{name} is not pruned"))
        .iter()
        .map(|m| format!("{m:?}"))
        .collect()
}

/// `mock.patch("torch.nn.utils.prune.<Method>.compute_mask")` with a `return_value`: a method
/// that ignores its inputs and returns a fixed mask.
#[derive(Debug)]
struct ReturnsMask(Tensor);

impl PruningMethod for ReturnsMask {
    fn compute_mask(
        &self,
        _importance: &Tensor,
        _default_mask: &Tensor,
    ) -> tch_prune::Result<Tensor> {
        Ok(self.0.shallow_clone())
    }

    fn pruning_type(&self) -> PruningType {
        PruningType::Unstructured
    }
}

/// As [`ReturnsMask`], for a structured method along `dim` 0 (a container hands it the channels
/// that are still alive).
#[derive(Debug)]
struct ReturnsChannelMask(Tensor);

impl PruningMethod for ReturnsChannelMask {
    fn compute_mask(
        &self,
        _importance: &Tensor,
        _default_mask: &Tensor,
    ) -> tch_prune::Result<Tensor> {
        Ok(self.0.shallow_clone())
    }

    fn pruning_type(&self) -> PruningType {
        PruningType::Structured { dim: 0 }
    }
}

/// `mock.patch(...compute_mask)` with `side_effect = Exception("HA!")`: a method that fails.
#[derive(Debug)]
struct Fails;

impl PruningMethod for Fails {
    fn compute_mask(
        &self,
        _importance: &Tensor,
        _default_mask: &Tensor,
    ) -> tch_prune::Result<Tensor> {
        Err(PruneError::Torch(TchError::Torch("HA!".into())))
    }

    fn pruning_type(&self) -> PruningType {
        PruningType::Unstructured
    }
}

fn is_ha(err: &PruneError) -> bool {
    matches!(err, PruneError::Torch(TchError::Torch(msg)) if msg == "HA!")
}

/// `nn.Linear(5, 7)` or `nn.Conv3d(2, 2, 2)`, built at the `VarStore` root so their parameters
/// are named `weight` and `bias` as in PyTorch.
#[derive(Debug)]
enum Layer {
    Linear(nn::Linear),
    Conv3d(nn::Conv3D),
}

impl Prunable for Layer {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        match self {
            Layer::Linear(l) => l.param_slots(),
            Layer::Conv3d(c) => c.param_slots(),
        }
    }
}

impl Module for Layer {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self {
            Layer::Linear(l) => l.forward(xs),
            Layer::Conv3d(c) => c.forward(xs),
        }
    }
}

/// One of PyTorch's `modules = [nn.Linear(5, 7), nn.Conv3d(2, 2, 2)]`, with its `VarStore`.
struct Case {
    label: &'static str,
    vs: VarStore,
    model: PrunedModel<Layer>,
    /// A valid input for the layer.
    input: Tensor,
}

/// `modules = [nn.Linear(5, 7), nn.Conv3d(2, 2, 2)]`.
fn modules() -> Vec<Case> {
    let linear = {
        let vs = VarStore::new(CPU);
        let layer = Layer::Linear(nn::linear(vs.root(), 5, 7, Default::default()));
        let model = PrunedModel::new(layer, &vs).unwrap();
        let input = Tensor::randn([3, 5], (Kind::Float, CPU));
        Case { label: "Linear(5, 7)", vs, model, input }
    };
    let conv = {
        let vs = VarStore::new(CPU);
        let layer = Layer::Conv3d(nn::conv3d(vs.root(), 2, 2, 2, Default::default()));
        let model = PrunedModel::new(layer, &vs).unwrap();
        let input = Tensor::randn([2, 2, 3, 3, 3], (Kind::Float, CPU));
        Case { label: "Conv3d(2, 2, 2)", vs, model, input }
    };
    vec![linear, conv]
}

/// `names = ["weight", "bias"]`.
const NAMES: [&str; 2] = ["weight", "bias"];

/// `nn.Linear(5, 2)` at the root, as in the forward/backward tests.
fn linear_5_2(bias: bool) -> (VarStore, PrunedModel<nn::Linear>) {
    let vs = VarStore::new(CPU);
    let config = nn::LinearConfig { bias, ..Default::default() };
    let model = PrunedModel::new(nn::linear(vs.root(), 5, 2, config), &vs).unwrap();
    (vs, model)
}

/// Two layers `m` and `n`, as in PyTorch's global-pruning tests.
#[derive(Debug)]
struct TwoLayers {
    m: nn::Linear,
    n: nn::Linear,
}
prunable!(TwoLayers { m, n });

impl Module for TwoLayers {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.m).apply(&self.n)
    }
}

/// `m = nn.Linear(4, 2)` with weight `[[1, 2, 3, 4], [-4, -3, -2, -1]]` and `n = nn.Linear(3, 1)`
/// with weight `[[0, 0.1, -2]]` (`n_bias`: whether `n` has a bias).
fn global_layers(n_bias: bool) -> (VarStore, PrunedModel<TwoLayers>) {
    let vs = VarStore::new(CPU);
    let root = vs.root();
    let mut net = TwoLayers {
        m: nn::linear(&root / "m", 4, 2, Default::default()),
        n: nn::linear(&root / "n", 3, 1, nn::LinearConfig { bias: n_bias, ..Default::default() }),
    };
    fill(&mut net.m.ws, &tf(&[1., 2., 3., 4., -4., -3., -2., -1.], &[2, 4]));
    fill(&mut net.n.ws, &tf(&[0., 0.1, -2.], &[1, 3]));
    let model = PrunedModel::new(net, &vs).unwrap();
    (vs, model)
}

/// `nn.Conv2d(3, 1, 2)` with the weight of `test_ln_structured_pruning`.
fn conv_3_1_2() -> (VarStore, PrunedModel<nn::Conv2D>) {
    let vs = VarStore::new(CPU);
    let mut conv = nn::conv2d(vs.root(), 3, 1, 2, Default::default());
    let weight =
        tf(&[1.0, 2.0, 1.0, 2.5, 0.5, 1.0, 0.1, 0.1, -3.0, -5.0, 0.1, -1.0], &[1, 3, 2, 2]);
    fill(&mut conv.ws, &weight);
    let model = PrunedModel::new(conv, &vs).unwrap();
    (vs, model)
}

/// The mask `torch.ones_like(m.weight)` of shape `[2, 5]` with the given entries set to `value`.
fn mask_2_5(base: f32, entries: &[(usize, usize)], value: f32) -> Tensor {
    let mut data = vec![base; 10];
    for &(r, c) in entries {
        data[r * 5 + c] = value;
    }
    tf(&data, &[2, 5])
}

// ---------------------------------------------------------------------------------------------
// Ported tests (PyTorch's test_pruning.py)
// ---------------------------------------------------------------------------------------------

// PyTorch (test 4):
//     modules = [nn.Linear(5, 7), nn.Conv3d(2, 2, 2)]
//     names = ["weight", "bias"]
//     for m in modules:
//         for name in names:
//             original_tensor = getattr(m, name)
//             prune.random_unstructured(m, name=name, amount=0.1)
//             self.assertEqual(original_tensor.size(), getattr(m, name + "_mask").size())
//             self.assertEqual(original_tensor.size(), getattr(m, name + "_orig").size())
//             self.assertEqual(original_tensor.size(), getattr(m, name).size())
#[test]
fn test_random_pruning_sizes() -> TestResult {
    for Case { label, vs, mut model, .. } in modules() {
        for name in NAMES {
            let original = var(&vs, name);
            model.random_unstructured(name, 0.1)?;
            let size = original.size();
            let (orig, mask) = (format!("{name}_orig"), format!("{name}_mask"));
            assert_eq!(var(&vs, &mask).size(), size, "{label} {mask}");
            assert_eq!(model.mask(name).unwrap().size(), size, "{label} {mask}");
            assert_eq!(var(&vs, &orig).size(), size, "{label} {orig}");
            assert_eq!(model.orig(name).unwrap().size(), size, "{label} {orig}");
            assert_eq!(slot(&mut model, name).size(), size, "{label} {name}");
        }
    }
    Ok(())
}

// PyTorch (test 5):
//     for m in modules:
//         for name in names:
//             original_tensor = getattr(m, name)
//             prune.random_unstructured(m, name=name, amount=0.1)
//             self.assertEqual(original_tensor, getattr(m, name + "_orig"))
#[test]
fn test_random_pruning_orig() -> TestResult {
    for Case { label, vs, mut model, .. } in modules() {
        for name in NAMES {
            let original = var(&vs, name);
            let before = original.copy();
            model.random_unstructured(name, 0.1)?;
            let orig = var(&vs, &format!("{name}_orig"));
            assert_same_values(&orig, &before, &format!("{label} {name}_orig"));
            // The very same tensor, not a copy.
            assert_eq!(orig.data_ptr(), original.data_ptr(), "{label} {name}_orig");
            assert_eq!(model.orig(name).unwrap().data_ptr(), original.data_ptr());
        }
    }
    Ok(())
}

// PyTorch (test 6):
//     for m in modules:
//         for name in names:
//             original_tensor = getattr(m, name)
//             prune.random_unstructured(m, name=name, amount=0.1)
//             self.assertEqual(
//                 getattr(m, name),
//                 getattr(m, name + "_orig")
//                 * getattr(m, name + "_mask").to(dtype=original_tensor.dtype),
//             )
#[test]
fn test_random_pruning_new_weight() -> TestResult {
    for Case { label, vs, mut model, .. } in modules() {
        for name in NAMES {
            let kind = var(&vs, name).kind();
            model.random_unstructured(name, 0.1)?;
            let orig = var(&vs, &format!("{name}_orig"));
            let mask = var(&vs, &format!("{name}_mask"));
            let expected = &orig * mask.to_kind(kind);
            let pruned = slot(&mut model, name);
            assert_eq!(pruned.kind(), kind, "{label} {name}");
            assert_same_values(&pruned, &expected, &format!("{label} {name}"));
        }
    }
    Ok(())
}

// PyTorch (test 7):
//     input_ = torch.ones(1, 5)
//     m = nn.Linear(5, 2)
//     y_prepruning = m(input_)
//     y_prepruning.sum().backward()
//     old_grad_weight = m.weight.grad.clone()
//     self.assertEqual(old_grad_weight, torch.ones_like(m.weight))
//     old_grad_bias = m.bias.grad.clone()
//     self.assertEqual(old_grad_bias, torch.ones_like(m.bias))
//     m.zero_grad()
//     prune.identity(m, name="weight")
//     y_postpruning = m(input_)
//     self.assertEqual(y_prepruning, y_postpruning)
//     y_postpruning.sum().backward()
//     self.assertEqual(old_grad_weight, m.weight_orig.grad)
//     self.assertEqual(old_grad_bias, m.bias.grad)
//     y1 = m(input_)
//     y2 = m(input_)
//     self.assertEqual(y1, y2)
#[test]
fn test_identity_pruning() -> TestResult {
    let (vs, model) = linear_5_2(true);
    check_mask_of_ones(vs, model, |model| model.identity("weight"))
}

// PyTorch (test 8): as test 7, but the mask comes from a mocked method:
//     with mock.patch("torch.nn.utils.prune.RandomUnstructured.compute_mask") as compute_mask:
//         compute_mask.return_value = torch.ones_like(m.weight)
//         prune.random_unstructured(m, name="weight", amount=0.9)  # amount won't count
#[test]
fn test_random_pruning_0perc() -> TestResult {
    let (vs, model) = linear_5_2(true);
    let ones = var(&vs, "weight").ones_like();
    check_mask_of_ones(vs, model, move |model| model.apply("weight", ReturnsMask(ones), None))
}

/// Tests 7 and 8: a mask of ones changes neither the forward nor the backward.
fn check_mask_of_ones(
    vs: VarStore,
    mut model: PrunedModel<nn::Linear>,
    prune: impl FnOnce(&mut PrunedModel<nn::Linear>) -> tch_prune::Result<()>,
) -> TestResult {
    let input = Tensor::ones([1, 5], (Kind::Float, CPU));
    let y_prepruning = model.forward(&input)?;
    y_prepruning.sum(Kind::Float).backward();
    let old_grad_weight = var(&vs, "weight").grad().copy();
    assert_same_values(&old_grad_weight, &Tensor::ones([2, 5], (Kind::Float, CPU)), "weight.grad");
    let old_grad_bias = var(&vs, "bias").grad().copy();
    assert_same_values(&old_grad_bias, &Tensor::ones([2], (Kind::Float, CPU)), "bias.grad");

    zero_grad(&vs);
    prune(&mut model)?;
    assert!(model.is_parameter_pruned("weight"));
    assert_same_values(model.mask("weight").unwrap(), &old_grad_weight.ones_like(), "mask");

    let y_postpruning = model.forward(&input)?;
    assert_same_values(&y_postpruning, &y_prepruning, "output");

    y_postpruning.sum(Kind::Float).backward();
    let orig = var(&vs, "weight_orig");
    assert_same_values(&orig.grad(), &old_grad_weight, "weight_orig.grad");
    assert_same_values(&var(&vs, "bias").grad(), &old_grad_bias, "bias.grad");

    let y1 = model.forward(&input)?;
    let y2 = model.forward(&input)?;
    assert_same_values(&y1, &y2, "two forwards");
    Ok(())
}

// PyTorch (test 9):
//     input_ = torch.ones(1, 5)
//     m = nn.Linear(5, 2)
//     mask = torch.ones_like(m.weight)
//     mask[1, 0] = 0
//     mask[0, 3] = 0
//     with mock.patch("torch.nn.utils.prune.RandomUnstructured.compute_mask") as compute_mask:
//         compute_mask.return_value = mask
//         prune.random_unstructured(m, name="weight", amount=0.9)
//     y_postpruning = m(input_)
//     y_postpruning.sum().backward()
//     self.assertEqual(m.weight_orig.grad, mask)  # all 1s, except for masked units
//     self.assertEqual(m.bias.grad, torch.ones_like(m.bias))
//     old_weight_orig = m.weight_orig.clone()
//     learning_rate = 1.0
//     for p in m.parameters():
//         p.data.sub_(p.grad.data * learning_rate)
//     self.assertEqual(old_weight_orig[1, 0], m.weight_orig[1, 0])
//     self.assertEqual(old_weight_orig[0, 3], m.weight_orig[0, 3])
#[test]
fn test_random_pruning() -> TestResult {
    let input = Tensor::ones([1, 5], (Kind::Float, CPU));
    let (vs, mut model) = linear_5_2(true);
    let mask = mask_2_5(1.0, &[(1, 0), (0, 3)], 0.0);
    model.apply("weight", ReturnsMask(mask.shallow_clone()), None)?;

    let y_postpruning = model.forward(&input)?;
    y_postpruning.sum(Kind::Float).backward();
    let orig = var(&vs, "weight_orig");
    assert_same_values(&orig.grad(), &mask, "weight_orig.grad");
    assert_same_values(
        &var(&vs, "bias").grad(),
        &Tensor::ones([2], (Kind::Float, CPU)),
        "bias.grad",
    );

    let old_weight_orig = orig.copy();
    let learning_rate = 1.0;
    tch::no_grad(|| -> TestResult {
        // `m.parameters()`: the trainable variables, `weight_orig` among them.
        for mut p in vs.trainable_variables() {
            let step = p.grad() * learning_rate;
            let _ = p.f_sub_(&step)?;
        }
        Ok(())
    })?;
    let old = vals(&old_weight_orig);
    let new = vals(&orig);
    for (i, m) in vals(&mask).into_iter().enumerate() {
        if m == 0.0 {
            assert_eq!(new[i], old[i], "pruned entry {i} of weight_orig was updated");
        } else {
            assert_eq!(new[i], (old[i] as f32 - 1.0) as f64, "entry {i}: grad 1, lr 1");
        }
    }
    Ok(())
}

// PyTorch (test 10):
//     input_ = torch.ones(1, 5)
//     m = nn.Linear(5, 2)
//     mask = torch.zeros_like(m.weight)
//     mask[1, 0] = 1
//     mask[0, 3] = 1
//     with mock.patch("torch.nn.utils.prune.RandomUnstructured.compute_mask") as compute_mask:
//         compute_mask.return_value = mask
//         prune.random_unstructured(m, name="weight", amount=0.9)
//     yhat = m(input_)
//     self.assertEqual(yhat[0, 0], m.weight_orig[0, 3] + m.bias[0])
//     self.assertEqual(yhat[0, 1], m.weight_orig[1, 0] + m.bias[1])
#[test]
fn test_random_pruning_forward() -> TestResult {
    let input = Tensor::ones([1, 5], (Kind::Float, CPU));
    let (vs, mut model) = linear_5_2(true);
    let mask = mask_2_5(0.0, &[(1, 0), (0, 3)], 1.0);
    model.apply("weight", ReturnsMask(mask), None)?;

    let yhat = vals(&model.forward(&input)?);
    let orig = vals(&var(&vs, "weight_orig"));
    let bias = vals(&var(&vs, "bias"));
    // float32 sums, as `assertEqual` compares them (its float32 tolerance is looser).
    let expected_0 = (orig[3] as f32 + bias[0] as f32) as f64;
    let expected_1 = (orig[5] as f32 + bias[1] as f32) as f64;
    assert!((yhat[0] - expected_0).abs() <= 1e-6, "yhat[0, 0] = {} vs {expected_0}", yhat[0]);
    assert!((yhat[1] - expected_1).abs() <= 1e-6, "yhat[0, 1] = {} vs {expected_1}", yhat[1]);
    Ok(())
}

// PyTorch (test 11):
//     mask = torch.ones_like(m.weight)
//     mask[1, 0] = 0
//     mask[0, 3] = 0
//     with mock.patch("torch.nn.utils.prune.RandomUnstructured.compute_mask") as compute_mask:
//         compute_mask.return_value = mask
//         prune.random_unstructured(m, name="weight", amount=0.9)
//     y_postpruning = m(input_)
//     prune.remove(m, "weight")
//     y_postremoval = m(input_)
//     self.assertEqual(y_postpruning, y_postremoval)
#[test]
fn test_remove_pruning_forward() -> TestResult {
    let input = Tensor::ones([1, 5], (Kind::Float, CPU));
    let (vs, mut model) = linear_5_2(true);
    let mask = mask_2_5(1.0, &[(1, 0), (0, 3)], 0.0);
    model.apply("weight", ReturnsMask(mask), None)?;
    let y_postpruning = model.forward(&input)?;

    model.remove("weight")?;
    assert!(!model.is_pruned());
    let y_postremoval = model.forward(&input)?;
    assert_same_values(&y_postremoval, &y_postpruning, "output");
    // The plain layer (no refresh at all) computes the same.
    let y_plain = model.model().forward(&input);
    assert_same_values(&y_plain, &y_postpruning, "output of the unwrapped layer");
    assert_eq!(keys(&vs), names(&["weight", "bias"]));
    Ok(())
}

// PyTorch (test 12):
//     m = nn.Linear(5, 2, bias=False)
//     tensor_id = id(next(iter(m.parameters())))
//     prune.random_unstructured(m, name="weight", amount=0.9)
//     self.assertEqual(tensor_id, id(next(iter(m.parameters()))))
//     prune.remove(m, "weight")
//     self.assertEqual(tensor_id, id(next(iter(m.parameters()))))
//
// `id` becomes the storage pointer of the variable; "pre-existing optimizers keep working" is
// checked directly with an optimizer built before pruning.
#[test]
fn test_pruning_id_consistency() -> TestResult {
    tch::manual_seed(12);
    let (vs, mut model) = linear_5_2(false);
    let mut opt = nn::Sgd::default().build(&vs, 0.5)?;
    let tensor_id = var(&vs, "weight").data_ptr();
    let trainable_ids = |vs: &VarStore| -> Vec<_> {
        vs.trainable_variables().iter().map(|t| t.data_ptr()).collect()
    };
    assert_eq!(trainable_ids(&vs), vec![tensor_id]);
    assert_eq!(opt.trainable_variables().len(), 1);
    assert_eq!(opt.trainable_variables()[0].data_ptr(), tensor_id);

    model.random_unstructured("weight", 0.9)?;
    assert_eq!(keys(&vs), names(&["weight_orig", "weight_mask"]));
    assert_eq!(var(&vs, "weight_orig").data_ptr(), tensor_id);
    assert_eq!(model.orig("weight").unwrap().data_ptr(), tensor_id);
    assert_eq!(trainable_ids(&vs), vec![tensor_id], "the mask is not trainable");

    // The optimizer built before pruning trains `weight_orig` (kept entries only).
    let input = Tensor::randn([4, 5], (Kind::Float, CPU));
    let before = var(&vs, "weight_orig").copy();
    let loss = model.forward(&input)?.square().sum(Kind::Float);
    opt.backward_step(&loss);
    let mask = vals(model.mask("weight").unwrap());
    let (old, new) = (vals(&before), vals(&var(&vs, "weight_orig")));
    assert_eq!(mask.iter().filter(|&&m| m == 0.0).count(), 9, "round(0.9 * 10) entries pruned");
    for i in 0..mask.len() {
        if mask[i] == 0.0 {
            assert_eq!(new[i], old[i], "pruned entry {i} moved");
        } else {
            assert_ne!(new[i], old[i], "kept entry {i} was not trained");
        }
    }

    model.remove("weight")?;
    assert_eq!(keys(&vs), names(&["weight"]));
    assert_eq!(var(&vs, "weight").data_ptr(), tensor_id);
    assert_eq!(slot(&mut model, "weight").data_ptr(), tensor_id);
    assert_eq!(trainable_ids(&vs), vec![tensor_id]);

    // And still trains it after `remove` (now every entry).
    let before = var(&vs, "weight").copy();
    let loss = model.forward(&input)?.square().sum(Kind::Float);
    opt.backward_step(&loss);
    assert_ne!(vals(&var(&vs, "weight")), vals(&before), "weight not trained after remove");
    assert_eq!(var(&vs, "weight").data_ptr(), tensor_id);
    Ok(())
}

// PyTorch (test 14):
//     m = nn.Conv3d(2, 2, 2)
//     prune.l1_unstructured(m, name="weight", amount=0.1)
//     weight_mask0 = m.weight_mask  # save it for later sanity check
//     prune.ln_structured(m, name="weight", amount=0.3, n=2, dim=0)
//     hook = next(iter(m._forward_pre_hooks.values()))
//     self.assertIsInstance(hook, torch.nn.utils.prune.PruningContainer)
//     self.assertEqual(hook._tensor_name, "weight")
//     self.assertEqual(len(hook), 2)  # m.weight has been pruned twice
//     self.assertIsInstance(hook[0], torch.nn.utils.prune.L1Unstructured)
//     self.assertIsInstance(hook[1], torch.nn.utils.prune.LnStructured)
//     self.assertTrue(torch.all(m.weight_mask[weight_mask0 == 0] == 0))
//     prune.ln_structured(m, name="weight", amount=0.1, n=float("inf"), dim=1)
//     hook = next(iter(m._forward_pre_hooks.values()))
//     self.assertEqual(hook._tensor_name, "weight")
#[test]
fn test_multiple_pruning_calls() -> TestResult {
    let vs = VarStore::new(CPU);
    let mut model =
        PrunedModel::new(nn::conv3d(vs.root(), 2, 2, 2, Default::default()), &vs).unwrap();
    model.l1_unstructured("weight", 0.1, None)?;
    let weight_mask0 = model.mask("weight").unwrap().copy();
    assert_eq!(model.history("weight").unwrap().len(), 1);
    // round(0.1 * 32) = 3
    assert_eq!(vals(&weight_mask0).iter().filter(|&&m| m == 0.0).count(), 3);

    model.ln_structured("weight", 0.3, 2, 0, None)?;
    let history = history_names(&model, "weight");
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history[0].starts_with("L1Unstructured"), "{history:?}");
    assert!(history[1].starts_with("LnStructured"), "{history:?}");
    // One history per parameter, keyed by its name (the hook's `_tensor_name`).
    assert_eq!(model.pruned_parameters().collect::<Vec<_>>(), ["weight"]);

    let mask0 = vals(&weight_mask0);
    let mask1 = vals(model.mask("weight").unwrap());
    for (i, (&a, &b)) in mask0.iter().zip(&mask1).enumerate() {
        assert!(a != 0.0 || b == 0.0, "entry {i} was pruned by the first call but not any more");
    }
    // round(0.3 * 2) = 1 of the 2 output channels (16 entries each) is gone.
    let dead: Vec<bool> = mask1.chunks(16).map(|c| c.iter().all(|&v| v == 0.0)).collect();
    assert_eq!(dead.iter().filter(|&&d| d).count(), 1, "{dead:?}");

    model.ln_structured("weight", 0.1, f64::INFINITY, 1, None)?;
    let history = history_names(&model, "weight");
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(history[2].starts_with("LnStructured"), "{history:?}");
    assert_eq!(model.pruned_parameters().collect::<Vec<_>>(), ["weight"]);
    assert_eq!(keys(&vs), names(&["weight_orig", "weight_mask", "bias"]));
    Ok(())
}

// PyTorch (test 17):
//     m = nn.Linear(4, 2)
//     m.weight = torch.nn.Parameter(
//         torch.tensor([[1, 2, 3, 4], [-4, -3, -2, -1]], dtype=torch.float32))
//     prune.l1_unstructured(m, "weight", amount=2)
//     expected_weight = torch.tensor([[0, 2, 3, 4], [-4, -3, -2, 0]], dtype=m.weight.dtype)
//     self.assertEqual(expected_weight, m.weight)
//     prune.l1_unstructured(m, "weight", amount=2)
//     expected_weight = torch.tensor([[0, 0, 3, 4], [-4, -3, 0, 0]], dtype=m.weight.dtype)
//     self.assertEqual(expected_weight, m.weight)
#[test]
fn test_l1_unstructured_pruning() -> TestResult {
    let (_vs, mut model) = linear_4_2();
    model.l1_unstructured("weight", 2, None)?;
    let expected = tf(&[0., 2., 3., 4., -4., -3., -2., 0.], &[2, 4]);
    assert_same_values(&slot(&mut model, "weight"), &expected, "after the first call");

    model.l1_unstructured("weight", 2, None)?;
    let expected = tf(&[0., 0., 3., 4., -4., -3., 0., 0.], &[2, 4]);
    assert_same_values(&slot(&mut model, "weight"), &expected, "after the second call");
    model.refresh()?;
    assert_same_values(&slot(&mut model, "weight"), &expected, "after a refresh");
    Ok(())
}

/// `m = nn.Linear(4, 2)` with weight `[[1, 2, 3, 4], [-4, -3, -2, -1]]`.
fn linear_4_2() -> (VarStore, PrunedModel<nn::Linear>) {
    let vs = VarStore::new(CPU);
    let mut m = nn::linear(vs.root(), 4, 2, Default::default());
    fill(&mut m.ws, &tf(&[1., 2., 3., 4., -4., -3., -2., -1.], &[2, 4]));
    let model = PrunedModel::new(m, &vs).unwrap();
    (vs, model)
}

// PyTorch (test 18):
//     m.weight = torch.nn.Parameter(
//         torch.tensor([[1, 2, 3, 4], [-4, -3, -2, -1]], dtype=torch.float32))
//     importance_scores = torch.tensor([[4, 2, 1, 3], [-3, -1, -2, -4]], dtype=torch.float32)
//     prune.l1_unstructured(m, "weight", amount=2, importance_scores=importance_scores)
//     expected_weight = torch.tensor([[1, 2, 0, 4], [-4, 0, -2, -1]], dtype=m.weight.dtype)
//     self.assertEqual(expected_weight, m.weight)
//     prune.l1_unstructured(m, "weight", amount=2, importance_scores=importance_scores)
//     expected_weight = torch.tensor([[1, 0, 0, 4], [-4, 0, 0, -1]], dtype=m.weight.dtype)
//     self.assertEqual(expected_weight, m.weight)
#[test]
fn test_l1_unstructured_pruning_with_importance_scores() -> TestResult {
    let (_vs, mut model) = linear_4_2();
    let importance_scores = tf(&[4., 2., 1., 3., -3., -1., -2., -4.], &[2, 4]);
    model.l1_unstructured("weight", 2, Some(&importance_scores))?;
    let expected = tf(&[1., 2., 0., 4., -4., 0., -2., -1.], &[2, 4]);
    assert_same_values(&slot(&mut model, "weight"), &expected, "after the first call");

    model.l1_unstructured("weight", 2, Some(&importance_scores))?;
    let expected = tf(&[1., 0., 0., 4., -4., 0., 0., -1.], &[2, 4]);
    assert_same_values(&slot(&mut model, "weight"), &expected, "after the second call");
    // The scores only choose the mask; they are not modified.
    assert_eq!(vals(&importance_scores), vec![4., 2., 1., 3., -3., -1., -2., -4.]);
    Ok(())
}

// PyTorch (test 21):
//     m = nn.Conv2d(3, 1, 2)
//     m.weight.data = torch.tensor([[[[1.0, 2.0], [1.0, 2.5]],
//                                    [[0.5, 1.0], [0.1, 0.1]],
//                                    [[-3.0, -5.0], [0.1, -1.0]]]])
//     expected_mask_axis1 = torch.ones_like(m.weight)
//     expected_mask_axis1[:, 1] = 0.0
//     prune.ln_structured(m, "weight", amount=1, n=2, dim=1)
//     self.assertEqual(expected_mask_axis1, m.weight_mask)
//     expected_mask_axis3 = expected_mask_axis1
//     expected_mask_axis3[:, :, :, 0] = 0.0
//     prune.ln_structured(m, "weight", amount=1, n=1, dim=-1)
//     self.assertEqual(expected_mask_axis3, m.weight_mask)
#[test]
fn test_ln_structured_pruning() -> TestResult {
    let (vs, mut model) = conv_3_1_2();
    model.ln_structured("weight", 1, 2, 1, None)?;
    let expected_mask_axis1 = tf(&[1., 1., 1., 1., 0., 0., 0., 0., 1., 1., 1., 1.], &[1, 3, 2, 2]);
    assert_same_values(model.mask("weight").unwrap(), &expected_mask_axis1, "axis 1");
    assert_same_values(&var(&vs, "weight_mask"), &expected_mask_axis1, "axis 1 (VarStore)");

    model.ln_structured("weight", 1, 1, -1, None)?;
    let expected_mask_axis3 = tf(&[0., 1., 0., 1., 0., 0., 0., 0., 0., 1., 0., 1.], &[1, 3, 2, 2]);
    assert_same_values(model.mask("weight").unwrap(), &expected_mask_axis3, "axis -1");
    assert_same_values(&var(&vs, "weight_mask"), &expected_mask_axis3, "axis -1 (VarStore)");
    Ok(())
}

// PyTorch (test 22):
//     m = nn.Conv2d(3, 1, 2)  # weight as in test_ln_structured_pruning
//     importance_scores = torch.tensor([[[[10.0, 1.0], [10.0, 1.0]],
//                                        [[30.0, 3.0], [30.0, 3.0]],
//                                        [[-20.0, -2.0], [-20.0, -2.0]]]])
//     expected_mask_axis1 = torch.ones_like(m.weight)
//     expected_mask_axis1[:, 0] = 0.0
//     prune.ln_structured(m, "weight", amount=1, n=2, dim=1, importance_scores=importance_scores)
//     self.assertEqual(expected_mask_axis1, m.weight_mask)
//     expected_mask_axis3 = expected_mask_axis1
//     expected_mask_axis3[:, :, :, 1] = 0.0
//     prune.ln_structured(m, "weight", amount=1, n=1, dim=-1, importance_scores=importance_scores)
//     self.assertEqual(expected_mask_axis3, m.weight_mask)
#[test]
fn test_ln_structured_pruning_importance_scores() -> TestResult {
    let (vs, mut model) = conv_3_1_2();
    let importance_scores =
        tf(&[10., 1., 10., 1., 30., 3., 30., 3., -20., -2., -20., -2.], &[1, 3, 2, 2]);
    model.ln_structured("weight", 1, 2, 1, Some(&importance_scores))?;
    let expected_mask_axis1 = tf(&[0., 0., 0., 0., 1., 1., 1., 1., 1., 1., 1., 1.], &[1, 3, 2, 2]);
    assert_same_values(model.mask("weight").unwrap(), &expected_mask_axis1, "axis 1");

    model.ln_structured("weight", 1, 1, -1, Some(&importance_scores))?;
    let expected_mask_axis3 = tf(&[0., 0., 0., 0., 1., 0., 1., 0., 1., 0., 1., 0.], &[1, 3, 2, 2]);
    assert_same_values(model.mask("weight").unwrap(), &expected_mask_axis3, "axis -1");
    assert_same_values(&var(&vs, "weight_mask"), &expected_mask_axis3, "axis -1 (VarStore)");
    // The layer computes with orig * mask.
    let expected = &var(&vs, "weight_orig") * &expected_mask_axis3;
    assert_same_values(&slot(&mut model, "weight"), &expected, "weight");
    Ok(())
}

// PyTorch (test 23):
//     for m in modules:
//         for name in names:
//             prune.random_unstructured(m, name, amount=0.5)
//             self.assertIn(name + "_orig", dict(m.named_parameters()))
//             self.assertIn(name + "_mask", dict(m.named_buffers()))
//             self.assertNotIn(name, dict(m.named_parameters()))
//             self.assertTrue(hasattr(m, name))
//             pruned_t = getattr(m, name)
//             prune.remove(m, name)
//             self.assertIn(name, dict(m.named_parameters()))
//             self.assertNotIn(name + "_orig", dict(m.named_parameters()))
//             self.assertNotIn(name + "_mask", dict(m.named_buffers()))
//             final_t = getattr(m, name)
//             self.assertEqual(pruned_t, final_t)
#[test]
fn test_remove_pruning() -> TestResult {
    for Case { label, vs, mut model, input } in modules() {
        for name in NAMES {
            let (orig, mask) = (format!("{name}_orig"), format!("{name}_mask"));
            let original_ptr = var(&vs, name).data_ptr();
            model.random_unstructured(name, 0.5)?;
            let trainable: BTreeSet<_> =
                vs.trainable_variables().iter().map(|t| t.data_ptr() as usize).collect();
            assert!(keys(&vs).contains(&orig), "{label}: {orig}");
            assert!(keys(&vs).contains(&mask), "{label}: {mask}");
            assert!(!keys(&vs).contains(name), "{label}: {name}");
            assert!(trainable.contains(&(var(&vs, &orig).data_ptr() as usize)), "{label} {orig}");
            assert!(!trainable.contains(&(var(&vs, &mask).data_ptr() as usize)), "{label} {mask}");
            let pruned_t = slot(&mut model, name).copy();
            let output = model.forward(&input)?;

            model.remove(name)?;
            assert!(keys(&vs).contains(name), "{label}: {name}");
            assert!(!keys(&vs).contains(&orig), "{label}: {orig}");
            assert!(!keys(&vs).contains(&mask), "{label}: {mask}");
            assert!(!model.is_parameter_pruned(name));
            assert!(model.history(name).is_none() && model.mask(name).is_none());
            let final_t = slot(&mut model, name);
            assert_same_values(&final_t, &pruned_t, &format!("{label} {name}"));
            assert_same_values(&var(&vs, name), &pruned_t, &format!("{label} {name} (VarStore)"));
            assert_eq!(var(&vs, name).data_ptr(), original_ptr, "{label} {name}: same tensor");
            assert_eq!(final_t.data_ptr(), original_ptr, "{label} {name}: the slot holds it");
            assert!(var(&vs, name).requires_grad(), "{label} {name} is still trainable");
            assert_same_values(&model.forward(&input)?, &output, &format!("{label} output"));
        }
        assert_eq!(keys(&vs), names(&NAMES));
    }
    Ok(())
}

// PyTorch (test 24):
//     for m in modules:
//         for name in names:
//             self.assertFalse(prune.is_pruned(m))
//             with self.assertRaises(ValueError):
//                 prune.remove(m, name)
#[test]
fn test_remove_pruning_exception() {
    for Case { label, vs, mut model, .. } in modules() {
        for name in NAMES {
            assert!(!model.is_pruned(), "{label}");
            let before = snapshot(&mut model, &vs);
            match model.remove(name) {
                Err(PruneError::NotPruned { name: n }) => assert_eq!(n, name),
                other => panic!("{label} {name}: expected NotPruned, got {other:?}"),
            }
            assert_eq!(snapshot(&mut model, &vs), before, "{label} {name}");
        }
    }
}

// PyTorch (test 25):
//     m = nn.Linear(4, 2)
//     n = nn.Linear(3, 1)
//     m.weight = torch.nn.Parameter(
//         torch.tensor([[1, 2, 3, 4], [-4, -3, -2, -1]]).to(dtype=torch.float32))
//     n.weight = torch.nn.Parameter(torch.tensor([[0, 0.1, -2]]).to(dtype=torch.float32))
//     params_to_prune = ((m, "weight"), (n, "weight"))
//     prune.global_unstructured(params_to_prune, pruning_method=prune.L1Unstructured, amount=4)
//     expected_mweight = torch.tensor([[0, 2, 3, 4], [-4, -3, -2, 0]], dtype=m.weight.dtype)
//     self.assertEqual(expected_mweight, m.weight)
//     expected_nweight = torch.tensor([[0, 0, -2]]).to(dtype=n.weight.dtype)
//     self.assertEqual(expected_nweight, n.weight)
#[test]
fn test_global_pruning() -> TestResult {
    let (vs, mut model) = global_layers(true);
    model.global_unstructured(&["m.weight", "n.weight"], L1Unstructured::new(4)?, &[])?;

    let expected_mweight = tf(&[0., 2., 3., 4., -4., -3., -2., 0.], &[2, 4]);
    assert_same_values(&slot(&mut model, "m.weight"), &expected_mweight, "m.weight");
    let expected_nweight = tf(&[0., 0., -2.], &[1, 3]);
    assert_same_values(&slot(&mut model, "n.weight"), &expected_nweight, "n.weight");

    // Each parameter records a CustomFromMask step (as PyTorch's global_unstructured does).
    for name in ["m.weight", "n.weight"] {
        let history = history_names(&model, name);
        assert_eq!(history.len(), 1, "{name}: {history:?}");
        assert!(history[0].starts_with("CustomFromMask"), "{name}: {history:?}");
    }
    assert_eq!(
        keys(&vs),
        names(&[
            "m.weight_orig",
            "m.weight_mask",
            "m.bias",
            "n.weight_orig",
            "n.weight_mask",
            "n.bias"
        ])
    );
    Ok(())
}

// PyTorch (test 26):
//     m_importance_scores = torch.tensor([[4, 2, 1, 3], [-3, -1, -2, -4]], dtype=torch.float32)
//     n_importance_scores = torch.tensor([[0, 10.0, -0.2]]).to(dtype=torch.float32)
//     importance_scores = {(m, "weight"): m_importance_scores,
//                          (n, "weight"): n_importance_scores}
//     prune.global_unstructured(params_to_prune, pruning_method=prune.L1Unstructured,
//                               amount=4, importance_scores=importance_scores)
//     expected_m_weight = torch.tensor([[1, 2, 0, 4], [-4, 0, -2, -1]], dtype=m.weight.dtype)
//     self.assertEqual(expected_m_weight, m.weight)
//     expected_n_weight = torch.tensor([[0, 0.1, 0]]).to(dtype=n.weight.dtype)
//     self.assertEqual(expected_n_weight, n.weight)
#[test]
fn test_global_pruning_importance_scores() -> TestResult {
    let (_vs, mut model) = global_layers(true);
    let m_importance_scores = tf(&[4., 2., 1., 3., -3., -1., -2., -4.], &[2, 4]);
    let n_importance_scores = tf(&[0., 10.0, -0.2], &[1, 3]);
    let importance_scores =
        [("m.weight", &m_importance_scores), ("n.weight", &n_importance_scores)];
    model.global_unstructured(
        &["m.weight", "n.weight"],
        L1Unstructured::new(4)?,
        &importance_scores,
    )?;

    let expected_m_weight = tf(&[1., 2., 0., 4., -4., 0., -2., -1.], &[2, 4]);
    assert_same_values(&slot(&mut model, "m.weight"), &expected_m_weight, "m.weight");
    let expected_n_weight = tf(&[0., 0.1, 0.], &[1, 3]);
    assert_same_values(&slot(&mut model, "n.weight"), &expected_n_weight, "n.weight");
    Ok(())
}

// PyTorch (test 27):
//     mask = torch.tensor([[0, 1, 1, 0], [0, 0, 1, 1]])
//     default_mask = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1]])
//     t = torch.rand_like(mask.to(dtype=torch.float32))
//     p = prune.CustomFromMask(mask=mask)
//     computed_mask = p.compute_mask(t, default_mask)
//     expected_mask = torch.tensor([[0, 0, 0, 0], [0, 0, 1, 1]], dtype=computed_mask.dtype)
//     self.assertEqual(computed_mask, expected_mask)
//
// Ported twice: on the method, and at the module level, where the first `custom_from_mask`
// supplies the default mask of the second.
#[test]
fn test_custom_from_mask_pruning() -> TestResult {
    let mask = Tensor::from_slice(&[0i64, 1, 1, 0, 0, 0, 1, 1]).reshape([2, 4]);
    let default_mask = Tensor::from_slice(&[0i64, 0, 0, 0, 1, 1, 1, 1]).reshape([2, 4]);
    let t = Tensor::rand([2, 4], (Kind::Float, CPU));
    let computed_mask =
        CustomFromMask::new(mask.shallow_clone()).compute_mask(&t, &default_mask)?;
    assert_eq!(computed_mask.kind(), Kind::Int64);
    assert_eq!(vals(&computed_mask), vec![0., 0., 0., 0., 0., 0., 1., 1.]);

    let (vs, mut model) = linear_4_2();
    model.custom_from_mask("weight", &default_mask)?;
    model.custom_from_mask("weight", &mask)?;
    let expected_mask = tf(&[0., 0., 0., 0., 0., 0., 1., 1.], &[2, 4]);
    let stored = var(&vs, "weight_mask");
    assert_eq!(stored.kind(), Kind::Float, "the mask takes the parameter's kind, as in PyTorch");
    assert_same_values(&stored, &expected_mask, "weight_mask");
    let expected_weight = tf(&[0., 0., 0., 0., 0., 0., -2., -1.], &[2, 4]);
    assert_same_values(&slot(&mut model, "weight"), &expected_weight, "weight");
    let history = history_names(&model, "weight");
    assert!(history.len() == 2 && history.iter().all(|h| h.starts_with("CustomFromMask")));
    Ok(())
}

// PyTorch (test 28):
//     for m in modules:
//         for name in names:
//             with mock.patch("torch.nn.utils.prune.L1Unstructured.compute_mask") as compute_mask:
//                 compute_mask.side_effect = Exception("HA!")
//                 with self.assertRaises(Exception):
//                     prune.l1_unstructured(m, name=name, amount=0.9)
//                 self.assertTrue(name in dict(m.named_parameters()))
//                 self.assertFalse(name + "_mask" in dict(m.named_buffers()))
//                 self.assertFalse(name + "_orig" in dict(m.named_parameters()))
#[test]
fn test_pruning_rollback() {
    for Case { label, vs, mut model, .. } in modules() {
        for name in NAMES {
            let before = snapshot(&mut model, &vs);
            let variable = var(&vs, name);
            match model.apply(name, Fails, None) {
                Err(err) if is_ha(&err) => {}
                other => panic!("{label} {name}: expected the method's error, got {other:?}"),
            }
            assert!(keys(&vs).contains(name), "{label}: {name}");
            assert!(!keys(&vs).contains(&format!("{name}_mask")), "{label}: {name}_mask");
            assert!(!keys(&vs).contains(&format!("{name}_orig")), "{label}: {name}_orig");
            assert!(!model.is_parameter_pruned(name), "{label}: {name}");
            // The slot still holds the VarStore's tensor, and nothing else moved either.
            assert_eq!(slot(&mut model, name).data_ptr(), variable.data_ptr(), "{label} {name}");
            assert_eq!(snapshot(&mut model, &vs), before, "{label} {name}");
        }
    }
}

/// `torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.ReLU(), torch.nn.Linear(10, 1))`,
/// whose parameters are named `0.weight`, `0.bias`, `2.weight`, `2.bias`.
#[derive(Debug)]
struct Sequential {
    l0: nn::Linear,
    l2: nn::Linear,
}
prunable!(Sequential { l0 => "0", l2 => "2" });

impl Module for Sequential {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.l0).relu().apply(&self.l2)
    }
}

fn sequential() -> (VarStore, PrunedModel<Sequential>) {
    let vs = VarStore::new(CPU);
    let root = vs.root();
    let net = Sequential {
        l0: nn::linear(&root / "0", 10, 10, Default::default()),
        l2: nn::linear(&root / "2", 10, 1, Default::default()),
    };
    let model = PrunedModel::new(net, &vs).unwrap();
    (vs, model)
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "tch-prune-{tag}-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        Self(path)
    }

    fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The keys of a saved `.safetensors` file.
fn file_keys(path: &std::path::Path) -> BTreeSet<String> {
    Tensor::read_safetensors(path).expect("read the file").into_iter().map(|(k, _)| k).collect()
}

// PyTorch (test 29):
//     model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.ReLU(), torch.nn.Linear(10, 1))
//     self.assertNotIn("0.weight_orig", model.state_dict())
//     self.assertNotIn("0.weight_mask", model.state_dict())
//     self.assertIn("0.weight", model.state_dict())
//     prune.l1_unstructured(module=model[0], name="weight", amount=0.9)
//     self.assertIn("0.weight_orig", model.state_dict())
//     self.assertIn("0.weight_mask", model.state_dict())
//     self.assertNotIn("0.weight", model.state_dict())
//     self.assertTrue(hasattr(model[0], "weight"))
//     pruned_weight = model[0].weight
//     with TemporaryFileName() as fname:
//         torch.save(model, fname)
//         new_model = torch.load(fname, weights_only=False)
//     self.assertIn("0.weight_orig", new_model.state_dict())
//     self.assertIn("0.weight_mask", new_model.state_dict())
//     self.assertNotIn("0.weight", new_model.state_dict())
//     self.assertTrue(hasattr(new_model[0], "weight"))
//     self.assertEqual(pruned_weight, new_model[0].weight)
//
// Pickling a whole model has no tch equivalent: the pruned `VarStore` is saved and loaded into a
// fresh, unpruned model with `load_pruned_checkpoint`, which recreates the reparametrization.
#[test]
fn test_pruning_serialization_model() -> TestResult {
    let (vs, mut model) = sequential();
    let unpruned = names(&["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(keys(&vs), unpruned);

    model.l1_unstructured("0.weight", 0.9, None)?;
    let pruned_keys = names(&["0.weight_orig", "0.weight_mask", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(keys(&vs), pruned_keys);
    let pruned_weight = slot(&mut model, "0.weight").copy();
    assert_eq!(vals(&pruned_weight).iter().filter(|&&v| v == 0.0).count(), 90);

    let dir = TempDir::new("serialization-model");
    let path = dir.join("model.safetensors");
    vs.save(&path)?;
    assert_eq!(file_keys(&path), pruned_keys);

    let (new_vs, mut new_model) = sequential();
    new_model.load_pruned_checkpoint(&path)?;
    assert_eq!(keys(&new_vs), pruned_keys);
    assert!(new_model.is_parameter_pruned("0.weight"));
    assert_eq!(new_model.pruned_parameters().collect::<Vec<_>>(), ["0.weight"]);
    assert_same_values(&slot(&mut new_model, "0.weight"), &pruned_weight, "0.weight");
    for name in pruned_keys {
        assert_same_values(&var(&new_vs, &name), &var(&vs, &name), &name);
    }
    let x = Tensor::randn([3, 10], (Kind::Float, CPU));
    assert_same_values(&new_model.forward(&x)?, &model.forward(&x)?, "output");
    Ok(())
}

// PyTorch (test 30):
//     model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.ReLU(), torch.nn.Linear(10, 1))
//     prune.l1_unstructured(module=model[0], name="weight", amount=0.9)
//     self.assertIn("0.weight_orig", model.state_dict())
//     self.assertIn("0.weight_mask", model.state_dict())
//     self.assertNotIn("0.weight", model.state_dict())
//     pruned_weight = model[0].weight
//     prune.remove(module=model[0], name="weight")
//     self.assertNotIn("0.weight_orig", model.state_dict())
//     self.assertNotIn("0.weight_mask", model.state_dict())
//     self.assertIn("0.weight", model.state_dict())
//     new_model = torch.nn.Sequential(
//         torch.nn.Linear(10, 10), torch.nn.ReLU(), torch.nn.Linear(10, 1))
//     with TemporaryFileName() as fname:
//         torch.save(model.state_dict(), fname)
//         new_model.load_state_dict(torch.load(fname))
//     self.assertNotIn("0.weight_orig", new_model.state_dict())
//     self.assertNotIn("0.weight_mask", new_model.state_dict())
//     self.assertIn("0.weight", new_model.state_dict())
//     self.assertEqual(pruned_weight, new_model[0].weight)
#[test]
fn test_pruning_serialization_state_dict() -> TestResult {
    let (vs, mut model) = sequential();
    model.l1_unstructured("0.weight", 0.9, None)?;
    assert_eq!(
        keys(&vs),
        names(&["0.weight_orig", "0.weight_mask", "0.bias", "2.weight", "2.bias"])
    );
    let pruned_weight = slot(&mut model, "0.weight").copy();

    model.remove("0.weight")?;
    let unpruned = names(&["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(keys(&vs), unpruned);

    let dir = TempDir::new("serialization-state-dict");
    let path = dir.join("model.safetensors");
    vs.save(&path)?;
    // Strict: the file holds exactly the variables of a fresh, unpruned model.
    assert_eq!(file_keys(&path), unpruned);

    let (mut new_vs, mut new_model) = sequential();
    new_vs.load(&path)?;
    assert_eq!(keys(&new_vs), unpruned);
    assert!(!new_model.is_pruned());
    assert_same_values(&slot(&mut new_model, "0.weight"), &pruned_weight, "0.weight");
    assert_same_values(&var(&new_vs, "0.weight"), &pruned_weight, "0.weight (VarStore)");

    // `load_pruned_checkpoint` takes an unpruned checkpoint too, and prunes nothing.
    let (third_vs, mut third) = sequential();
    third.load_pruned_checkpoint(&path)?;
    assert!(!third.is_pruned());
    assert_eq!(keys(&third_vs), unpruned);
    assert_same_values(&slot(&mut third, "0.weight"), &pruned_weight, "0.weight (third)");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The crate's own promises
// ---------------------------------------------------------------------------------------------

/// Everything a pruning call could change, captured by value.
#[derive(Debug, PartialEq)]
struct TensorState {
    ptr: usize,
    shape: Vec<i64>,
    kind: Kind,
    requires_grad: bool,
    values: Vec<f64>,
}

fn state(t: &Tensor) -> TensorState {
    TensorState {
        ptr: t.data_ptr() as usize,
        shape: t.size(),
        kind: t.kind(),
        requires_grad: t.requires_grad(),
        values: vals(t),
    }
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    /// Every `VarStore` variable (so the key set too).
    variables: BTreeMap<String, TensorState>,
    /// The storage of the trainable variables, in order.
    trainable: Vec<usize>,
    /// The pruned parameters, in order.
    pruned: Vec<String>,
    /// Per pruned parameter: its mask, the pointer of its orig, its history (length and names).
    masks: BTreeMap<String, TensorState>,
    origs: BTreeMap<String, usize>,
    histories: BTreeMap<String, (usize, Vec<String>)>,
    /// What each slot of the model holds.
    slots: Vec<(String, TensorState)>,
}

fn snapshot<M: Prunable>(model: &mut PrunedModel<M>, vs: &VarStore) -> Snapshot {
    let variables = vs.variables().iter().map(|(k, t)| (k.clone(), state(t))).collect();
    let trainable = vs.trainable_variables().iter().map(|t| t.data_ptr() as usize).collect();
    let pruned: Vec<String> = model.pruned_parameters().map(str::to_string).collect();
    let masks = pruned.iter().map(|n| (n.clone(), state(model.mask(n).unwrap()))).collect();
    let origs =
        pruned.iter().map(|n| (n.clone(), model.orig(n).unwrap().data_ptr() as usize)).collect();
    let histories = pruned
        .iter()
        .map(|n| (n.clone(), (model.history(n).unwrap().len(), history_names(model, n))))
        .collect();
    let slots = model.model_mut().param_slots().into_iter().map(|(n, t)| (n, state(t))).collect();
    Snapshot { variables, trainable, pruned, masks, origs, histories, slots }
}

/// Runs `$call`, asserts that it fails with an error matching `$pat`, and that the model, its
/// `VarStore`, masks, histories and slots are exactly as before.
macro_rules! assert_fails_unchanged {
    ($model:ident, $vs:ident, $call:expr, $pat:pat $(if $guard:expr)?) => {{
        let before = snapshot(&mut $model, &$vs);
        let result = $call;
        match result {
            Err($pat) $(if $guard)? => {}
            other => panic!(
                "{}: expected {}, got {:?}",
                stringify!($call),
                stringify!($pat),
                other
            ),
        }
        assert_eq!(
            snapshot(&mut $model, &$vs),
            before,
            "{} changed the model",
            stringify!($call)
        );
    }};
}

/// A failing call returns the right error and changes nothing: the `VarStore` (keys, values,
/// tensors), the masks, the histories and the slots are as before. Covers first pruning,
/// repeated pruning (where PyTorch leaves a half-pruned module), global pruning and
/// `remove`.
#[test]
fn failed_calls_change_nothing() -> TestResult {
    // `m` (with bias) is pruned once already, `n` has no bias and is not pruned.
    let (vs, mut model) = global_layers(false);
    model.l1_unstructured("m.weight", 5, None)?;
    forward_each(&mut model)?;

    // A bad amount, first and repeated pruning.
    assert_fails_unchanged!(
        model,
        vs,
        model.l1_unstructured("n.weight", 1.5, None),
        PruneError::FractionOutOfRange { value } if value == 1.5
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.l1_unstructured("m.weight", 1.5, None),
        PruneError::FractionOutOfRange { value } if value == 1.5
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.random_unstructured("m.weight", -1),
        PruneError::NegativeCount { value: -1 }
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.ln_structured("n.weight", -2, 2, 0, None),
        PruneError::NegativeCount { value: -2 }
    );

    // An unknown name, a missing bias (`bias=False`), a name with no slot.
    assert_fails_unchanged!(
        model,
        vs,
        model.l1_unstructured("n.wieght", 1, None),
        PruneError::UnknownParameter { ref name } if name == "n.wieght"
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.l1_unstructured("n.bias", 1, None),
        PruneError::UnknownParameter { ref name } if name == "n.bias"
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.identity("m.weight_orig"),
        PruneError::SlotNotFound { ref name } if name == "m.weight_orig"
    );

    // Importance scores of the wrong shape, first and repeated pruning.
    let wrong = Tensor::ones([3, 1], (Kind::Float, CPU));
    assert_fails_unchanged!(
        model,
        vs,
        model.l1_unstructured("n.weight", 1, Some(&wrong)),
        PruneError::ShapeMismatch { parameter: "importance_scores", ref expected, ref actual }
            if expected == &[1, 3] && actual == &[3, 1]
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.ln_structured("m.weight", 1, 2, 0, Some(&wrong)),
        PruneError::ShapeMismatch { parameter: "importance_scores", ref expected, ref actual }
            if expected == &[2, 4] && actual == &[3, 1]
    );
    // A custom mask of the wrong shape.
    assert_fails_unchanged!(
        model,
        vs,
        model.custom_from_mask("m.weight", &wrong),
        PruneError::ShapeMismatch { parameter: "mask", .. }
    );

    // A second prune whose validation fails: 5 of 8 entries are gone, 4 more cannot be.
    assert_fails_unchanged!(
        model,
        vs,
        model.l1_unstructured("m.weight", 4, None),
        PruneError::AmountTooLarge { requested: 4, available: 3 }
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.ln_structured("m.weight", 1, 2, 2, None),
        PruneError::DimOutOfRange { dim: 2, ndim: 2 }
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.ln_structured("n.weight", 1, 2, -3, None),
        PruneError::DimOutOfRange { dim: -3, ndim: 2 }
    );
    assert_fails_unchanged!(model, vs, model.apply("m.weight", Fails, None), ref err if is_ha(err));
    // A custom method whose mask has the wrong shape, first and repeated pruning.
    let ones_2_2 = Tensor::ones([2, 2], (Kind::Float, CPU));
    assert_fails_unchanged!(
        model,
        vs,
        model.apply("n.weight", ReturnsMask(ones_2_2.shallow_clone()), None),
        PruneError::ShapeMismatch { .. }
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.apply("m.weight", ReturnsMask(Tensor::ones([2, 4], (Kind::Float, CPU))), None),
        PruneError::ShapeMismatch { parameter: "mask", ref expected, ref actual }
            if expected == &[3] && actual == &[2, 4]
    );
    // Both rows of m.weight are still alive, so the method must return a [2, 4] mask.
    assert_fails_unchanged!(
        model,
        vs,
        model.apply("m.weight", ReturnsChannelMask(Tensor::ones([1, 4], (Kind::Float, CPU))), None),
        PruneError::ShapeMismatch { parameter: "mask", ref expected, ref actual }
            if expected == &[2, 4] && actual == &[1, 4]
    );

    // Global pruning: one unknown name in the list, scores of the wrong shape, a duplicate,
    // a count larger than the remaining entries, a structured method. (Scores for a name that
    // is not listed are ignored, as in PyTorch: `global_scores_for_unlisted_names_are_ignored`.)
    let with_unknown = ["m.weight", "n.weight", "x.weight"];
    let with_missing_bias = ["n.weight", "m.weight", "n.bias"];
    let with_duplicate = ["m.weight", "n.weight", "m.weight"];
    assert_fails_unchanged!(
        model,
        vs,
        model.global_unstructured(&with_unknown, L1Unstructured::new(2)?, &[]),
        PruneError::UnknownParameter { ref name } if name == "x.weight"
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.global_unstructured(&with_missing_bias, L1Unstructured::new(2)?, &[]),
        PruneError::UnknownParameter { ref name } if name == "n.bias"
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.global_unstructured(&["m.weight"], L1Unstructured::new(1)?, &[("m.weight", &wrong)]),
        PruneError::ShapeMismatch { parameter: "importance_scores", .. }
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.global_unstructured(&with_duplicate, L1Unstructured::new(1)?, &[]),
        PruneError::DuplicateParameter { ref name } if name == "m.weight"
    );
    // 3 entries of m.weight and 3 of n.weight are left.
    assert_fails_unchanged!(
        model,
        vs,
        model.global_unstructured(&["m.weight", "n.weight"], L1Unstructured::new(7)?, &[]),
        PruneError::AmountTooLarge { requested: 7, available: 6 }
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.global_unstructured(&["m.weight", "n.weight"], LnStructured::new(1, 2, 0)?, &[]),
        PruneError::WrongPruningType { operation: "global_unstructured", .. }
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.global_unstructured(&[], L1Unstructured::new(1)?, &[]),
        PruneError::EmptyParameterList
    );

    // `remove` of a parameter that is not pruned.
    assert_fails_unchanged!(
        model,
        vs,
        model.remove("n.weight"),
        PruneError::NotPruned { ref name } if name == "n.weight"
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.remove("n.bias"),
        PruneError::NotPruned { ref name } if name == "n.bias"
    );

    // After all that, the model still works and prunes normally.
    model.l1_unstructured("m.weight", 3, None)?;
    assert_eq!(vals(model.mask("m.weight").unwrap()), vec![0.0; 8]);
    assert_eq!(model.history("m.weight").unwrap().len(), 2);
    model.global_unstructured(&["m.weight", "n.weight"], L1Unstructured::new(1)?, &[])?;
    assert_eq!(vals(model.mask("n.weight").unwrap()), vec![0., 1., 1.]);
    forward_each(&mut model)?;
    Ok(())
}

/// Global pruning checks all its first-time parameters together (one walk over the model's
/// slots): a name late in the list that has no slot, or whose slot holds another tensor than
/// the `VarStore`'s, fails with that name and changes nothing for the names before it.
#[test]
fn global_checks_every_first_time_parameter_before_changing_any() -> TestResult {
    let (vs, mut model) = global_layers(true);
    model.l1_unstructured("m.bias", 1, None)?;
    // `m.bias_orig` is a variable, but no slot has that path.
    assert_fails_unchanged!(
        model,
        vs,
        model.global_unstructured(&["m.weight", "n.weight", "m.bias_orig"], L1Unstructured::new(2)?, &[]),
        PruneError::SlotNotFound { ref name } if name == "m.bias_orig"
    );
    // `n`'s slot no longer holds the variable `n.weight`.
    let copy = model.model().n.ws.copy();
    model.model_mut().n.ws = copy;
    assert_fails_unchanged!(
        model,
        vs,
        model.global_unstructured(&["m.weight", "m.bias", "n.weight"], L1Unstructured::new(2)?, &[]),
        PruneError::SlotMismatch { ref name } if name == "n.weight"
    );
    // A later name whose `_mask` name is taken by another variable.
    let _taken = (vs.root() / "n").zeros_no_train("bias_mask", &[1]);
    assert_fails_unchanged!(
        model,
        vs,
        model.global_unstructured(&["m.weight", "n.bias"], L1Unstructured::new(1)?, &[]),
        PruneError::NameTaken { ref name, ref taken } if name == "n.bias" && taken == "n.bias_mask"
    );
    Ok(())
}

/// Refreshes the slots and runs `m` and `n` of [`global_layers`] (which do not compose) each on
/// an input of its own.
fn forward_each(model: &mut PrunedModel<TwoLayers>) -> TestResult {
    model.refresh()?;
    let net = model.model();
    let _ = net.m.forward(&Tensor::randn([3, 4], (Kind::Float, CPU)));
    let _ = net.n.forward(&Tensor::randn([3, 3], (Kind::Float, CPU)));
    Ok(())
}

/// The `bias=False` case on a single layer: PyTorch leaves the module broken
/// (`bias_orig = None`, no `bias`); here the call fails and nothing changes.
#[test]
fn pruning_a_missing_bias_changes_nothing() -> TestResult {
    let (vs, mut model) = linear_5_2(false);
    assert_fails_unchanged!(
        model,
        vs,
        model.l1_unstructured("bias", 1, None),
        PruneError::UnknownParameter { ref name } if name == "bias"
    );
    assert_fails_unchanged!(
        model,
        vs,
        model.identity("bias"),
        PruneError::UnknownParameter { ref name } if name == "bias"
    );
    assert_eq!(keys(&vs), names(&["weight"]));
    model.identity("weight")?;
    Ok(())
}

/// Trains `TwoLayers` with an optimizer built before pruning: it keeps training `<name>_orig`
/// (the kept entries change), the pruned entries of the weight the layer computes with stay
/// exactly 0 step after step, and the masks do not move.
fn train_after_pruning(
    label: &str,
    make_opt: impl FnOnce(&VarStore) -> nn::Optimizer,
) -> TestResult {
    let vs = VarStore::new(CPU);
    let root = vs.root();
    let net = TwoLayers {
        m: nn::linear(&root / "m", 4, 3, Default::default()),
        n: nn::linear(&root / "n", 3, 2, Default::default()),
    };
    // Weights and data from a fixed formula, not the global generator: other tests draw from
    // it on parallel threads, so a seed here would not fix what this test sees.
    let fixed = |shape: &[i64], phase: f64| {
        let n: i64 = shape.iter().product();
        ((Tensor::arange(n, (Kind::Double, CPU)) * 1.7 + phase).sin() * 0.8)
            .to_kind(Kind::Float)
            .reshape(shape)
    };
    tch::no_grad(|| {
        for (i, (_, mut v)) in vs
            .variables()
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .enumerate()
        {
            v.copy_(&fixed(&v.size(), i as f64));
        }
    });
    let mut opt = make_opt(&vs);
    let mut model = PrunedModel::new(net, &vs).unwrap();
    let x = fixed(&[16, 4], 10.0);
    let target = fixed(&[16, 2], 20.0);
    let loss_of = |model: &mut PrunedModel<TwoLayers>| -> tch_prune::Result<Tensor> {
        Ok((model.forward(&x)? - &target).square().mean(Kind::Float))
    };

    // One step before pruning, so the optimizer has state (momentum, moments) for every entry.
    let loss = loss_of(&mut model)?;
    opt.backward_step(&loss);

    let pruned = ["m.weight", "n.weight"];
    let ptrs: Vec<_> = pruned.iter().map(|n| var(&vs, n).data_ptr()).collect();
    model.l1_unstructured("m.weight", 0.5, None)?;
    model.ln_structured("n.weight", 1, 2, 0, None)?;
    let masks: Vec<Vec<f64>> = pruned.iter().map(|n| vals(model.mask(n).unwrap())).collect();
    assert_eq!(masks[0].iter().filter(|&&m| m == 0.0).count(), 6, "{label}");
    assert_eq!(masks[1].iter().filter(|&&m| m == 0.0).count(), 3, "{label}");
    let at_pruning: Vec<Vec<f64>> = pruned.iter().map(|n| vals(model.orig(n).unwrap())).collect();
    // The optimizer holds the very tensors now stored as `<name>_orig`.
    let opt_ptrs: Vec<_> = opt.trainable_variables().iter().map(|t| t.data_ptr()).collect();
    for (name, ptr) in pruned.iter().zip(&ptrs) {
        assert_eq!(var(&vs, &format!("{name}_orig")).data_ptr(), *ptr, "{label} {name}");
        assert!(opt_ptrs.contains(ptr), "{label}: the optimizer lost {name}");
    }

    let mut losses = Vec::new();
    for step in 0..5 {
        let loss = loss_of(&mut model)?;
        losses.push(f64::try_from(&loss)?);
        opt.backward_step(&loss);
        model.refresh()?;
        for (i, name) in pruned.iter().enumerate() {
            let effective = vals(&slot(&mut model, name));
            for (j, &m) in masks[i].iter().enumerate() {
                if m == 0.0 {
                    assert_eq!(effective[j], 0.0, "{label} step {step}: {name}[{j}] is pruned");
                }
            }
            assert_eq!(vals(model.mask(name).unwrap()), masks[i], "{label}: {name} mask moved");
            assert_eq!(model.orig(name).unwrap().data_ptr(), ptrs[i], "{label}: {name}_orig");
        }
    }
    for (i, name) in pruned.iter().enumerate() {
        let now = vals(model.orig(name).unwrap());
        for (j, &m) in masks[i].iter().enumerate() {
            if m == 1.0 {
                assert_ne!(
                    now[j], at_pruning[i][j],
                    "{label}: kept entry {name}_orig[{j}] not trained"
                );
            }
        }
    }
    let final_loss = f64::try_from(&loss_of(&mut model)?)?;
    assert!(
        final_loss < losses[0],
        "{label}: the loss did not go down: {losses:?} -> {final_loss}"
    );
    Ok(())
}

#[test]
fn optimizer_built_before_pruning_keeps_training_orig_sgd_momentum() -> TestResult {
    train_after_pruning("SGD(momentum=0.9)", |vs| {
        nn::Sgd { momentum: 0.9, ..Default::default() }.build(vs, 0.05).expect("sgd")
    })
}

#[test]
fn optimizer_built_before_pruning_keeps_training_orig_adam() -> TestResult {
    train_after_pruning("Adam", |vs| nn::Adam::default().build(vs, 0.01).expect("adam"))
}

/// After forward and backward, the gradient of `<name>_orig` is the upstream gradient (the
/// gradient with respect to the weight the layer computed with) times the mask; pruned entries
/// get exactly 0, as in PyTorch.
#[test]
fn gradient_of_orig_is_upstream_gradient_times_mask() -> TestResult {
    tch::manual_seed(3);
    for Case { label, vs: _, mut model, input } in modules() {
        model.random_unstructured("weight", 0.5)?;
        model.l1_unstructured("bias", 1, None)?;
        let output = model.forward(&input)?;
        let upstream_out = Tensor::randn(output.size(), (Kind::Float, CPU));
        (&output * &upstream_out).sum(Kind::Float).backward();
        let grads: Vec<Tensor> =
            NAMES.iter().map(|name| model.orig(name).unwrap().grad().copy()).collect();

        // The upstream gradient: run the layer on leaf copies of the weights it computed with.
        model.refresh()?;
        let leaves: Vec<Tensor> = NAMES
            .iter()
            .map(|name| slot(&mut model, name).detach().copy().set_requires_grad(true))
            .collect();
        for (name, leaf) in NAMES.iter().zip(&leaves) {
            set_slot(&mut model, name, leaf);
        }
        let again = model.model().forward(&input);
        (&again * &upstream_out).sum(Kind::Float).backward();
        model.refresh()?;

        for ((name, grad), leaf) in NAMES.iter().zip(&grads).zip(&leaves) {
            let mask = model.mask(name).unwrap().shallow_clone();
            let expected = leaf.grad() * &mask;
            assert_close(grad, &expected, 1e-6, &format!("{label} {name}_orig.grad"));
            for (j, (g, m)) in vals(grad).into_iter().zip(vals(&mask)).enumerate() {
                if m == 0.0 {
                    assert_eq!(g, 0.0, "{label}: pruned entry {name}_orig[{j}] got a gradient");
                }
            }
            assert!(vals(grad).iter().any(|&g| g != 0.0), "{label}: {name} gradient is all 0");
            assert!(!mask.requires_grad(), "{label}: the mask must not require grad");
            assert!(!mask.grad().defined(), "{label}: the mask got a gradient");
        }
        // The second backward went to the leaves only, not to the origs.
        for (name, grad) in NAMES.iter().zip(&grads) {
            assert_same_values(&model.orig(name).unwrap().grad(), grad, name);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Global importance scores for parameters that are not pruned
// ---------------------------------------------------------------------------------------------

/// The layers of `scripts/global_parity.py extra-scores`.
#[derive(Debug)]
struct ThreeLayers {
    a: nn::Linear,
    b: nn::Linear,
    c: nn::Linear,
}
prunable!(ThreeLayers { a, b, c });

/// The script's layers, holding the values it wrote.
fn three_layers(file: &BTreeMap<String, Tensor>) -> (VarStore, PrunedModel<ThreeLayers>) {
    let vs = VarStore::new(CPU);
    let root = vs.root();
    let net = ThreeLayers {
        a: nn::linear(&root / "a", 4, 3, Default::default()),
        b: nn::linear(&root / "b", 3, 2, Default::default()),
        c: nn::linear(&root / "c", 2, 2, Default::default()),
    };
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            var.copy_(&file[&name]);
        }
    });
    let model = PrunedModel::new(net, &vs).unwrap();
    (vs, model)
}

/// PyTorch's `global_unstructured` looks up the scores of the listed parameters only, so one
/// scores map serves any subset of them; the crate used to refuse the extra names with
/// `UnknownParameter`. Two rounds (the second through the container, one parameter ranked by
/// its current value) give PyTorch's masks bit for bit (`scripts/global_parity.py
/// extra-scores`), with scores for unlisted parameters and for a name that is not a variable at
/// all. A score of the wrong shape for a listed parameter stays an error.
#[test]
fn global_scores_for_unlisted_names_are_ignored() -> TestResult {
    let file = common::python::global_extra_scores();
    let (vs, mut model) = three_layers(&file);
    let nowhere = Tensor::ones([7], (Kind::Float, CPU));
    let names = ["a.weight", "b.weight"];
    let round1 = [
        ("c.weight", &file["scores.c.weight"]),
        ("a.weight", &file["scores.a.weight"]),
        ("nowhere", &nowhere),
        ("b.weight", &file["scores.b.weight"]),
        ("a.bias", &file["scores.a.bias"]),
    ];
    let round2 = [
        ("a.bias", &file["scores.a.bias"]),
        ("a.weight", &file["scores2.a.weight"]),
        ("c.weight", &file["scores.c.weight"]),
        ("nowhere", &nowhere),
    ];
    let rounds = [
        ("round1", &round1[..], tch_prune::Amount::Fraction(0.4)),
        ("round2", &round2[..], tch_prune::Amount::Count(3)),
    ];
    for (round, scores, amount) in rounds {
        model.global_unstructured(&names, L1Unstructured::new(amount)?, scores)?;
        for name in names {
            let expected = &file[&format!("{round}.{name}_mask")];
            let mask = model.mask(name).expect("pruned");
            assert_eq!(mask.kind(), expected.kind(), "{round} {name}: kind");
            assert_same_values(mask, expected, &format!("{round} {name}"));
        }
    }
    for name in ["c.weight", "a.bias", "c.bias", "b.bias"] {
        assert!(!model.is_parameter_pruned(name), "{name}");
        assert_same_values(&var(&vs, name), &file[name], name);
    }

    // Scores of the wrong shape for a listed parameter: an error, nothing changes (PyTorch
    // flattens the scores and accepts any shape with the same number of entries).
    let masks_before: Vec<Tensor> = names.iter().map(|n| model.mask(n).unwrap().copy()).collect();
    let wrong = Tensor::ones([4, 3], (Kind::Float, CPU));
    let err = model
        .global_unstructured(
            &names,
            L1Unstructured::new(1)?,
            &[("a.weight", &wrong), ("c.weight", &nowhere)],
        )
        .unwrap_err();
    assert!(matches!(
        err,
        PruneError::ShapeMismatch { parameter: "importance_scores", ref expected, ref actual }
            if expected == &[3, 4] && actual == &[4, 3]
    ));
    for (name, before) in names.iter().zip(&masks_before) {
        assert_same_values(model.mask(name).unwrap(), before, name);
        assert_eq!(model.history(name).unwrap().len(), 2, "{name}");
    }
    Ok(())
}
