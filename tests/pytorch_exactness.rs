//! Model-level cases where the crate used to depart from PyTorch: structured re-pruning of a
//! 1-D parameter (PyTorch's container views the vector as one row), and the bits of the mask
//! `custom_from_mask` stores at a first pruning (PyTorch's `ones * mask` re-encodes NaNs).
//! The expected masks were printed by torch 2.13; `tests/parity.rs` checks the same rules at
//! the method level against masks written by PyTorch (`scripts/make_fixtures.py`).

use tch::nn::{self, VarStore};
use tch::{Device, Kind, Tensor};
use tch_prune::{PruneError, PrunedModel, Pruner};

const CPU: Device = Device::Cpu;

/// `fc = Linear(3, 5)` with bias `[1, -2, 3, 0.5, 4]`, wrapped.
fn with_bias() -> (VarStore, PrunedModel<nn::Linear>) {
    let vs = VarStore::new(CPU);
    let fc = nn::linear(vs.root() / "fc", 3, 5, Default::default());
    let mut bias = fc.bs.as_ref().unwrap().shallow_clone();
    tch::no_grad(|| bias.copy_(&Tensor::from_slice(&[1.0f32, -2.0, 3.0, 0.5, 4.0])));
    let m = PrunedModel::with_prefix(fc, &vs, "fc").unwrap();
    (vs, m)
}

fn mask(m: &PrunedModel<nn::Linear>) -> Vec<f32> {
    Vec::<f32>::try_from(m.mask("fc.bias").unwrap()).unwrap()
}

/// PyTorch: after `prune.l1_unstructured(fc, "bias", 2)`, `ln_structured` / `random_structured`
/// on the bias go through `PruningContainer`, which slices the 1-D tensor as one row `[1, 5]`:
/// with `dim=-1` each entry is a channel (the pruned ones included, with norm 0), with `dim=0`
/// the whole bias is one channel.
#[test]
fn structured_re_pruning_of_a_bias_is_pytorchs() -> Result<(), PruneError> {
    let (_vs, mut m) = with_bias();
    m.l1_unstructured("fc.bias", 2, None)?;
    assert_eq!(mask(&m), [0., 1., 1., 0., 1.]);
    m.ln_structured("fc.bias", 3, 2, -1, None)?; // the two zeros and |-2|
    assert_eq!(mask(&m), [0., 0., 1., 0., 1.]);
    m.ln_structured("fc.bias", 1, 1, 0, None)?; // the whole vector
    assert_eq!(mask(&m), [0.; 5]);
    assert_eq!(m.history("fc.bias").unwrap().len(), 3);

    // torch.manual_seed(7); prune.random_structured(fc, "bias", 0.6, dim=-1): round(0.6 * 5)
    // entries drawn among all five.
    let (_vs, mut m) = with_bias();
    m.l1_unstructured("fc.bias", 2, None)?;
    tch::manual_seed(7);
    m.random_structured("fc.bias", 0.6, -1)?;
    assert_eq!(mask(&m), [0., 0., 1., 0., 0.]);
    // dim=0: round(0.6 * 1) = 1 channel, the whole bias.
    m.random_structured("fc.bias", 0.6, 0)?;
    assert_eq!(mask(&m), [0.; 5]);
    Ok(())
}

/// The errors PyTorch raises on the same path, and nothing changes.
#[test]
fn structured_re_pruning_of_a_bias_fails_where_pytorch_does() -> Result<(), PruneError> {
    let (vs, mut m) = with_bias();
    // The first pruning is a bare method: ValueError, "structured pruning needs 2 dims".
    let err = m.ln_structured("fc.bias", 1, 2, 0, None).unwrap_err();
    assert!(matches!(err, PruneError::NotStructured { ref shape } if shape == &[5]), "{err:?}");
    m.l1_unstructured("fc.bias", 2, None)?;
    // IndexError: only dims 0 and -1 fit a vector.
    for dim in [1, -2] {
        let err = m.ln_structured("fc.bias", 1, 2, dim, None).unwrap_err();
        assert!(matches!(err, PruneError::DimOutOfRange { dim: d, ndim: 1 } if d == dim));
    }
    // ValueError: 6 entries of 5.
    let err = m.random_structured("fc.bias", 6, -1).unwrap_err();
    assert!(matches!(err, PruneError::AmountTooLarge { requested: 6, available: 5 }));
    assert_eq!(mask(&m), [0., 1., 1., 0., 1.]);
    assert_eq!(m.history("fc.bias").unwrap().len(), 1);

    // A bias pruned entirely is no row at all: a count of one channel is too many
    // (ValueError, "amount=1 should be smaller than ... 0"), a fraction prunes nothing.
    let (_vs, mut m) = with_bias();
    m.l1_unstructured("fc.bias", 1.0, None)?;
    let err = m.ln_structured("fc.bias", 1, 2, 0, None).unwrap_err();
    assert!(matches!(err, PruneError::AmountTooLarge { requested: 1, available: 0 }));
    m.ln_structured("fc.bias", 0.5, 2, 0, None)?;
    m.random_structured("fc.bias", 2, -1)?; // still five entries along -1
    assert_eq!(mask(&m), [0.; 5]);
    drop(vs);
    Ok(())
}

