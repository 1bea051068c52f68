//! Compressed, lossless storage of sparse tensors inside safetensors files, and the shard
//! writer that sizes and writes them.
//!
//! A compressed tensor `W` of dtype `D` and shape `S` becomes four entries. Rows are the
//! slices along the first dimension (`R = S[0]`, `C = numel / R`; a 0-d or 1-D tensor is one
//! row). An entry is stored when its bits are not all zero, so `-0.0` and NaN payloads
//! round-trip bit for bit and only `+0.0` is dropped.
//!
//! | format | entries |
//! |---|---|
//! | [`Format::Bitmask`] (compressed-tensors' `sparse-bitmask`) | `W.compressed` (`D`, the stored values in row-major order), `W.bitmask` (`U8`, `[R, ceil(C/8)]`, bit `c % 8` of byte `c / 8` set when column `c` is stored: numpy's `packbits(bitorder="little")`), `W.row_offsets` (`I64`, `[R]`, index in `compressed` of each row's first value), `W.shape` (`I64`, `S`) |
//! | [`Format::Csr`] (relative indices, as Deep Compression) | `W.values` (`D`), `W.gaps` (`U8`: zeros skipped since the previous stored entry of the row, at most 255; a longer run stores an explicit `+0.0` "filler" after 255 zeros), `W.row_ptr` (`I64`, `[R + 1]`), `W.shape` (`I64`, `S`) |

pub(crate) mod bitmask;
pub(crate) mod csr;
mod rows;

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::Dtype;
use serde::{Deserialize, Serialize};

use super::dtype::Float;
use super::error::{io_error, OfflineResult};
use super::header::{encode_header, TensorInfo};
use super::shard::{Ctx, PlanEntry, ShardOut};
use super::write::{RegionWriter, Staged};

/// How the output stores the selected tensors.
///
/// ```
/// use tch_prune::offline::Format;
/// assert_eq!("bitmask".parse::<Format>().unwrap(), Format::Bitmask);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Dense, with zeros: a drop-in checkpoint.
    Dense,
    /// compressed-tensors' bitmask layout.
    Bitmask,
    /// CSR with 8-bit relative indices.
    Csr,
    /// Per tensor, whichever of dense, bitmask and CSR is smallest.
    Auto,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dense" => Ok(Self::Dense),
            "bitmask" => Ok(Self::Bitmask),
            "csr" => Ok(Self::Csr),
            "auto" => Ok(Self::Auto),
            _ => Err(format!("unknown format {s:?}; expected dense, bitmask, csr or auto")),
        }
    }
}

/// The encoding chosen for one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Dense,
    Bitmask,
    Csr,
}

/// Rows and columns of the compressed layout.
pub(crate) fn rows_cols(shape: &[usize]) -> (usize, usize) {
    let numel: usize = shape.iter().product();
    let rows = if shape.len() >= 2 { shape[0] } else { 1 };
    (rows, numel.checked_div(rows).unwrap_or(0))
}

/// What the counting pass learns about a tensor.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) nnz: u64,
    pub(crate) csr_stored: u64,
}

/// One output entry: name, dtype, shape, bytes.
type Entry = (String, Dtype, Vec<usize>, u64);

/// The output entries of `info` under `encoding`.
fn entries(info: &TensorInfo, encoding: Encoding, counts: Counts) -> Vec<Entry> {
    let b = Dtype::bitsize(&info.dtype) as u64 / 8;
    let (r, c) = rows_cols(&info.shape);
    let shape = (
        format!("{}.shape", info.name),
        Dtype::I64,
        vec![info.shape.len()],
        8 * info.shape.len() as u64,
    );
    match encoding {
        Encoding::Dense => vec![(info.name.clone(), info.dtype, info.shape.clone(), info.len)],
        Encoding::Bitmask => vec![
            (
                format!("{}.compressed", info.name),
                info.dtype,
                vec![counts.nnz as usize],
                counts.nnz * b,
            ),
            (
                format!("{}.bitmask", info.name),
                Dtype::U8,
                vec![r, c.div_ceil(8)],
                (r * c.div_ceil(8)) as u64,
            ),
            (format!("{}.row_offsets", info.name), Dtype::I64, vec![r], 8 * r as u64),
            shape,
        ],
        Encoding::Csr => vec![
            (
                format!("{}.values", info.name),
                info.dtype,
                vec![counts.csr_stored as usize],
                counts.csr_stored * b,
            ),
            (
                format!("{}.gaps", info.name),
                Dtype::U8,
                vec![counts.csr_stored as usize],
                counts.csr_stored,
            ),
            (format!("{}.row_ptr", info.name), Dtype::I64, vec![r + 1], 8 * (r as u64 + 1)),
            shape,
        ],
    }
}

fn size(info: &TensorInfo, encoding: Encoding, counts: Counts) -> u64 {
    entries(info, encoding, counts).iter().map(|e| e.3).sum()
}

