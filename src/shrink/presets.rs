//! Ready-made coupling declarations for the common shapes: chains of Linear/Conv layers,
//! Conv → BatchNorm → Conv, Conv → flatten → Linear, residual stages, FFN blocks, attention
//! heads, GroupNorm, and whole torchvision-named ResNets.
//!
//! Layers are named by their `VarStore` path (`"layer1.0.conv1"`); each function returns a
//! [`ChannelGroup`] you can extend (`.dim(...)`, `.member(...)`) before putting it in a
//! [`Coupling`](crate::Coupling).
//!
//! ```
//! use tch::{nn, Device};
//! use tch_prune::{presets, Coupling};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let net = tch::vision::resnet::resnet18(&vs.root(), 10);
//! let coupling = Coupling::new(presets::resnet_basic("", [2, 2, 2, 2], true))?;
//! assert_eq!(coupling.groups().len(), 12); // 4 residual streams + one per block
//! assert_eq!(coupling.units(&vs)?[0], ("stream.layer1".to_string(), 64));
//! # drop(net);
//! # Ok::<(), tch_prune::PruneError>(())
//! ```

use super::group::{ChannelGroup, Member, Unit};

/// `producer` (a Linear with bias) feeding the input columns of every layer in `consumers`.
///
/// Torch-Pruning equivalent: the group of `prune_out_channels(producer)`.
pub fn linear_chain(name: &str, producer: &str, consumers: &[&str]) -> ChannelGroup {
    with_inputs(ChannelGroup::new(name).output_of(producer, true), consumers)
}

/// `producer` (a convolution, with or without `bias`) feeding the input channels of every
/// convolution in `consumers`.
pub fn conv_chain(name: &str, producer: &str, bias: bool, consumers: &[&str]) -> ChannelGroup {
    with_inputs(ChannelGroup::new(name).output_of(producer, bias), consumers)
}

/// Conv → BatchNorm → (activation) → every layer in `consumers`: the convolution's output
/// rows (and bias), the BatchNorm's `weight`, `bias`, `running_mean`, `running_var`, the
/// consumers' input columns.
pub fn conv_bn_chain(
    name: &str,
    conv: &str,
    bias: bool,
    bn: &str,
    consumers: &[&str],
) -> ChannelGroup {
    with_inputs(ChannelGroup::new(name).output_of(conv, bias).batch_norm(bn), consumers)
}

/// Conv (→ BatchNorm) → flatten → Linear: each channel owns `positions` (`H·W` of the
/// convolution's output) consecutive inputs of `linear`.
///
/// PyTorch equivalent: `torch.ao`'s `prune_conv2d_pool_flatten_linear` pattern.
pub fn conv_flatten_linear(
    name: &str,
    conv: &str,
    bias: bool,
    bn: Option<&str>,
    linear: &str,
    positions: i64,
) -> ChannelGroup {
    let group = ChannelGroup::new(name).output_of(conv, bias);
    let group = match bn {
        Some(bn) => group.batch_norm(bn),
        None => group,
    };
    group.member(Member::new(format!("{linear}.weight"), 1).blocks(positions))
}

/// One residual stream: every convolution summed into it (each block's last conv and its
/// BatchNorm, the stem, the downsample conv and its BatchNorm, as `(conv, bn)` pairs without
/// bias) shares the channel index, and every layer reading the stream (`consumers`) loses the
/// same input columns.
pub fn residual_stream(name: &str, producers: &[(&str, &str)], consumers: &[&str]) -> ChannelGroup {
    let group = producers
        .iter()
        .fold(ChannelGroup::new(name), |g, (conv, bn)| g.output_of(conv, false).batch_norm(bn));
    with_inputs(group, consumers)
}

/// A feed-forward block `output(act(intermediate(x)))` of two Linear layers with bias: the
/// intermediate width (BERT's `intermediate_size`).
pub fn ffn(name: &str, intermediate: &str, output: &str) -> ChannelGroup {
    linear_chain(name, intermediate, &[output])
}

/// Multi-head attention by whole heads: rows `h·head_dim .. (h+1)·head_dim` of the query, key
/// and value projections (weights and biases) and the same columns of the output projection.
/// The units are heads; the model's head count must follow (see the manifest).
pub fn attention_heads(
    name: &str,
    [query, key, value]: [&str; 3],
    output: &str,
    head_dim: i64,
) -> ChannelGroup {
    let group = [query, key, value].iter().fold(ChannelGroup::new(name), |g, layer| {
        g.member(Member::new(format!("{layer}.weight"), 0).blocks(head_dim))
            .member(Member::new(format!("{layer}.bias"), 0).blocks(head_dim))
    });
    group.member(Member::new(format!("{output}.weight"), 1).blocks(head_dim)).unit(Unit::Heads)
}

