//! One safetensors file's header: parsed and validated against the file, and written back.
//!
//! A file is an 8-byte little-endian header length `n`, `n` bytes of JSON (`dtype`, `shape`,
//! `data_offsets` per tensor, an optional `__metadata__` map of strings), then the data. The
//! validation is the `safetensors` crate's (offsets contiguous from 0 in file order, each
//! tensor's byte size equal to its shape times its dtype size, the data ending exactly at the
//! end of the file), redone here so that each error names the tensor at fault.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use safetensors::Dtype;
use serde_json::Value;

use super::error::{io_error, OfflineError, OfflineResult};

/// The safetensors crate's limit on header size (100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// One tensor's entry in a file.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("tch-prune-doc-info-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("m.safetensors");
/// # tch::Tensor::write_safetensors(&[("w", &tch::Tensor::ones([2, 3], tch::kind::FLOAT_CPU))], &path)?;
/// let ckpt = tch_prune::offline::Checkpoint::open(&path)?;
/// let (_, info) = ckpt.tensors().next().unwrap();
/// assert_eq!((info.numel(), info.len), (6, 24));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Its name.
    pub name: String,
    /// Its dtype.
    pub dtype: Dtype,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Offset of its first byte from the start of the **file**.
    pub start: u64,
    /// Its size in bytes.
    pub len: u64,
}

impl TensorInfo {
    /// Number of elements (see the type's example).
    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

/// A parsed header: the tensors in data order and the metadata.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub(crate) tensors: Vec<TensorInfo>,
    pub(crate) metadata: BTreeMap<String, String>,
}

/// Reads and validates the header of the safetensors file at `path`.
pub(crate) fn read_header(path: &Path) -> OfflineResult<Header> {
    let bad = |tensor: Option<&str>, reason: String| OfflineError::Header {
        file: path.to_path_buf(),
        tensor: tensor.map(str::to_string),
        reason,
    };
    let mut file = File::open(path).map_err(io_error("open", path))?;
    let file_len = file.metadata().map_err(io_error("stat", path))?.len();
    if file_len < 8 {
        return Err(bad(
            None,
            format!("the file has {file_len} bytes, fewer than the 8 of the length prefix"),
        ));
    }
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix).map_err(io_error("read", path))?;
    let n = u64::from_le_bytes(prefix);
    if n > MAX_HEADER {
        return Err(bad(
            None,
            format!("header length {n} exceeds the limit of {MAX_HEADER} bytes"),
        ));
    }
    if 8 + n > file_len {
        return Err(bad(
            None,
            format!("header length {n} runs past the end of the {file_len}-byte file"),
        ));
    }
    let mut json = vec![0u8; n as usize];
    file.read_exact(&mut json).map_err(io_error("read", path))?;
    let map: serde_json::Map<String, Value> = serde_json::from_slice(&json)
        .map_err(|e| bad(None, format!("the header is not a JSON object: {e}")))?;
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::with_capacity(map.len());
    for (name, entry) in map {
        if name == "__metadata__" {
            let Value::Object(meta) = entry else {
                return Err(bad(None, "__metadata__ is not an object".into()));
            };
            for (k, v) in meta {
                let Value::String(v) = v else {
                    return Err(bad(None, format!("__metadata__ value of {k:?} is not a string")));
                };
                metadata.insert(k, v);
            }
            continue;
        }
        let tensor = parse_entry(path, &name, &entry)?;
        tensors.push((tensor, name));
    }
    let data_start = 8 + n;
    tensors.sort_by_key(|(t, _)| (t.0, t.1));
    let mut expected_start = 0u64;
    let mut infos = Vec::with_capacity(tensors.len());
    for ((begin, end, dtype, shape), name) in tensors {
        if begin != expected_start {
            let why = if begin < expected_start {
                "overlaps the previous tensor"
            } else {
                "leaves a gap after the previous tensor"
            };
            return Err(bad(
                Some(&name),
                format!("data_offsets [{begin}, {end}] {why} (expected start {expected_start})"),
            ));
        }
        if end < begin {
            return Err(bad(
                Some(&name),
                format!("data_offsets [{begin}, {end}] end before they start"),
            ));
        }
        let numel = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        let size =
            numel.and_then(|n| n.checked_mul(dtype.bitsize() as u64)).map(|bits| bits.div_ceil(8));
        if size != Some(end - begin) {
            return Err(bad(
                Some(&name),
                format!(
                    "{} bytes for shape {shape:?} of {dtype}, which needs {}",
                    end - begin,
                    size.map_or("more than 2^64".into(), |s| s.to_string())
                ),
            ));
        }
        let needed = data_start + end;
        if needed > file_len {
            return Err(OfflineError::Truncated {
                file: path.to_path_buf(),
                tensor: name,
                needed,
                actual: file_len,
            });
        }
        expected_start = end;
        infos.push(TensorInfo { name, dtype, shape, start: data_start + begin, len: end - begin });
    }
    if data_start + expected_start != file_len {
        return Err(bad(
            None,
            format!(
                "{} bytes follow the last tensor's data",
                file_len - data_start - expected_start
            ),
        ));
    }
    Ok(Header { tensors: infos, metadata })
}

