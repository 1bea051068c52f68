//! [`densify`] and [`load_compressed`]: compressed checkpoints back to dense, on disk (bit for
//! bit the tensors that were compressed) or straight into tch tensors.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;

use tch::{Kind, Tensor};

use super::checkpoint::{Checkpoint, INDEX_NAME};
use super::error::{io_error, OfflineError, OfflineResult};
use super::formats::{find_groups, Item};
use super::header::encode_header;
use super::progress::Progress;
use super::stream::{for_each_window, DEFAULT_WINDOW_BYTES};
use super::write::{output_layout, Staged};

/// Writes the dense form of a checkpoint whose tensors may be stored compressed (bitmask or
/// CSR, as written by [`prune`](super::prune) or [`compress`](super::compress)): every
/// compressed tensor becomes its original name, dtype, shape and bytes again; other tensors
/// are copied. Same shard layout, index rewritten to the dense names; metadata kept.
///
/// # Errors
/// Bad input ([`OfflineError::Compressed`] for parts that do not agree), an output that is the
/// input, I/O errors. Nothing is written on error.
///
/// ```
/// use tch::{kind::FLOAT_CPU, Tensor};
/// use tch_prune::offline::{compress, densify, Checkpoint, Format, NoProgress, Selection};
///
/// let dir = std::env::temp_dir().join(format!("tch-prune-doc-densify-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let w = Tensor::from_slice(&[0.0f32, 2.0, 0.0, -0.0, 5.0, 0.0]).reshape([3, 2]);
/// Tensor::write_safetensors(&[("w", &w)], dir.join("in.safetensors"))?;
/// compress(&Checkpoint::open(dir.join("in.safetensors"))?, dir.join("c.safetensors"), &Selection::new(), Format::Csr, &NoProgress)?;
/// densify(&Checkpoint::open(dir.join("c.safetensors"))?, dir.join("d.safetensors"), &NoProgress)?;
/// let back = Tensor::read_safetensors(dir.join("d.safetensors"))?;
/// assert!(back[0].1.equal(&w));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn densify(
    input: &Checkpoint,
    output: impl AsRef<Path>,
    progress: &dyn Progress,
) -> OfflineResult<Vec<std::path::PathBuf>> {
    let (dir, targets) = output_layout(input, output.as_ref())?;
    let mut staged = Staged::default();
    staged.ensure_dir(&dir)?;
    let mut weight_map = BTreeMap::new();
    let mut total = 0u64;
    progress.start("densify", input.data_bytes());
    for (shard, target) in input.shards().iter().zip(&targets) {
        let mut items = find_groups(&shard.path, &shard.tensors)?;
        let layout: Vec<_> = items
            .iter()
            .map(|item| match item {
                Item::Plain(t) => (t.name.clone(), t.dtype, t.shape.clone(), t.len),
                Item::Compressed(g) => {
                    let len = g.shape.iter().product::<usize>() as u64 * g.size as u64;
                    (g.name.clone(), g.dtype, g.shape.clone(), len)
                }
            })
            .collect();
        total += layout.iter().map(|l| l.3).sum::<u64>();
        weight_map.extend(layout.iter().map(|l| (l.0.clone(), shard.file_name())));
        let header = encode_header(&layout, &shard.metadata)?;
        let file = staged.create(target)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(&header).map_err(io_error("write", target))?;
        let src = std::fs::File::open(&shard.path).map_err(io_error("open", &shard.path))?;
        for item in &mut items {
            match item {
                Item::Plain(t) => for_each_window(
                    &src,
                    &shard.path,
                    t,
                    1,
                    1,
                    DEFAULT_WINDOW_BYTES,
                    |_, bytes| {
                        progress.advance(bytes.len() as u64);
                        w.write_all(bytes).map_err(io_error("write", target))
                    },
                )?,
                Item::Compressed(g) => {
                    progress.advance(g.parts.iter().map(|p| p.len).sum());
                    g.decode(|bytes| w.write_all(bytes).map_err(io_error("write", target)))?
                }
            }
        }
        w.flush().map_err(io_error("write", target))?;
    }
    progress.finish();
    if let Some((_, json)) = input.index() {
        let mut json = json.clone();
        json["weight_map"] = serde_json::to_value(&weight_map).unwrap_or_default();
        json["metadata"]["total_size"] = total.into();
        let text = serde_json::to_string_pretty(&json).map_err(|e| {
            OfflineError::InvalidArgument { parameter: "index", reason: e.to_string() }
        })?;
        staged.write_all(&dir.join(INDEX_NAME), text.as_bytes())?;
    }
    staged.commit()
}

