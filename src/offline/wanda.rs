//! Wanda's input-channel norms: read from a user-supplied safetensors file and checked.
//!
//! The file holds, for each weight to prune, the f32 vector `scaler_row` of Wanda's reference
//! code (`locuslab/wanda:lib/layerwrapper.py`): the mean over calibration tokens of
//! `‖X_j‖₂²` for input channel `j`, one value per column of the weight. It is looked up under
//! the weight's name (`model.layers.0.mlp.up_proj.weight`), then under that name without its
//! `.weight` suffix (the module name). Norms taken from the dense model approximate the
//! reference, which recomputes each layer's inputs through the already-pruned layers before.

use std::collections::HashMap;
use std::path::Path;

use safetensors::Dtype;

use super::error::{OfflineError, OfflineResult};
use super::header::{read_header, TensorInfo};
use super::stream::for_each_window;

/// `sqrt(norm)` per column for every tensor of `infos`, read from `norms`.
pub(crate) fn read_scales(
    norms: &Path,
    infos: &[&TensorInfo],
) -> OfflineResult<HashMap<String, Vec<f32>>> {
    let header = read_header(norms)?;
    let file = std::fs::File::open(norms).map_err(super::error::io_error("open", norms))?;
    let by_name: HashMap<&str, &TensorInfo> =
        header.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut scales = HashMap::new();
    for info in infos {
        let bad = |reason: String| OfflineError::Norms {
            file: norms.to_path_buf(),
            tensor: info.name.clone(),
            reason,
        };
        let module = info.name.strip_suffix(".weight");
        let entry = by_name
            .get(info.name.as_str())
            .or_else(|| module.and_then(|m| by_name.get(m)))
            .ok_or_else(|| {
                bad(format!(
                    "no entry named {:?}{}",
                    info.name,
                    module.map(|m| format!(" or {m:?}")).unwrap_or_default()
                ))
            })?;
        let cols = info.shape.last().copied().unwrap_or(1);
        if entry.dtype != Dtype::F32 || entry.shape != [cols] {
            return Err(bad(format!(
                "{:?} is {} of shape {:?}; expected F32 of shape [{cols}] (one value per input column of a weight of shape {:?})",
                entry.name, entry.dtype, entry.shape, info.shape
            )));
        }
        let mut scale = Vec::with_capacity(cols);
        for_each_window(&file, norms, entry, 4, 4, 1 << 20, |_, bytes| {
            scale.extend(
                bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            Ok(())
        })?;
        if let Some((j, v)) = scale.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < 0.0) {
            return Err(bad(format!("column {j} has norm {v}; norms must be finite and >= 0")));
        }
        scale.iter_mut().for_each(|v| *v = v.sqrt());
        scales.insert(info.name.clone(), scale);
    }
    Ok(scales)
}
