//! Sparse (COO, CSR) and MKL-DNN tensors are refused with `PruneError::UnsupportedLayout` at
//! every entry point, before any call that panics on them (`data_ptr`, `is_contiguous`, tch's
//! fallible operations that take a scalar), and a refused call changes nothing.
//!
//! PyTorch raises for these layouts too (a `NotImplementedError`, `RuntimeError` or `TypeError`
//! from libtorch, depending on the method); before the check the crate panicked.

mod common;

use common::tensors::{snapshot, tf, values};
use tch::nn::{self, VarStore};
use tch::{Device, Kind, Layout, Tensor};
use tch_prune::{
    CustomFromMask, HardMask, Identity, L1Unstructured, LnStructured, PruneError, PrunedModel,
    Pruner, PruningContainer, PruningMethod, PruningType, RandomStructured, RandomUnstructured,
};

/// A dense `[4, 3]` float tensor with distinct magnitudes.
fn dense() -> Tensor {
    tf(&[0.5, -2.0, 1.5, 3.0, -0.25, 1.0, -4.0, 2.5, 0.75, -1.25, 5.0, -3.5], &[4, 3])
}

/// `t` in each layout the crate refuses, with the layout it must report.
fn refused(t: &Tensor) -> Vec<(Layout, Tensor)> {
    vec![
        (Layout::Sparse, t.to_sparse_sparse_dim(t.dim() as i64)),
        (Layout::SparseCsr, t.to_sparse_csr(None)),
        (Layout::Mkldnn, t.to_mkldnn()),
    ]
}

/// Every built-in method, built for a `[4, 3]` tensor, with a dense custom mask.
fn methods() -> Vec<Box<dyn PruningMethod>> {
    vec![
        Box::new(Identity),
        Box::new(L1Unstructured::new(2).unwrap()),
        Box::new(RandomUnstructured::new(0.5).unwrap()),
        Box::new(LnStructured::new(1, 2, 0).unwrap()),
        Box::new(RandomStructured::new(1, -1).unwrap()),
        Box::new(CustomFromMask::new(dense().ge(0.0).to_kind(Kind::Float))),
    ]
}

/// Asserts `result` is `UnsupportedLayout { parameter, layout }`.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, PruneError>,
    parameter: &str,
    layout: Layout,
) {
    match result {
        Err(PruneError::UnsupportedLayout { parameter: p, layout: l }) => {
            assert_eq!((p.as_str(), l), (parameter, layout));
        }
        other => panic!("expected UnsupportedLayout {{ {parameter}, {layout:?} }}, got {other:?}"),
    }
}

/// The layout is named, for compressed layouts too; the message says what is expected.
#[test]
fn every_non_dense_layout_is_named() {
    let t = dense();
    let method = L1Unstructured::new(1).unwrap();
    let more = [
        (Layout::SparseCsc, t.to_sparse_csc(None)),
        (Layout::SparseBsr, t.to_sparse_bsr([2, 3], None)),
        (Layout::SparseBsc, t.to_sparse_bsc([2, 3], None)),
    ];
    for (layout, s) in refused(&t).into_iter().chain(more) {
        assert_refused(method.compute_mask(&s, &t.ones_like()), "importance", layout);
    }
    let err = method.compute_mask(&t.to_sparse_csr(None), &t.ones_like()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "importance: tensors with layout SparseCsr are not supported; expected a dense (strided) tensor"
    );
}