/// The bits of `t`, for comparisons where NaN payloads matter.
fn bits(t: &Tensor) -> Vec<i64> {
    let as_int = match t.kind() {
        Kind::Half | Kind::BFloat16 => Kind::Int16,
        Kind::Float => Kind::Int,
        _ => Kind::Int64,
    };
    Vec::<i64>::try_from(&t.contiguous().view_dtype(as_int).to_kind(Kind::Int64).reshape([-1]))
        .unwrap()
}

/// 70 mask entries cycling through `specials`, ones and zeros: libtorch's kernels run 64 of
/// them vectorized and the last 6 one by one, so NaNs land in both parts.
fn cycled(specials: &[Tensor]) -> Tensor {
    let parts: Vec<Tensor> = (0..70)
        .map(|i| match i % 3 {
            0 => specials[(i / 3) % specials.len()].shallow_clone(),
            1 => Tensor::ones([1], (specials[0].kind(), CPU)),
            _ => Tensor::zeros([1], (specials[0].kind(), CPU)),
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// Masks holding NaNs with assorted payloads and signs (quiet and signalling), infinities and
/// `-0.0`, in every float kind.
fn nan_masks() -> Vec<Tensor> {
    let f32s = [0x7FC0_0000u32, 0x7F80_0001, 0xFFC0_0000, 0x7FBF_FFFF, 0xFF81_2345, 0x7FC5_4321]
        .into_iter()
        .map(f32::from_bits)
        .chain([f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.5]);
    let f64s = [0x7FF8_0000_0000_0000u64, 0x7FF0_0000_0000_0001, 0xFFF4_0000_0000_0ABC]
        .into_iter()
        .map(f64::from_bits)
        .chain([f64::INFINITY, -0.0]);
    let half = |bits: &[i16], kind| {
        bits.iter().map(|&b| Tensor::from_slice(&[b]).view_dtype(kind)).collect::<Vec<_>>()
    };
    let bf16 = [0x7FC0u16, 0xFFC0, 0x7F81, 0x7FFF, 0xFF81, 0x7F80, 0x8000].map(|b| b as i16);
    let f16 = [0x7E00u16, 0xFE00, 0x7C01, 0x7FFF, 0x7D55, 0xFC00, 0x8000].map(|b| b as i16);
    vec![
        cycled(&f32s.map(|v| Tensor::from_slice(&[v])).collect::<Vec<_>>()),
        cycled(&f64s.map(|v| Tensor::from_slice(&[v])).collect::<Vec<_>>()),
        cycled(&half(&bf16, Kind::BFloat16)),
        cycled(&half(&f16, Kind::Half)),
    ]
}

/// PyTorch's first pruning stores `ones_like(orig) * mask.to(orig.dtype)`, and the product
/// re-encodes NaNs: signalling NaNs come out quiet, and libtorch's bfloat16 kernel writes
/// `0xFFFF` for every NaN it handles vectorized and `0x7FC0` in the scalar tail. The stored
/// mask must have those bits, not the given mask's.
#[test]
fn custom_from_mask_stores_the_bits_of_pytorchs_product() -> Result<(), PruneError> {
    for kind in [Kind::Float, Kind::Double, Kind::BFloat16, Kind::Half] {
        for given in nan_masks() {
            let mut vs = VarStore::new(CPU);
            let fc = nn::linear(vs.root() / "fc", 10, 7, Default::default());
            vs.set_kind(kind);
            let mut m = PrunedModel::with_prefix(fc, &vs, "fc").unwrap();
            let given = given.reshape([7, 10]);
            let copy = given.copy();
            m.custom_from_mask("fc.weight", &given)?;
            let orig = m.orig("fc.weight").unwrap();
            let expected = orig.ones_like() * given.to_kind(kind);
            let stored = m.mask("fc.weight").unwrap();
            assert_eq!(stored.kind(), kind);
            assert_eq!(bits(stored), bits(&expected), "{kind:?} param, {:?} mask", given.kind());
            assert_eq!(bits(&given), bits(&copy), "the given mask is not modified");
        }
    }
    Ok(())
}
