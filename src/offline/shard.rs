//! The shard writers' shared state ([`Ctx`]): one tensor streamed window by window through its
//! rule, and the dense shard writer built on it (the compressed one is in `formats/`).

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::dtype::Float;
use super::error::{io_error, OfflineResult};
use super::header::{encode_header, TensorInfo};
use super::progress::Progress;
use super::rules::{prune_window, Rule, Scratch};
use super::stream::{for_each_window, Files};
use super::threshold::CutState;
use super::write::Staged;

/// One tensor of a shard being written: its entry and, if selected, its rule and dtype.
pub(crate) type PlanEntry<'a> = (&'a TensorInfo, Option<(&'a Rule, Float)>, Option<usize>);

/// What a shard writer wrote: the tensor names and the bytes of tensor data.
pub(crate) struct ShardOut {
    pub(crate) names: Vec<String>,
    pub(crate) data_bytes: u64,
}

/// What the shard writers share.
pub(crate) struct Ctx<'a> {
    pub(crate) files: &'a Files,
    pub(crate) window: usize,
    /// The global cut's states: [0] for counting passes, [1] for the writing pass.
    pub(crate) global: [CutState; 2],
    pub(crate) scratch: Scratch,
    pub(crate) buf: Vec<u8>,
    pub(crate) progress: &'a dyn Progress,
}

impl Ctx<'_> {
    /// Streams `info`'s data, pruned by `rule` when given, window by window into `sink`; pass
    /// 0 is a counting pass, 1 the writing pass (each keeps its own global tie counter).
    pub(crate) fn stream(
        &mut self,
        shard: usize,
        info: &TensorInfo,
        rule: Option<(&Rule, Float)>,
        pass: usize,
        mut sink: impl FnMut(u64, &[u8]) -> OfflineResult<()>,
    ) -> OfflineResult<u64> {
        let (file, path) = &self.files.files[shard];
        let Some((rule, float)) = rule else {
            return for_each_window(file, path, info, 1, 1, self.window, |first, bytes| {
                sink(first, bytes)
            })
            .map(|_| 0);
        };
        let size = float.size();
        let mut own = rule.fresh_state();
        let mut pruned = 0;
        let (global, scratch, buf) = (&mut self.global[pass], &mut self.scratch, &mut self.buf);
        for_each_window(
            file,
            path,
            info,
            size,
            rule.align() * size,
            self.window,
            |first, bytes| {
                let state = if rule.is_global() { &mut *global } else { &mut own };
                pruned += prune_window(rule, float, first, bytes, buf, state, scratch);
                sink(first, buf)
            },
        )?;
        Ok(pruned)
    }
}

/// Writes one dense shard: the input's header with the settings added to the metadata, then
/// every tensor, pruned or copied. Returns the tensor names written.
pub(super) fn write_dense_shard(
    staged: &mut Staged,
    target: &Path,
    shard: usize,
    plan: &[PlanEntry<'_>],
    metadata: &BTreeMap<String, String>,
    ctx: &mut Ctx<'_>,
    pruned: &mut [u64],
) -> OfflineResult<ShardOut> {
    let layout: Vec<_> =
        plan.iter().map(|(i, _, _)| (i.name.clone(), i.dtype, i.shape.clone(), i.len)).collect();
    let header = encode_header(&layout, metadata)?;
    let file = staged.create(target)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&header).map_err(io_error("write", target))?;
    for (k, (info, rule, _)) in plan.iter().enumerate() {
        let progress = ctx.progress;
        pruned[k] = ctx.stream(shard, info, *rule, 1, |_, bytes| {
            progress.advance(bytes.len() as u64);
            w.write_all(bytes).map_err(io_error("write", target))
        })?;
    }
    w.flush().map_err(io_error("write", target))?;
    let names = plan.iter().map(|(i, _, _)| i.name.clone()).collect();
    Ok(ShardOut { names, data_bytes: plan.iter().map(|(i, _, _)| i.len).sum() })
}