/// `(begin, end, dtype, shape)` of one entry.
fn parse_entry(
    path: &Path,
    name: &str,
    entry: &Value,
) -> OfflineResult<(u64, u64, Dtype, Vec<usize>)> {
    let bad = |reason: String| OfflineError::Header {
        file: path.to_path_buf(),
        tensor: Some(name.to_string()),
        reason,
    };
    let dtype_str =
        entry.get("dtype").and_then(Value::as_str).ok_or_else(|| bad("no dtype string".into()))?;
    let dtype: Dtype =
        serde_json::from_value(Value::String(dtype_str.to_string())).map_err(|_| {
            OfflineError::UnknownDtype {
                file: path.to_path_buf(),
                tensor: name.to_string(),
                dtype: dtype_str.to_string(),
            }
        })?;
    let shape = entry
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|dims| {
            dims.iter().map(|d| d.as_u64().map(|d| d as usize)).collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| bad("shape is not a list of non-negative integers".into()))?;
    let offsets = entry
        .get("data_offsets")
        .and_then(Value::as_array)
        .and_then(|o| o.iter().map(Value::as_u64).collect::<Option<Vec<_>>>())
        .filter(|o| o.len() == 2)
        .ok_or_else(|| bad("data_offsets is not a pair of non-negative integers".into()))?;
    Ok((offsets[0], offsets[1], dtype, shape))
}

/// The name safetensors uses for `dtype` in headers (`"BF16"`).
pub(crate) fn dtype_name(dtype: Dtype) -> String {
    // `Dtype`'s Display is its header spelling.
    dtype.to_string()
}

/// A header as bytes (length prefix, JSON, spaces up to a multiple of 8), for tensors laid out
/// in the order given, each `(name, dtype, shape, byte length)`.
pub(crate) fn encode_header(
    tensors: &[(String, Dtype, Vec<usize>, u64)],
    metadata: &BTreeMap<String, String>,
) -> OfflineResult<Vec<u8>> {
    let mut json = String::from("{");
    if !metadata.is_empty() {
        json.push_str("\"__metadata__\":");
        json.push_str(&to_json(metadata)?);
    }
    let mut offset = 0u64;
    for (i, (name, dtype, shape, len)) in tensors.iter().enumerate() {
        if i > 0 || !metadata.is_empty() {
            json.push(',');
        }
        let entry = serde_json::json!({
            "dtype": dtype_name(*dtype),
            "shape": shape,
            "data_offsets": [offset, offset + len],
        });
        json.push_str(&to_json(name)?);
        json.push(':');
        json.push_str(&to_json(&entry)?);
        offset += len;
    }
    json.push('}');
    while (8 + json.len()) % 8 != 0 {
        json.push(' ');
    }
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    Ok(bytes)
}

fn to_json(v: &impl serde::Serialize) -> OfflineResult<String> {
    serde_json::to_string(v)
        .map_err(|e| OfflineError::InvalidArgument { parameter: "header", reason: e.to_string() })
}