/// Writes one shard with the selected tensors compressed: a counting pass over them sizes
/// every entry, then the header, then one pass writes all the regions.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_compressed_shard(
    staged: &mut Staged,
    target: &Path,
    shard: usize,
    plan: &[PlanEntry<'_>],
    metadata: &BTreeMap<String, String>,
    format: Format,
    ctx: &mut Ctx<'_>,
    pruned: &mut [u64],
) -> OfflineResult<ShardOut> {
    let mut chosen = Vec::with_capacity(plan.len());
    for (info, rule, _) in plan {
        let Some((_, float)) = rule else {
            chosen.push((Encoding::Dense, Counts::default()));
            continue;
        };
        let (size_b, (_, c)) = (float.size(), rows_cols(&info.shape));
        let mut bm = bitmask::Encoder::new(size_b, c);
        let mut cs = csr::Encoder::new(size_b, c);
        ctx.stream(shard, info, *rule, 0, |_, bytes| {
            bm.feed(bytes, None)?;
            cs.feed(bytes, None)?;
            Ok(())
        })?;
        let counts = Counts { nnz: bm.nnz(), csr_stored: cs.stored() };
        let encoding = match format {
            Format::Bitmask => Encoding::Bitmask,
            Format::Csr => Encoding::Csr,
            _ => [Encoding::Dense, Encoding::Bitmask, Encoding::Csr]
                .into_iter()
                .min_by_key(|e| size(info, *e, counts))
                .unwrap_or(Encoding::Dense),
        };
        chosen.push((encoding, counts));
    }
    let layout: Vec<Entry> =
        plan.iter().zip(&chosen).flat_map(|((info, _, _), (e, c))| entries(info, *e, *c)).collect();
    let header = encode_header(&layout, metadata)?;
    let file = staged.create(target)?;
    let mut head = RegionWriter::new(&file, target, 0);
    head.put(&header)?;
    head.flush()?;
    let mut pos = header.len() as u64;
    for (k, ((info, rule, _), (encoding, _))) in plan.iter().zip(&chosen).enumerate() {
        let sizes: Vec<u64> = entries(info, *encoding, chosen[k].1).iter().map(|e| e.3).collect();
        let mut regions: Vec<RegionWriter<'_>> = Vec::with_capacity(sizes.len());
        for s in &sizes {
            regions.push(RegionWriter::new(&file, target, pos));
            pos += s;
        }
        let float = rule.map(|(_, f)| f).or_else(|| Float::of(info.dtype));
        let (rows, cols) = rows_cols(&info.shape);
        let progress = ctx.progress;
        match encoding {
            Encoding::Dense => {
                pruned[k] = ctx.stream(shard, info, *rule, 1, |_, bytes| {
                    progress.advance(bytes.len() as u64);
                    regions[0].put(bytes)
                })?;
            }
            Encoding::Bitmask | Encoding::Csr => {
                let size_b = float.map_or(1, Float::size);
                let mut bm = bitmask::Encoder::new(size_b, cols);
                let mut cs = csr::Encoder::new(size_b, cols);
                let bitmask = *encoding == Encoding::Bitmask;
                pruned[k] = ctx.stream(shard, info, *rule, 1, |_, bytes| {
                    progress.advance(bytes.len() as u64);
                    if bitmask {
                        bm.feed(bytes, Some(&mut regions[..3]))
                    } else {
                        cs.feed(bytes, Some(&mut regions[..3]))
                    }
                })?;
                if bitmask {
                    bm.finish(rows, &mut regions[..3])?;
                } else {
                    cs.finish(rows, &mut regions[..3])?;
                }
                let shape: Vec<u8> =
                    info.shape.iter().flat_map(|&d| (d as i64).to_le_bytes()).collect();
                regions[3].put(&shape)?;
            }
        }
        for r in &mut regions {
            r.flush()?;
        }
    }
    file.sync_data().map_err(io_error("sync", target))?;
    Ok(ShardOut {
        names: layout.iter().map(|e| e.0.clone()).collect(),
        data_bytes: pos - header.len() as u64,
    })
}

/// A compressed tensor found in a file: its parts and sequential readers over them
/// (`[values, bitmask or gaps, row_offsets or row_ptr]`).
pub(crate) struct Group<'a> {
    pub(crate) name: String,
    pub(crate) path: &'a Path,
    pub(crate) encoding: Encoding,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) size: usize,
    pub(crate) parts: [&'a TensorInfo; 3],
    pub(crate) readers: Vec<std::io::BufReader<std::io::Take<std::fs::File>>>,
}

impl Group<'_> {
    /// Decodes the whole tensor, calling `sink` with its dense bytes in order.
    pub(crate) fn decode(
        &mut self,
        sink: impl FnMut(&[u8]) -> OfflineResult<()>,
    ) -> OfflineResult<()> {
        match self.encoding {
            Encoding::Bitmask => bitmask::decode(self, sink),
            _ => csr::decode(self, sink),
        }
    }
}