/// Conv → GroupNorm → every convolution in `consumers`, by whole normalisation groups of
/// `channels_per_group` channels, so that the channel count stays divisible by the group
/// count; shrinking lowers the `GroupNorm`'s `num_groups` (tch's field is public).
pub fn group_norm(
    name: &str,
    conv: &str,
    bias: bool,
    norm: &str,
    channels_per_group: i64,
    consumers: &[&str],
) -> ChannelGroup {
    let c = channels_per_group;
    let mut group =
        ChannelGroup::new(name).member(Member::new(format!("{conv}.weight"), 0).blocks(c));
    if bias {
        group = group.member(Member::new(format!("{conv}.bias"), 0).blocks(c));
    }
    group = group
        .member(Member::new(format!("{norm}.weight"), 0).blocks(c))
        .member(Member::new(format!("{norm}.bias"), 0).blocks(c));
    consumers
        .iter()
        .fold(group, |g, layer| g.member(Member::new(format!("{layer}.weight"), 1).blocks(c)))
        .unit(Unit::NormGroups)
}

/// Every group of a ResNet with basic blocks and torchvision's names (`conv1`, `bn1`,
/// `layer1.0.conv1`, ..., `layer2.0.downsample.0`, `fc`), as built by
/// `tch::vision::resnet::resnet18` / `resnet34` (`blocks` = `[2, 2, 2, 2]` / `[3, 4, 6, 3]`)
/// under `prefix` (`""` at the root): one residual stream per stage (named
/// `stream.layer<s>`; the first includes the stem) and one group per block for its inner
/// channels (`layer<s>.<b>.conv1`). `fc`: whether the model ends with the `fc` layer.
pub fn resnet_basic(prefix: &str, blocks: [usize; 4], fc: bool) -> Vec<ChannelGroup> {
    let p =
        |name: &str| if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
    let mut groups = Vec::new();
    for (s, &count) in blocks.iter().enumerate() {
        let stage = format!("layer{}", s + 1);
        let mut producers: Vec<(String, String)> = Vec::new();
        if s == 0 {
            producers.push((p("conv1"), p("bn1")));
        } else {
            producers.push((
                p(&format!("{stage}.0.downsample.0")),
                p(&format!("{stage}.0.downsample.1")),
            ));
        }
        let mut consumers: Vec<String> = Vec::new();
        for b in 0..count {
            let block = format!("{stage}.{b}");
            producers.push((p(&format!("{block}.conv2")), p(&format!("{block}.bn2"))));
            if b > 0 || s == 0 {
                consumers.push(p(&format!("{block}.conv1")));
            }
            groups.push(conv_bn_chain(
                &p(&format!("{block}.conv1")),
                &p(&format!("{block}.conv1")),
                false,
                &p(&format!("{block}.bn1")),
                &[&p(&format!("{block}.conv2"))],
            ));
        }
        if s < 3 {
            let next = format!("layer{}.0", s + 2);
            consumers.push(p(&format!("{next}.conv1")));
            consumers.push(p(&format!("{next}.downsample.0")));
        } else if fc {
            consumers.push(p("fc"));
        }
        let producers: Vec<(&str, &str)> =
            producers.iter().map(|(c, b)| (c.as_str(), b.as_str())).collect();
        let consumers: Vec<&str> = consumers.iter().map(String::as_str).collect();
        groups.push(residual_stream(&p(&format!("stream.{stage}")), &producers, &consumers));
    }
    // Streams first (they span stages), then the blocks, in model order.
    groups.sort_by_key(|g| !g.name().contains("stream."));
    groups
}

/// Output positions per sample of each convolution and of `fc` in a torchvision-named ResNet
/// (stem `conv1` 7x7 stride 2, max-pool stride 2, stages 2 to 4 halving the size) for an
/// input of `height` x `width`: the `positions` argument of
/// [`ModelStats::with_macs`](crate::ModelStats::with_macs). Layer names are relative to the
/// model (strip your prefix first); other layers get `None`.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::{presets, ModelStats};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let _net = tch::vision::resnet::resnet18(&vs.root(), 1000);
/// let stats = ModelStats::of(&vs).with_macs(presets::resnet_positions(224, 224));
/// assert_eq!(stats.macs(), 1_814_073_344); // torchvision's resnet18: 1.81 GMACs
/// assert_eq!(stats.params(), 11_689_512);
/// ```
pub fn resnet_positions(height: i64, width: i64) -> impl Fn(&str) -> Option<i64> {
    let down = |n: i64| (n - 1) / 2 + 1; // 3x3 pad 1 or 1x1 pad 0, stride 2; also 7x7 pad 3
    let stem = (down(height), down(width));
    let mut stages = [(down(stem.0), down(stem.1)); 4];
    for s in 1..4 {
        stages[s] = (down(stages[s - 1].0), down(stages[s - 1].1));
    }
    move |layer: &str| {
        if layer == "conv1" {
            return Some(stem.0 * stem.1);
        }
        if layer == "fc" {
            return Some(1);
        }
        let stage: usize = layer.strip_prefix("layer")?.get(..1)?.parse().ok()?;
        let (h, w) = stages.get(stage.checked_sub(1)?)?;
        let conv = layer.ends_with("conv1")
            || layer.ends_with("conv2")
            || layer.ends_with("conv3")
            || layer.ends_with("downsample.0");
        conv.then_some(h * w)
    }
}

fn with_inputs(group: ChannelGroup, consumers: &[&str]) -> ChannelGroup {
    consumers.iter().fold(group, |g, layer| g.input_of(layer))
}