#[test]
fn methods_refuse_sparse_and_mkldnn_tensors() {
    let t = dense();
    let ones = t.ones_like();
    for (layout, s) in refused(&t) {
        let s_ones = refused(&ones).into_iter().find(|(l, _)| *l == layout).unwrap().1;
        for method in methods() {
            // Identity and CustomFromMask ignore the importance tensor, as in PyTorch; Identity
            // has no `compute_mask_on_ones` (the caller builds the ones).
            let identity = format!("{method:?}").starts_with("Identity");
            if method.pruning_type() != PruningType::Global && !identity {
                assert_refused(method.compute_mask(&s, &ones), "importance", layout);
                assert_refused(method.compute_mask_on_ones(&s, &t), "importance", layout);
            }
            assert_refused(method.compute_mask(&t, &s_ones), "default_mask", layout);
            if !identity {
                assert_refused(method.compute_mask_on_ones(&t, &s), "default_mask", layout);
            }
            assert_refused(method.prune(&s, None, None), "t", layout);
            assert_refused(method.prune(&t, Some(&s_ones), None), "default_mask", layout);
            assert_refused(method.prune(&t, None, Some(&s)), "importance_scores", layout);
        }
        // The custom mask itself.
        let custom = CustomFromMask::new(s_ones.shallow_clone());
        assert_refused(custom.compute_mask(&t, &ones), "mask", layout);
        assert_refused(custom.compute_mask_on_ones(&t, &t), "mask", layout);
        assert_refused(custom.prune(&t, None, None), "mask", layout);
    }
}

/// A method that hands back a sparse mask.
#[derive(Debug)]
struct SparseMask;

impl PruningMethod for SparseMask {
    fn compute_mask(
        &self,
        _importance: &Tensor,
        default_mask: &Tensor,
    ) -> tch_prune::Result<Tensor> {
        Ok(default_mask.to_sparse_sparse_dim(default_mask.dim() as i64))
    }
    fn pruning_type(&self) -> PruningType {
        PruningType::Global
    }
}

#[test]
fn containers_refuse_sparse_and_mkldnn_tensors() {
    let t = dense();
    let default = t.ge(0.0).to_kind(Kind::Float);
    let before = snapshot(&default);
    for (layout, s) in refused(&t) {
        let s_mask = refused(&default).into_iter().find(|(l, _)| *l == layout).unwrap().1;
        for method in methods() {
            let container: PruningContainer = [method].into_iter().collect();
            assert_refused(container.compute_mask(&s, &default), "importance", layout);
            assert_refused(container.compute_mask(&t, &s_mask), "default_mask", layout);
            assert_refused(container.prune(&s, None, None), "t", layout);
            assert_refused(container.prune(&t, None, Some(&s)), "importance_scores", layout);
            assert_refused(container.prune(&t, Some(&s_mask), None), "default_mask", layout);
        }
    }
    // A sparse mask returned by the method is refused too.
    let container: PruningContainer = [SparseMask].into_iter().collect();
    assert_refused(container.compute_mask(&t, &default), "mask", Layout::Sparse);
    assert_eq!(values(&default), values(&before));
}

/// `fc` (`Linear(3, 4)`) in a model, pruned once when `pruned`.
fn model(pruned: bool) -> (VarStore, PrunedModel<nn::Linear>) {
    let vs = VarStore::new(Device::Cpu);
    let fc = nn::linear(vs.root() / "fc", 3, 4, Default::default());
    let mut w = fc.ws.shallow_clone();
    tch::no_grad(|| w.copy_(&dense()));
    let mut m = PrunedModel::with_prefix(fc, &vs, "fc").unwrap();
    if pruned {
        m.l1_unstructured("fc.weight", 2, None).unwrap();
    }
    (vs, m)
}

/// The `VarStore` as sorted `(name, values)` pairs.
fn state(vs: &VarStore) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<_> = vs.variables().iter().map(|(k, v)| (k.clone(), values(v))).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

const NAME: &str = "fc.weight";

/// Every `PrunedModel` entry point that takes importance scores, given `scores`.
fn calls_with_scores(m: &mut PrunedModel<nn::Linear>, s: &Tensor) -> Vec<tch_prune::Result<()>> {
    let l1 = || L1Unstructured::new(1).unwrap();
    vec![
        m.l1_unstructured(NAME, 1, Some(s)),
        m.ln_structured(NAME, 1, 2, 0, Some(s)),
        m.apply(NAME, l1(), Some(s)),
        m.apply(NAME, RandomStructured::new(1, 0).unwrap(), Some(s)),
        m.global_unstructured(&[NAME], l1(), &[(NAME, s)]),
    ]
}