/// Loads every tensor of a checkpoint (single file or sharded, compressed or not) into tch
/// tensors, decompressing bitmask and CSR tensors on the way: `(name, tensor)` in checkpoint
/// order. Only dtypes tch knows are loaded (f16, bf16, f32, f64, the integer types, bool).
///
/// # Errors
/// As [`densify`], plus [`OfflineError::Unsupported`] for a dtype tch has no kind for.
///
/// ```
/// use tch::{kind::FLOAT_CPU, Tensor};
/// use tch_prune::offline::{compress, load_compressed, Checkpoint, Format, NoProgress, Selection};
///
/// let dir = std::env::temp_dir().join(format!("tch-prune-doc-load-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let w = Tensor::from_slice(&[0.0f32, 2.0, 0.0, 0.0]).reshape([2, 2]);
/// Tensor::write_safetensors(&[("w", &w)], dir.join("in.safetensors"))?;
/// compress(&Checkpoint::open(dir.join("in.safetensors"))?, dir.join("c.safetensors"), &Selection::new(), Format::Bitmask, &NoProgress)?;
/// let tensors = load_compressed(&Checkpoint::open(dir.join("c.safetensors"))?)?;
/// assert_eq!(tensors[0].0, "w");
/// assert!(tensors[0].1.equal(&w));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_compressed(input: &Checkpoint) -> OfflineResult<Vec<(String, Tensor)>> {
    let mut out = Vec::new();
    for shard in input.shards() {
        let src = std::fs::File::open(&shard.path).map_err(io_error("open", &shard.path))?;
        for item in &mut find_groups(&shard.path, &shard.tensors)? {
            let (name, dtype, shape, mut bytes) = match item {
                Item::Plain(t) => {
                    (t.name.clone(), t.dtype, t.shape.clone(), Vec::with_capacity(t.len as usize))
                }
                Item::Compressed(g) => (g.name.clone(), g.dtype, g.shape.clone(), Vec::new()),
            };
            let kind = kind_of(dtype).ok_or_else(|| OfflineError::Unsupported {
                file: shard.path.clone(),
                tensor: name.clone(),
                reason: format!("tch has no kind for dtype {dtype}"),
            })?;
            match item {
                Item::Plain(t) => {
                    for_each_window(&src, &shard.path, t, 1, 1, DEFAULT_WINDOW_BYTES, |_, b| {
                        bytes.extend_from_slice(b);
                        Ok(())
                    })?
                }
                Item::Compressed(g) => g.decode(|b| {
                    bytes.extend_from_slice(b);
                    Ok(())
                })?,
            }
            let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            out.push((name, Tensor::f_from_data_size(&bytes, &dims, kind)?));
        }
    }
    Ok(out)
}

/// tch's kind for a safetensors dtype.
fn kind_of(dtype: safetensors::Dtype) -> Option<Kind> {
    use safetensors::Dtype as D;
    Some(match dtype {
        D::BOOL => Kind::Bool,
        D::U8 => Kind::Uint8,
        D::I8 => Kind::Int8,
        D::I16 => Kind::Int16,
        D::I32 => Kind::Int,
        D::I64 => Kind::Int64,
        D::F16 => Kind::Half,
        D::BF16 => Kind::BFloat16,
        D::F32 => Kind::Float,
        D::F64 => Kind::Double,
        _ => return None,
    })
}