/// The compressed tensors among `tensors` (by their original names), in the order of their
/// first part; other tensors are plain. Checks that each group's parts agree.
pub(crate) fn find_groups<'a>(
    path: &'a Path,
    tensors: &'a [TensorInfo],
) -> OfflineResult<Vec<Item<'a>>> {
    use std::collections::HashMap;
    use std::io::{Seek, SeekFrom};
    let by_name: HashMap<&str, &TensorInfo> =
        tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let find = |base: &str, suffixes: [&str; 4]| -> Option<[&'a TensorInfo; 4]> {
        let parts: Option<Vec<&TensorInfo>> =
            suffixes.iter().map(|s| by_name.get(format!("{base}.{s}").as_str()).copied()).collect();
        parts.map(|p| [p[0], p[1], p[2], p[3]])
    };
    let mut items = Vec::new();
    let mut taken = std::collections::HashSet::new();
    for t in tensors {
        if taken.contains(t.name.as_str()) {
            continue;
        }
        let mut found = None;
        for (suffix, encoding, names) in [
            ("compressed", Encoding::Bitmask, ["compressed", "bitmask", "row_offsets", "shape"]),
            ("values", Encoding::Csr, ["values", "gaps", "row_ptr", "shape"]),
        ] {
            if let Some(base) = t.name.strip_suffix(&format!(".{suffix}")) {
                if let Some(parts) = find(base, names) {
                    found = Some((base.to_string(), encoding, parts));
                }
            }
        }
        let Some((name, encoding, parts)) = found else {
            if !tensors.iter().any(|o| o.name != t.name && is_part_of(&o.name, &t.name)) {
                items.push(Item::Plain(t));
            }
            continue;
        };
        let bad = |reason: String| super::error::OfflineError::Compressed {
            file: path.to_path_buf(),
            tensor: name.clone(),
            reason,
        };
        if parts[3].dtype != Dtype::I64 || parts[3].shape.len() != 1 {
            return Err(bad(format!(
                "{}.shape is {} of shape {:?}, not a 1-D I64",
                name, parts[3].dtype, parts[3].shape
            )));
        }
        let mut raw = vec![0u8; parts[3].len as usize];
        let mut f = std::fs::File::open(path).map_err(io_error("open", path))?;
        f.seek(SeekFrom::Start(parts[3].start)).map_err(io_error("seek", path))?;
        std::io::Read::read_exact(&mut f, &mut raw).map_err(io_error("read", path))?;
        let shape: Vec<usize> = raw
            .chunks_exact(8)
            .map(|c| {
                i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]).max(0) as usize
            })
            .collect();
        let (rows, cols) = rows_cols(&shape);
        let dtype = parts[0].dtype;
        let size = dtype.bitsize() / 8;
        let expected = match encoding {
            Encoding::Bitmask => [vec![rows, cols.div_ceil(8)], vec![rows]],
            _ => [parts[0].shape.clone(), vec![rows + 1]],
        };
        if parts[1].shape != expected[0]
            || parts[2].shape != expected[1]
            || parts[1].dtype != Dtype::U8
            || parts[2].dtype != Dtype::I64
            || size == 0
            || parts[0].shape.len() != 1
        {
            return Err(bad(format!(
                "its parts do not fit shape {shape:?}: {:?}",
                parts.iter().map(|p| (&p.name, p.dtype, &p.shape)).collect::<Vec<_>>()
            )));
        }
        let mut readers = Vec::with_capacity(3);
        for p in &parts[..3] {
            let mut f = std::fs::File::open(path).map_err(io_error("open", path))?;
            f.seek(SeekFrom::Start(p.start)).map_err(io_error("seek", path))?;
            readers.push(std::io::BufReader::with_capacity(1 << 16, std::io::Read::take(f, p.len)));
        }
        parts.iter().for_each(|p| {
            taken.insert(p.name.as_str());
        });
        items.push(Item::Compressed(Box::new(Group {
            name,
            path,
            encoding,
            dtype,
            shape,
            rows,
            cols,
            size,
            parts: [parts[0], parts[1], parts[2]],
            readers,
        })));
    }
    Ok(items)
}

/// Whether `part` is a part name of a compressed tensor whose first part is `first`.
fn is_part_of(first: &str, part: &str) -> bool {
    for (lead, others) in [
        ("compressed", ["bitmask", "row_offsets", "shape"]),
        ("values", ["gaps", "row_ptr", "shape"]),
    ] {
        if let Some(base) = first.strip_suffix(&format!(".{lead}")) {
            if others.iter().any(|o| part == format!("{base}.{o}")) {
                return true;
            }
        }
    }
    false
}

/// A tensor of a compressed file: stored plain, or compressed.
pub(crate) enum Item<'a> {
    Plain(&'a TensorInfo),
    Compressed(Box<Group<'a>>),
}