/// Every `PrunedModel` pruning entry point, without importance scores.
fn calls_without_scores(m: &mut PrunedModel<nn::Linear>) -> Vec<tch_prune::Result<()>> {
    let l1 = || L1Unstructured::new(1).unwrap();
    vec![
        m.identity(NAME),
        m.l1_unstructured(NAME, 1, None),
        m.random_unstructured(NAME, 1),
        m.ln_structured(NAME, 1, 2, 0, None),
        m.random_structured(NAME, 1, 0),
        m.custom_from_mask(NAME, &dense().ones_like()),
        m.apply(NAME, l1(), None),
        m.global_unstructured(&[NAME], l1(), &[]),
    ]
}

#[test]
fn pruned_models_refuse_sparse_and_mkldnn_parameters_scores_and_masks() {
    let t = dense();
    let ones = t.ones_like();
    for (layout, s) in refused(&t) {
        let s_mask = refused(&ones).into_iter().find(|(l, _)| *l == layout).unwrap().1;
        for pruned in [false, true] {
            // Importance scores and custom masks, at the first pruning and at a later one.
            let (vs, mut m) = model(pruned);
            let before = state(&vs);
            for result in calls_with_scores(&mut m, &s) {
                assert_refused(result, "importance_scores", layout);
            }
            assert_refused(m.custom_from_mask(NAME, &s_mask), "mask", layout);
            assert_refused(m.apply(NAME, SparseMask, None), "mask", Layout::Sparse);
            assert_eq!(state(&vs), before);
            assert_eq!(m.history(NAME).map(|h| h.len()), pruned.then_some(1));
        }
        // The parameter itself: a sparse or MKL-DNN tensor under `fc.weight` in the VarStore.
        let (vs, mut m) = model(false);
        vs.variables_.lock().unwrap().named_variables.insert(NAME.into(), s.shallow_clone());
        for result in calls_without_scores(&mut m) {
            assert_refused(result, NAME, layout);
        }
        assert!(!m.is_pruned());
        assert!(vs.variables().contains_key("fc.weight"));
    }
}

#[test]
fn hard_masks_refuse_sparse_and_mkldnn_variables_scores_and_masks() {
    let t = dense();
    let ones = t.ones_like();
    for (layout, s) in refused(&t) {
        let s_mask = refused(&ones).into_iter().find(|(l, _)| *l == layout).unwrap().1;
        let vs = VarStore::new(Device::Cpu);
        let fc = nn::linear(vs.root() / "fc", 3, 4, Default::default());
        let mut masks = HardMask::new(&vs);
        let before = values(&fc.ws);
        let name = "fc.weight";
        let l1 = || L1Unstructured::new(1).unwrap();
        assert_refused(masks.l1_unstructured(name, 1, Some(&s)), "importance_scores", layout);
        assert_refused(masks.ln_structured(name, 1, 2, 0, Some(&s)), "importance_scores", layout);
        assert_refused(masks.apply(name, l1(), Some(&s)), "importance_scores", layout);
        assert_refused(
            masks.global_unstructured(&[name], l1(), &[(name, &s)]),
            "importance_scores",
            layout,
        );
        assert_refused(masks.custom_from_mask(name, &s_mask), "mask", layout);
        assert_refused(masks.apply(name, SparseMask, None), "mask", Layout::Sparse);
        assert_eq!(values(&fc.ws), before);
        assert_eq!(masks.masks().count(), 0);

        // The variable itself.
        vs.variables_.lock().unwrap().named_variables.insert(name.into(), s.shallow_clone());
        assert_refused(masks.l1_unstructured(name, 1, None), name, layout);
        assert_refused(masks.random_structured(name, 1, 0), name, layout);
        assert_refused(masks.custom_from_mask(name, &ones), name, layout);
        assert_refused(masks.global_unstructured(&[name], l1(), &[]), name, layout);
        assert_eq!(masks.masks().count(), 0);
    }
}
