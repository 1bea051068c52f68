//! Compressed storage (bitmask, CSR, auto): lossless round trips through `densify` and
//! `load_compressed`, the sizes of the parts, and `report`.

mod common;

use std::path::Path;

use common::offline::{fixtures, read_all, TempDir};
use tch::{Kind, Tensor};
use tch_prune::offline::{
    compress, densify, load_compressed, prune, report, Checkpoint, Format, NoProgress,
    OfflineMethod, PruneOptions, Scope, Selection,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The tensors' bytes, for bit-for-bit comparisons (`-0.0 != +0.0`, NaN payloads count).
fn bits(t: &Tensor) -> Tensor {
    t.contiguous().view_dtype(Kind::Uint8)
}

fn assert_same_bits(a: &Path, b: &Path) {
    let (a, b) = (read_all(a), read_all(b));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, x) in &a {
        let y = &b[name];
        assert_eq!((x.kind(), x.size()), (y.kind(), y.size()), "{name}");
        assert!(bits(x).equal(&bits(y)), "{name} differs");
    }
}

#[test]
fn pruned_then_compressed_densifies_to_the_dense_output_bit_for_bit() -> TestResult {
    let dir = TempDir::new("formats");
    let method = OfflineMethod::Magnitude { scope: Scope::Global, amount: 0.5.into() };
    for input in [fixtures().join("single.safetensors"), fixtures().join("sharded")] {
        let ckpt = Checkpoint::open(&input)?;
        let tag = input.file_name().unwrap().to_string_lossy().into_owned();
        let dense = dir.join(&format!("dense-{tag}"));
        prune(&ckpt, &dense, &PruneOptions::new(method.clone()), &NoProgress)?;
        for format in [Format::Bitmask, Format::Csr, Format::Auto] {
            let packed = dir.join(&format!("{format:?}-{tag}"));
            prune(&ckpt, &packed, &PruneOptions::new(method.clone()).format(format), &NoProgress)?;
            let packed_ckpt = Checkpoint::open(&packed)?;
            assert_eq!(packed_ckpt.is_sharded(), ckpt.is_sharded());
            let back = dir.join(&format!("back-{format:?}-{tag}"));
            densify(&packed_ckpt, &back, &NoProgress)?;
            assert_same_bits(&dense, &back);
            // Straight into tensors.
            let loaded = load_compressed(&packed_ckpt)?;
            let expected = read_all(&dense);
            assert_eq!(loaded.len(), expected.len());
            for (name, t) in &loaded {
                assert!(bits(t).equal(&bits(&expected[name])), "{format:?} {name}");
            }
            // The report sees the original tensors, their sparsity and the storage.
            let r = report(&packed_ckpt, &NoProgress)?;
            let dense_report = report(&Checkpoint::open(&dense)?, &NoProgress)?;
            assert_eq!(r.tensors.len(), dense_report.tensors.len());
            for (p, d) in r.tensors.iter().zip(&dense_report.tensors) {
                assert_eq!(
                    (&p.name, p.zeros, p.numel, p.bytes_dense),
                    (&d.name, d.zeros, d.numel, d.bytes_dense)
                );
                if format != Format::Auto && d.shape.len() >= 2 && d.dtype != "I32" {
                    assert_eq!(
                        p.storage,
                        if format == Format::Bitmask { "bitmask" } else { "csr" }
                    );
                }
            }
            if format == Format::Auto {
                assert!(r.bytes_on_disk <= dense_report.bytes_on_disk, "auto never grows");
            }
        }
    }
    Ok(())
}

#[test]
fn bitmask_and_csr_sizes_follow_their_layouts() -> TestResult {
    // A bf16 [64, 1024] weight at exactly 50 % (every other entry), compressed.
    let dir = TempDir::new("sizes");
    let input = dir.join("w.safetensors");
    let values = Tensor::arange(64 * 1024, (Kind::Float, tch::Device::Cpu)) + 1.0;
    let mask = (Tensor::arange(64 * 1024, (Kind::Int64, tch::Device::Cpu)).remainder(2))
        .to_kind(Kind::Float);
    let w = (values * mask).reshape([64, 1024]).to_kind(Kind::BFloat16);
    Tensor::write_safetensors(&[("w", &w)], &input)?;
    let ckpt = Checkpoint::open(&input)?;
    let mut sizes = Vec::new();
    for format in [Format::Bitmask, Format::Csr] {
        let out = dir.join(&format!("{format:?}.safetensors"));
        compress(&ckpt, &out, &Selection::new(), format, &NoProgress)?;
        let r = report(&Checkpoint::open(&out)?, &NoProgress)?;
        sizes.push(r.bytes_on_disk);
        assert_eq!(r.tensors[0].zeros, 32 * 1024);
    }
    // bitmask: values 2 B x 32768, bits 64 x 128 B, row offsets 64 x 8 B, shape 2 x 8 B.
    assert_eq!(sizes[0], 2 * 32768 + 64 * 128 + 64 * 8 + 16);
    // CSR: (2 + 1) B per stored entry, row_ptr 65 x 8 B, shape.
    assert_eq!(sizes[1], 3 * 32768 + 65 * 8 + 16);
    Ok(())
}

#[test]
fn signed_zeros_nan_payloads_and_long_gaps_round_trip() -> TestResult {
    let dir = TempDir::new("edge");
    let input = dir.join("e.safetensors");
    // One row of 1000 with stored entries at 0, -0.0 at 5, a NaN at 300, then 700 and 999:
    // the gaps of 294, 399 and 298 zeros each need one filler. Plus an f16 1-D tensor and an
    // empty one.
    let mut row = vec![0.0f32; 1000];
    row[0] = 1.5;
    row[5] = -0.0;
    row[300] = f32::from_bits(0x7FC0_1234);
    row[700] = -2.0;
    row[999] = 3.0;
    let w = Tensor::from_slice(&row).reshape([1, 1000]);
    let h = Tensor::from_slice(&[0.0f32, -0.0, 1.0, 0.0]).to_kind(Kind::Half);
    let e = Tensor::zeros([0, 4], (Kind::Float, tch::Device::Cpu));
    Tensor::write_safetensors(&[("w", &w), ("h", &h), ("e", &e)], &input)?;
    let ckpt = Checkpoint::open(&input)?;
    for format in [Format::Bitmask, Format::Csr] {
        let packed = dir.join(&format!("{format:?}.safetensors"));
        compress(&ckpt, &packed, &Selection::new().ranks(0, None), format, &NoProgress)?;
        let back = dir.join(&format!("{format:?}-back.safetensors"));
        densify(&Checkpoint::open(&packed)?, &back, &NoProgress)?;
        assert_same_bits(&input, &back);
        let r = report(&Checkpoint::open(&packed)?, &NoProgress)?;
        let w_report = r.tensors.iter().find(|t| t.name == "w").unwrap();
        assert_eq!(w_report.zeros, 1000 - 5, "-0.0 and NaN are stored");
        if format == Format::Csr {
            // 5 stored values + 3 fillers: 8 x (4 + 1) B, row_ptr 2 x 8, shape 2 x 8.
            assert_eq!(w_report.bytes_on_disk, 8 * 5 + 16 + 16);
        }
    }
    Ok(())
}
