//! Physical channel removal: every kind of coupling shrinks in place (model struct, `VarStore`,
//! saved file), the shrunk model computes what the masked one computed, and bad declarations
//! or selections fail with the group and parameter named, changing nothing.

use tch::nn::{self, Module, ModuleT, VarStore};
use tch::{Device, Kind, Tensor};
use tch_prune::{
    presets, prunable, ChannelGroup, ChannelPruning, Coupling, Member, PruneError, PrunedModel,
    Pruner, Selection, Shrink, Unit,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CPU: Device = Device::Cpu;

fn values(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut out: Vec<_> = vs.variables().into_iter().map(|(n, t)| (n, t.copy())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn assert_unchanged(before: &[(String, Tensor)], vs: &VarStore) {
    let after = values(vs);
    assert_eq!(before.len(), after.len());
    for ((n1, t1), (n2, t2)) in before.iter().zip(&after) {
        assert_eq!(n1, n2);
        assert!(t1.equal(t2), "{n1} changed");
    }
}

#[derive(Debug)]
struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc3: nn::Linear,
}
prunable!(Mlp { fc1, fc2, fc3 });

impl Mlp {
    fn new(vs: &VarStore) -> Self {
        let r = vs.root();
        Self {
            fc1: nn::linear(&r / "fc1", 6, 16, Default::default()),
            fc2: nn::linear(&r / "fc2", 16, 12, Default::default()),
            fc3: nn::linear(&r / "fc3", 12, 3, Default::default()),
        }
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.fc1).relu().apply(&self.fc2).gelu("none").apply(&self.fc3)
    }
}

fn mlp_coupling() -> Coupling {
    Coupling::new(vec![
        presets::linear_chain("h1", "fc1", &["fc2"]),
        presets::ffn("h2", "fc2", "fc3"),
    ])
    .unwrap()
}

#[test]
fn a_linear_chain_shrinks_in_place_and_computes_the_masked_output() -> TestResult {
    tch::manual_seed(0);
    let vs = VarStore::new(CPU);
    let mut mlp = Mlp::new(&vs);
    let coupling = mlp_coupling();
    let selection = Selection::new().remove("h1", 16, [0, 3, 4, 9]).remove("h2", 12, [11]);
    // The masked reference, computed by hand: zero the removed rows, bias entries, columns.
    let x = Tensor::randn([5, 6], (Kind::Float, CPU));
    let masked = tch::no_grad(|| {
        let mut vs2 = VarStore::new(CPU);
        let mlp2 = Mlp::new(&vs2);
        vs2.copy(&vs).unwrap();
        let vars = vs2.variables();
        let rows = Tensor::from_slice(&[0i64, 3, 4, 9]);
        let _ = vars["fc1.weight"].shallow_clone().index_fill_(0, &rows, 0.0);
        let _ = vars["fc1.bias"].shallow_clone().index_fill_(0, &rows, 0.0);
        let _ = vars["fc2.weight"].shallow_clone().index_fill_(1, &rows, 0.0);
        let r2 = Tensor::from_slice(&[11i64]);
        let _ = vars["fc2.weight"].shallow_clone().index_fill_(0, &r2, 0.0);
        let _ = vars["fc2.bias"].shallow_clone().index_fill_(0, &r2, 0.0);
        let _ = vars["fc3.weight"].shallow_clone().index_fill_(1, &r2, 0.0);
        mlp2.forward(&x)
    });
    let report =
        Shrink::new(&coupling, &selection)
            .check_input(&[7, 6])
            .apply(&vs, &mut mlp, |m, x| m.forward(x))?;
    // The struct's fields and the VarStore hold the same, smaller tensors.
    assert_eq!(mlp.fc1.ws.size(), [12, 6]);
    assert_eq!(mlp.fc1.bs.as_ref().unwrap().size(), [12]);
    assert_eq!(mlp.fc2.ws.size(), [11, 12]);
    assert_eq!(mlp.fc3.ws.size(), [3, 11]);
    assert_eq!(vs.variables()["fc2.weight"].size(), [11, 12]);
    assert_eq!(
        vs.trainable_variables().iter().map(|t| t.numel()).sum::<usize>(),
        12 * 6 + 12 + 11 * 12 + 11 + 3 * 11 + 3
    );
    assert!(vs.variables().values().all(|t| t.requires_grad() && t.kind() == Kind::Float));
    let y = tch::no_grad(|| mlp.forward(&x));
    assert!((&y - &masked).abs().max().double_value(&[]) < 1e-5);
    assert!(report.strict());
    assert!(report.max_diff() <= report.allowed());
    assert_eq!(report.manifest().groups["h1"].kept, [1, 2, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]);
    assert_eq!(report.manifest().layers["fc2"].out, 11);
    assert_eq!(report.manifest().layers["fc2"].input, Some(12));
    Ok(())
}

#[test]
fn the_shrunk_var_store_saves_and_loads_at_the_new_sizes_and_still_trains() -> TestResult {
    tch::manual_seed(1);
    let vs = VarStore::new(CPU);
    let mut mlp = Mlp::new(&vs);
    let coupling = mlp_coupling();
    let selection = ChannelPruning::local(0.5)?.select(&coupling, &vs)?;
    // A gradient accumulated before the shrink shrinks with its parameter.
    mlp.forward(&Tensor::ones([2, 6], (Kind::Float, CPU))).sum(Kind::Float).backward();
    Shrink::new(&coupling, &selection)
        .check_input(&[4, 6])
        .apply(&vs, &mut mlp, |m, x| m.forward(x))?;
    assert_eq!(mlp.fc1.ws.grad().size(), [8, 6]);
    let dir = std::env::temp_dir().join(format!("tch-prune-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("mlp.safetensors");
    vs.save(&path)?;
    let mut small = VarStore::new(CPU);
    let rebuilt = {
        let r = small.root();
        Mlp {
            fc1: nn::linear(&r / "fc1", 6, 8, Default::default()),
            fc2: nn::linear(&r / "fc2", 8, 6, Default::default()),
            fc3: nn::linear(&r / "fc3", 6, 3, Default::default()),
        }
    };
    small.load(&path)?;
    let x = Tensor::randn([3, 6], (Kind::Float, CPU));
    assert!(tch::no_grad(|| rebuilt.forward(&x).equal(&mlp.forward(&x))));
    std::fs::remove_dir_all(&dir)?;
    // A fresh optimizer trains the shrunk model.
    let mut opt = nn::OptimizerConfig::build(nn::Adam::default(), &vs, 1e-2)?;
    opt.zero_grad();
    for _ in 0..3 {
        let loss = mlp.forward(&x).square().mean(Kind::Float);
        opt.backward_step(&loss);
    }
    assert_eq!(mlp.fc2.ws.size(), [6, 8]);
    Ok(())
}

/// conv1 → bn1 → relu → conv2 → bn2 → relu → flatten → fc, 6x6 inputs with padding 1.
#[derive(Debug)]
struct Cnn {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    fc: nn::Linear,
}
prunable!(Cnn { conv1, bn1, conv2, bn2, fc });

impl Cnn {
    fn new(vs: &VarStore) -> Self {
        let r = vs.root();
        let c = nn::ConvConfig { padding: 1, ..Default::default() };
        Self {
            conv1: nn::conv2d(&r / "conv1", 2, 8, 3, c),
            bn1: nn::batch_norm2d(&r / "bn1", 8, Default::default()),
            conv2: nn::conv2d(&r / "conv2", 8, 6, 3, c),
            bn2: nn::batch_norm2d(&r / "bn2", 6, Default::default()),
            fc: nn::linear(&r / "fc", 6 * 36, 4, Default::default()),
        }
    }

    /// Non-trivial BatchNorm statistics, so that a forgotten running_mean would show.
    fn randomise_bn(&self) {
        tch::no_grad(|| {
            for bn in [&self.bn1, &self.bn2] {
                let n = bn.running_mean.size();
                bn.running_mean
                    .shallow_clone()
                    .copy_(&Tensor::randn(n.as_slice(), (Kind::Float, CPU)));
                bn.running_var.shallow_clone().copy_(
                    &Tensor::rand(n.as_slice(), (Kind::Float, CPU)).f_add_scalar(0.5).unwrap(),
                );
                bn.ws
                    .as_ref()
                    .unwrap()
                    .shallow_clone()
                    .copy_(&Tensor::randn(n.as_slice(), (Kind::Float, CPU)));
                bn.bs
                    .as_ref()
                    .unwrap()
                    .shallow_clone()
                    .copy_(&Tensor::randn(n.as_slice(), (Kind::Float, CPU)));
            }
        });
    }
}

impl Module for Cnn {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.conv1)
            .apply_t(&self.bn1, false)
            .relu()
            .apply(&self.conv2)
            .apply_t(&self.bn2, false)
            .relu()
            .flatten(1, -1)
            .apply(&self.fc)
    }
}

fn cnn_coupling() -> Coupling {
    Coupling::new(vec![
        presets::conv_bn_chain("c1", "conv1", true, "bn1", &["conv2"]),
        presets::conv_flatten_linear("c2", "conv2", true, Some("bn2"), "fc", 36),
    ])
    .unwrap()
}

#[test]
fn conv_bn_conv_and_conv_flatten_linear_shrink_exactly() -> TestResult {
    tch::manual_seed(2);
    let vs = VarStore::new(CPU);
    let mut cnn = Cnn::new(&vs);
    cnn.randomise_bn();
    let coupling = cnn_coupling();
    let selection = ChannelPruning::global(0.5)?.select(&coupling, &vs)?;
    assert_eq!(selection.removed_units(), 7); // floor(0.5 * 14)
    let report = Shrink::new(&coupling, &selection).check_input(&[3, 2, 6, 6]).apply(
        &vs,
        &mut cnn,
        |m, x| m.forward(x),
    )?;
    let kept1 = report.manifest().groups["c1"].after;
    let kept2 = report.manifest().groups["c2"].after;
    assert_eq!(kept1 + kept2, 7);
    assert_eq!(cnn.bn1.running_var.size(), [kept1]);
    assert_eq!(cnn.conv2.ws.size(), [kept2, kept1, 3, 3]);
    assert_eq!(cnn.fc.ws.size(), [4, kept2 * 36]);
    assert!(!cnn.bn1.running_mean.requires_grad());
    assert!(report.max_diff() <= 1e-5 * 10.0, "{report}");
    Ok(())
}

#[test]
fn masks_first_then_remove_then_shrink_gives_the_masked_models_output() -> TestResult {
    tch::manual_seed(3);
    let vs = VarStore::new(CPU);
    let cnn = Cnn::new(&vs);
    cnn.randomise_bn();
    let coupling = cnn_coupling();
    let selection = ChannelPruning::local(0.5)?.round_to(2).select(&coupling, &vs)?;
    let mut model = PrunedModel::new(cnn, &vs)?;
    selection.mask(&coupling, &vs, &mut model)?;
    // Buffers are not masked: they are not parameters.
    assert!(
        model.is_parameter_pruned("bn1.weight") && !model.is_parameter_pruned("bn1.running_mean")
    );
    let x = Tensor::randn([2, 2, 6, 6], (Kind::Float, CPU));
    let masked = tch::no_grad(|| model.forward(&x))?;
    // Still masked: shrinking refuses, naming the parameter.
    let err = Shrink::new(&coupling, &selection)
        .check_input(&[1, 2, 6, 6])
        .apply_to_var_store(&vs, |_| unreachable!())
        .unwrap_err();
    assert!(matches!(err, PruneError::StillReparametrized { ref name } if name == "conv1.weight"));
    let names: Vec<String> = model.pruned_parameters().map(String::from).collect();
    for name in &names {
        model.remove(name)?;
    }
    let mut cnn = model.into_inner();
    Shrink::new(&coupling, &selection).check_input(&[1, 2, 6, 6]).apply(
        &vs,
        &mut cnn,
        |m, x| m.forward(x),
    )?;
    assert_eq!(cnn.conv1.ws.size(), [4, 2, 3, 3]);
    let y = tch::no_grad(|| cnn.forward(&x));
    assert!((&y - &masked).abs().max().double_value(&[]) < 1e-5);
    Ok(())
}

#[test]
fn a_torchvision_resnet18_shrinks_through_its_var_store() -> TestResult {
    tch::manual_seed(4);
    let vs = VarStore::new(CPU);
    let net = tch::vision::resnet::resnet18(&vs.root(), 10);
    let coupling = Coupling::new(presets::resnet_basic("", [2, 2, 2, 2], true))?;
    let selection = ChannelPruning::global(0.5)?.round_to(8).select(&coupling, &vs)?;
    let report = Shrink::new(&coupling, &selection)
        .check_input(&[2, 3, 32, 32])
        .apply_to_var_store(&vs, |x| net.forward_t(x, false))?;
    assert!(report.params_after() < report.params_before() / 2, "{report}");
    let vars = vs.variables();
    let stream1 = report.manifest().groups["stream.layer1"].after;
    assert_eq!(stream1 % 8, 0);
    assert_eq!(vars["conv1.weight"].size()[0], stream1);
    assert_eq!(vars["layer1.1.bn2.running_var"].size(), [stream1]);
    assert_eq!(vars["layer2.0.downsample.0.weight"].size()[1], stream1);
    assert_eq!(vars["fc.weight"].size()[1], report.manifest().groups["stream.layer4"].after);
    // The shrunk net still runs at other shapes.
    let y =
        tch::no_grad(|| net.forward_t(&Tensor::randn([1, 3, 64, 64], (Kind::Float, CPU)), false));
    assert_eq!(y.size(), [1, 10]);
    Ok(())
}

/// Multi-head self-attention whose head count follows its weights (`rows / head_dim`), and an
/// FFN, as in a BERT layer (post-LayerNorm over the hidden size, which is not pruned).
#[derive(Debug)]
struct Block {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    out: nn::Linear,
    ln1: nn::LayerNorm,
    inter: nn::Linear,
    output: nn::Linear,
    ln2: nn::LayerNorm,
}
prunable!(Block { query, key, value, out, ln1, inter, output, ln2 });

const HEAD_DIM: i64 = 4;

impl Block {
    fn new(vs: &VarStore, hidden: i64, heads: i64, ffn: i64) -> Self {
        let r = vs.root();
        let l = |name: &str, i, o| nn::linear(&r / name, i, o, Default::default());
        Self {
            query: l("query", hidden, heads * HEAD_DIM),
            key: l("key", hidden, heads * HEAD_DIM),
            value: l("value", hidden, heads * HEAD_DIM),
            out: l("out", heads * HEAD_DIM, hidden),
            ln1: nn::layer_norm(&r / "ln1", vec![hidden], Default::default()),
            inter: l("inter", hidden, ffn),
            output: l("output", ffn, hidden),
            ln2: nn::layer_norm(&r / "ln2", vec![hidden], Default::default()),
        }
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, t, _) = x.size3().unwrap();
        let heads = self.query.ws.size()[0] / HEAD_DIM;
        let split = |y: Tensor| y.view([b, t, heads, HEAD_DIM]).transpose(1, 2);
        let q = split(x.apply(&self.query));
        let k = split(x.apply(&self.key));
        let v = split(x.apply(&self.value));
        let att =
            (q.matmul(&k.transpose(-2, -1)) / (HEAD_DIM as f64).sqrt()).softmax(-1, Kind::Float);
        let ctx = att.matmul(&v).transpose(1, 2).reshape([b, t, heads * HEAD_DIM]);
        let h = (x + ctx.apply(&self.out)).apply(&self.ln1);
        (&h + h.apply(&self.inter).gelu("none").apply(&self.output)).apply(&self.ln2)
    }
}

#[test]
fn attention_heads_and_ffn_width_shrink_exactly() -> TestResult {
    tch::manual_seed(5);
    let vs = VarStore::new(CPU);
    let mut block = Block::new(&vs, 16, 6, 32);
    let coupling = Coupling::new(vec![
        presets::attention_heads("heads", ["query", "key", "value"], "out", HEAD_DIM),
        presets::ffn("ffn", "inter", "output"),
    ])?;
    assert_eq!(coupling.units(&vs)?, [("heads".into(), 6), ("ffn".into(), 32)]);
    let selection = ChannelPruning::local(0.5)?.select(&coupling, &vs)?;
    let report = Shrink::new(&coupling, &selection).check_input(&[2, 5, 16]).apply(
        &vs,
        &mut block,
        |m, x| m.forward(x),
    )?;
    assert_eq!(block.query.ws.size(), [3 * HEAD_DIM, 16]);
    assert_eq!(block.out.ws.size(), [16, 3 * HEAD_DIM]);
    assert_eq!(block.inter.ws.size(), [16, 16]);
    let heads = &report.manifest().groups["heads"];
    assert_eq!((heads.unit, heads.before, heads.after), (Unit::Heads, 6, 3));
    assert!(report.strict() && report.max_diff() <= report.allowed());
    Ok(())
}

/// conv → GroupNorm(4 groups of 3) → relu → conv.
#[derive(Debug)]
struct GnNet {
    conv1: nn::Conv2D,
    gn: nn::GroupNorm,
    conv2: nn::Conv2D,
}
prunable!(GnNet { conv1, gn, conv2 });

impl Module for GnNet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.conv1).apply(&self.gn).relu().apply(&self.conv2)
    }
}

fn gn_net(vs: &VarStore, groups: i64) -> GnNet {
    let r = vs.root();
    let gn = nn::group_norm(&r / "gn", 4, 12, Default::default());
    tch::no_grad(|| {
        gn.ws.as_ref().unwrap().shallow_clone().copy_(&Tensor::randn([12], (Kind::Float, CPU)));
        gn.bs.as_ref().unwrap().shallow_clone().copy_(&Tensor::randn([12], (Kind::Float, CPU)));
    });
    GnNet {
        conv1: nn::conv2d(&r / "conv1", 3, 12, 3, Default::default()),
        gn,
        conv2: nn::conv2d(&r / "conv2", 12, 6, 1, nn::ConvConfig { groups, ..Default::default() }),
    }
}

#[test]
fn group_norm_loses_whole_groups_and_its_group_count_follows() -> TestResult {
    tch::manual_seed(6);
    let vs = VarStore::new(CPU);
    let mut net = gn_net(&vs, 1);
    let coupling =
        Coupling::new(vec![presets::group_norm("gn", "conv1", true, "gn", 3, &["conv2"])])?;
    assert_eq!(coupling.units(&vs)?, [("gn".into(), 4)]);
    let selection = Selection::new().remove("gn", 4, [1, 2]);
    let report = Shrink::new(&coupling, &selection).check_input(&[2, 3, 8, 8]).apply(
        &vs,
        &mut net,
        |m, x| m.forward(x),
    )?;
    assert_eq!((net.gn.num_groups, net.gn.num_channels), (2, 6));
    assert_eq!(net.conv2.ws.size(), [6, 6, 1, 1]);
    assert_eq!(report.changed_fields(), ["gn: GroupNorm num_groups 4 -> 2"]);
    // Whole groups normalise independently: the outputs agree exactly, the check is strict.
    assert!(report.strict() && report.max_diff() <= report.allowed());
    Ok(())
}

#[test]
fn a_grouped_convolution_is_refused_and_nothing_changes() -> TestResult {
    let vs = VarStore::new(CPU);
    let mut net = gn_net(&vs, 3);
    let coupling = Coupling::new(vec![presets::conv_chain("c", "conv2", true, &[])])?;
    let before = values(&vs);
    let err = Shrink::new(&coupling, &Selection::new().remove("c", 6, [0]))
        .check_input(&[1, 3, 8, 8])
        .apply(&vs, &mut net, |m, x| m.forward(x))
        .unwrap_err();
    assert!(
        matches!(err, PruneError::UnsupportedLayer { ref layer, .. } if layer == "conv2"),
        "{err}"
    );
    assert_unchanged(&before, &vs);
    Ok(())
}

#[test]
fn a_group_norm_losing_part_of_a_group_is_refused() -> TestResult {
    let vs = VarStore::new(CPU);
    let mut net = gn_net(&vs, 1);
    let coupling = Coupling::new(vec![ChannelGroup::new("c1")
        .output_of("conv1", true)
        .dim("gn.weight", 0)
        .dim("gn.bias", 0)
        .input_of("conv2")])?;
    let before = values(&vs);
    let err = Shrink::new(&coupling, &Selection::new().remove("c1", 12, [0]))
        .check_input(&[1, 3, 8, 8])
        .apply(&vs, &mut net, |m, x| m.forward(x))
        .unwrap_err();
    assert!(
        matches!(err, PruneError::UnsupportedLayer { ref layer, .. } if layer == "gn"),
        "{err}"
    );
    assert_unchanged(&before, &vs);
    assert_eq!(net.gn.num_groups, 4);
    Ok(())
}

/// Two convolutions concatenated along channels, then a 1x1 convolution.
#[derive(Debug)]
struct Cat {
    a: nn::Conv2D,
    b: nn::Conv2D,
    mix: nn::Conv2D,
}
prunable!(Cat { a, b, mix });

impl Module for Cat {
    fn forward(&self, xs: &Tensor) -> Tensor {
        Tensor::cat(&[xs.apply(&self.a).relu(), xs.apply(&self.b).tanh()], 1).apply(&self.mix)
    }
}

#[test]
fn concatenated_inputs_shrink_at_their_offsets() -> TestResult {
    tch::manual_seed(7);
    let vs = VarStore::new(CPU);
    let r = vs.root();
    let mut net = Cat {
        a: nn::conv2d(&r / "a", 2, 5, 1, Default::default()),
        b: nn::conv2d(&r / "b", 2, 7, 1, Default::default()),
        mix: nn::conv2d(&r / "mix", 12, 3, 1, Default::default()),
    };
    // "a" covers mix's first 5 inputs only: declared as a whole dimension, the sizes do not
    // match.
    let whole = Coupling::new(vec![ChannelGroup::new("a").output_of("a", true).input_of("mix")])?;
    let err = whole.units(&vs).unwrap_err();
    assert!(
        matches!(err, PruneError::GroupSizeMismatch { ref group, size: 12, expected: 5, .. } if group == "a")
    );
    // A slice past the end does not fit either.
    let past = Coupling::new(vec![ChannelGroup::new("b")
        .output_of("b", true)
        .member(Member::new("mix.weight", 1).at_offset(6))])?;
    assert!(matches!(
        past.units(&vs),
        Err(PruneError::GroupSizeMismatch { size: 12, expected: 13, .. })
    ));
    let coupling = Coupling::new(vec![
        ChannelGroup::new("a")
            .output_of("a", true)
            .member(Member::new("mix.weight", 1).at_offset(0)),
        ChannelGroup::new("b")
            .output_of("b", true)
            .member(Member::new("mix.weight", 1).at_offset(5)),
    ])?;
    assert_eq!(coupling.units(&vs)?, [("a".into(), 5), ("b".into(), 7)]);
    let selection = Selection::new().remove("a", 5, [4]).remove("b", 7, [0, 6]);
    Shrink::new(&coupling, &selection).check_input(&[2, 2, 3, 3]).apply(
        &vs,
        &mut net,
        |m, x| m.forward(x),
    )?;
    assert_eq!(net.mix.ws.size(), [3, 9, 1, 1]);
    assert_eq!(net.a.ws.size(), [4, 2, 1, 1]);
    assert_eq!(net.b.ws.size(), [5, 2, 1, 1]);
    Ok(())
}

/// fc_in → LayerNorm over the hidden size → fc_out: pruning the hidden size crosses the norm.
#[derive(Debug)]
struct Normed {
    fc_in: nn::Linear,
    ln: nn::LayerNorm,
    fc_out: nn::Linear,
}
prunable!(Normed { fc_in, ln, fc_out });

impl Module for Normed {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.fc_in).apply(&self.ln).apply(&self.fc_out)
    }
}

#[test]
fn a_group_across_a_layer_norm_is_compared_leniently_only_when_declared() -> TestResult {
    tch::manual_seed(8);
    let vs = VarStore::new(CPU);
    let r = vs.root();
    let mut net = Normed {
        fc_in: nn::linear(&r / "fc_in", 4, 10, Default::default()),
        ln: nn::layer_norm(&r / "ln", vec![10], Default::default()),
        fc_out: nn::linear(&r / "fc_out", 10, 2, Default::default()),
    };
    let group = ChannelGroup::new("hidden")
        .output_of("fc_in", true)
        .dim("ln.weight", 0)
        .dim("ln.bias", 0)
        .input_of("fc_out");
    let selection = Selection::new().remove("hidden", 10, [2, 3, 7]);
    // Undeclared, the LayerNorm's changed statistics are a mismatch, and nothing changes.
    let before = values(&vs);
    let strict = Coupling::new(vec![group.clone()])?;
    let err = Shrink::new(&strict, &selection)
        .check_input(&[6, 4])
        .apply(&vs, &mut net, |m, x| m.forward(x))
        .unwrap_err();
    assert!(
        matches!(err, PruneError::ShrinkMismatch { group: Some(ref g), max_diff, .. } if g == "hidden" && max_diff > 1e-3),
        "{err}"
    );
    assert_unchanged(&before, &vs);
    assert_eq!(net.ln.normalized_shape, [10]);
    // Declared, the shrink runs (normalized_shape follows) and reports the difference.
    let lenient = Coupling::new(vec![group.crosses_normalization()])?;
    let report =
        Shrink::new(&lenient, &selection)
            .check_input(&[6, 4])
            .apply(&vs, &mut net, |m, x| m.forward(x))?;
    assert!(!report.strict());
    assert!(report.max_diff() > report.allowed());
    assert_eq!(net.ln.normalized_shape, [7]);
    assert_eq!(report.changed_fields(), ["ln: LayerNorm normalized_shape [10] -> [7]"]);
    Ok(())
}

#[test]
fn an_incomplete_declaration_fails_the_check_naming_the_group_and_changes_nothing() -> TestResult {
    tch::manual_seed(9);
    let vs = VarStore::new(CPU);
    let net = Cnn::new(&vs);
    net.randomise_bn();
    // c1 forgets the BatchNorm between conv1 and conv2: the shrunk forward fails on shapes.
    let coupling = Coupling::new(vec![
        presets::conv_chain("c1", "conv1", true, &["conv2"]),
        presets::conv_flatten_linear("c2", "conv2", true, Some("bn2"), "fc", 36),
    ])?;
    let selection = Selection::new().remove("c1", 8, [1]).remove("c2", 6, [0]);
    let before = values(&vs);
    let err = Shrink::new(&coupling, &selection)
        .check_input(&[1, 2, 6, 6])
        .apply_to_var_store(&vs, |x| net.forward(x))
        .unwrap_err();
    assert!(
        matches!(err, PruneError::ShrinkMismatch { group: Some(ref g), .. } if g == "c1"),
        "{err}"
    );
    assert_unchanged(&before, &vs);
    // The Linear's inputs declared as a group of their own (blocks of 6 instead of each
    // channel's 36 positions): shapes fit, values do not.
    let interleaved = Coupling::new(vec![
        presets::conv_bn_chain("c1", "conv1", true, "bn1", &["conv2"]),
        ChannelGroup::new("c2").output_of("conv2", true).batch_norm("bn2"),
        ChannelGroup::new("fc-in").member(Member::new("fc.weight", 1).blocks(6)),
    ])?;
    let selection =
        Selection::new().remove("c1", 8, [1]).remove("c2", 6, [0]).remove("fc-in", 36, [0]);
    let err = Shrink::new(&interleaved, &selection)
        .check_input(&[1, 2, 6, 6])
        .apply_to_var_store(&vs, |x| net.forward(x))
        .unwrap_err();
    assert!(matches!(err, PruneError::ShrinkMismatch { .. }), "{err}");
    assert_unchanged(&before, &vs);
    Ok(())
}

#[test]
fn bad_declarations_name_the_group_and_the_parameter() -> TestResult {
    let vs = VarStore::new(CPU);
    let _mlp = Mlp::new(&vs);
    let units = |g: ChannelGroup| Coupling::new(vec![g]).and_then(|c| c.units(&vs));
    // Wrong dim: fc2's rows are not fc1's outputs.
    let err = units(presets::linear_chain("h", "fc1", &[]).dim("fc2.weight", 0)).unwrap_err();
    assert!(
        matches!(err, PruneError::GroupSizeMismatch { ref group, ref parameter, dim: 0, size: 12, expected: 16 } if group == "h" && parameter == "fc2.weight")
    );
    // Dim out of range.
    let err = units(presets::linear_chain("h", "fc1", &[]).dim("fc2.bias", 1)).unwrap_err();
    assert!(
        matches!(err, PruneError::GroupDimOutOfRange { ref parameter, dim: 1, ndim: 1, .. } if parameter == "fc2.bias")
    );
    // A parameter the model does not have.
    let err = units(presets::linear_chain("h", "fc9", &[])).unwrap_err();
    assert!(
        matches!(err, PruneError::GroupMemberMissing { ref group, ref parameter } if group == "h" && parameter == "fc9.weight")
    );
    // Malformed groups, whatever the model.
    for bad in [
        vec![ChannelGroup::new("")],
        vec![ChannelGroup::new("e")],
        vec![ChannelGroup::new("x").dim("fc1.weight", 0).dim("fc1.weight", 0)],
        vec![ChannelGroup::new("x").member(Member::new("fc1.weight", 0).blocks(0))],
        vec![ChannelGroup::new("x").member(Member::new("fc1.weight", 0).at_offset(0))],
        vec![ChannelGroup::new("x")
            .member(Member::new("fc1.weight", 0).at_offset(-1))
            .dim("fc1.bias", 0)],
        vec![
            ChannelGroup::new("x").dim("fc1.weight", 0),
            ChannelGroup::new("x").dim("fc1.bias", 0),
        ],
    ] {
        assert!(matches!(Coupling::new(bad), Err(PruneError::InvalidGroup { .. })));
    }
    Ok(())
}

#[test]
fn a_group_that_would_lose_every_unit_is_an_error() -> TestResult {
    let vs = VarStore::new(CPU);
    let mut mlp = Mlp::new(&vs);
    let coupling = mlp_coupling();
    let err = ChannelPruning::local(1.0)?.select(&coupling, &vs).unwrap_err();
    assert!(
        matches!(err, PruneError::GroupWouldBeEmpty { ref group, removed: 16, units: 16 } if group == "h1")
    );
    // Per-group: only h2 asks for everything.
    let err =
        ChannelPruning::local(0.5)?.group_ratio("h2", 1.0)?.select(&coupling, &vs).unwrap_err();
    assert!(matches!(err, PruneError::GroupWouldBeEmpty { ref group, .. } if group == "h2"));
    // By hand.
    let all = Selection::new().remove("h2", 12, 0..12);
    let err = Shrink::new(&coupling, &all)
        .check_input(&[1, 6])
        .apply(&vs, &mut mlp, |m, x| m.forward(x))
        .unwrap_err();
    assert!(matches!(err, PruneError::GroupWouldBeEmpty { removed: 12, units: 12, .. }));
    // Global pruning keeps at least one unit per group, even at ratio 1.
    let selection = ChannelPruning::global(1.0)?.select(&coupling, &vs)?;
    assert_eq!(selection.sizes(), [("h1".to_string(), 16, 1), ("h2".to_string(), 12, 1)]);
    Ok(())
}

#[test]
fn selections_that_do_not_fit_are_errors() -> TestResult {
    let vs = VarStore::new(CPU);
    let mut mlp = Mlp::new(&vs);
    let coupling = mlp_coupling();
    let shrink = |sel: &Selection, mlp: &mut Mlp| {
        Shrink::new(&coupling, sel).check_input(&[1, 6]).apply(&vs, mlp, |m, x| m.forward(x))
    };
    let err = shrink(&Selection::new().remove("nope", 3, [0]), &mut mlp).unwrap_err();
    assert!(matches!(err, PruneError::UnknownGroup { ref group } if group == "nope"));
    let err = shrink(&Selection::new().remove("h1", 16, [16]), &mut mlp).unwrap_err();
    assert!(matches!(err, PruneError::InvalidUnitIndex { index: 16, units: 16, .. }));
    let err = shrink(&Selection::new().remove("h1", 15, [0]), &mut mlp).unwrap_err();
    assert!(matches!(err, PruneError::InvalidUnitIndex { index: 15, units: 16, .. }));
    let err = Shrink::new(&coupling, &Selection::new())
        .apply(&vs, &mut mlp, |m, x| m.forward(x))
        .unwrap_err();
    assert!(matches!(err, PruneError::MissingArgument { parameter: "check_inputs" }));
    let err = ChannelPruning::local(0.5)?.ignore("nope").select(&coupling, &vs).unwrap_err();
    assert!(matches!(err, PruneError::UnknownGroup { .. }));
    let err = ChannelPruning::local(0.5)?
        .with_importance("h1", Tensor::ones([3], (Kind::Float, CPU)))
        .select(&coupling, &vs)
        .unwrap_err();
    assert!(matches!(err, PruneError::ShapeMismatch { parameter: "importance", .. }));
    assert!(matches!(ChannelPruning::global(1.5), Err(PruneError::FractionOutOfRange { .. })));
    assert!(matches!(
        ChannelPruning::local(0.5)?.with_norm(0.0),
        Err(PruneError::InvalidNorm { .. })
    ));
    Ok(())
}

#[test]
fn ranking_follows_group_magnitude_user_scores_rounding_and_ignores() -> TestResult {
    let vs = VarStore::new(CPU);
    let mlp = Mlp::new(&vs);
    let coupling = mlp_coupling();
    // Make h1's units 0..16 increasingly important across all three members.
    tch::no_grad(|| {
        let scale = Tensor::arange(16, (Kind::Float, CPU)).f_add_scalar(1.0).unwrap();
        mlp.fc1
            .ws
            .shallow_clone()
            .copy_(&(Tensor::ones([16, 6], (Kind::Float, CPU)) * scale.unsqueeze(1)));
        mlp.fc1.bs.as_ref().unwrap().shallow_clone().copy_(&scale);
        mlp.fc2
            .ws
            .shallow_clone()
            .copy_(&(Tensor::ones([12, 16], (Kind::Float, CPU)) * scale.unsqueeze(0)));
    });
    let sel = ChannelPruning::local(0.25)?.ignore("h2").select(&coupling, &vs)?;
    assert_eq!(sel.removed("h1"), Some(&[0, 1, 2, 3][..]));
    assert_eq!(sel.removed("h2"), None);
    // Importance p = 2 is the sum of squares over the unit's entries in every member.
    let imp = ChannelPruning::local(0.5)?.importance(&coupling, &vs)?;
    let unit0 = imp[0].1.double_value(&[0]);
    assert!((unit0 - (6.0 + 1.0 + 12.0)).abs() < 1e-9, "{unit0}");
    // Kept counts round up to multiples of 8: 16 - floor(0.3 * 16) = 12 keeps 16 (nothing
    // goes); 16 - floor(0.6 * 16) = 7 keeps 8.
    let sel = ChannelPruning::local(0.3)?.round_to(8).ignore("h2").select(&coupling, &vs)?;
    assert_eq!(sel.removed("h1"), None);
    let sel = ChannelPruning::local(0.6)?.round_to(8).ignore("h2").select(&coupling, &vs)?;
    assert_eq!(sel.removed("h1").map(<[i64]>::len), Some(8));
    // User scores reverse the order.
    let reverse = Tensor::arange(16, (Kind::Float, CPU)).neg();
    let sel = ChannelPruning::local(0.25)?
        .with_importance("h1", reverse)
        .ignore("h2")
        .select(&coupling, &vs)?;
    assert_eq!(sel.removed("h1"), Some(&[12, 13, 14, 15][..]));
    Ok(())
}

#[test]
fn coupling_selection_and_manifest_round_trip_through_json() -> TestResult {
    let vs = VarStore::new(CPU);
    let mut mlp = Mlp::new(&vs);
    let coupling = mlp_coupling();
    let json = serde_json::to_string(&coupling)?;
    assert_eq!(serde_json::from_str::<Coupling>(&json)?, coupling);
    assert!(serde_json::from_str::<Coupling>(r#"[{"name": "x", "members": []}]"#).is_err());
    let selection = ChannelPruning::local(0.5)?.select(&coupling, &vs)?;
    let back: Selection = serde_json::from_str(&serde_json::to_string(&selection)?)?;
    assert_eq!(back, selection);
    let report =
        Shrink::new(&coupling, &back)
            .check_input(&[2, 6])
            .apply(&vs, &mut mlp, |m, x| m.forward(x))?;
    let manifest = tch_prune::ShrinkManifest::from_json(&report.manifest().to_json()?)?;
    assert_eq!(&manifest, report.manifest());
    assert_eq!(manifest.parameters["fc3.weight"], [3, 6]);
    assert!(matches!(
        tch_prune::ShrinkManifest::from_json("{}"),
        Err(PruneError::InvalidManifest { .. })
    ));
    // The same selection no longer fits the shrunk model.
    let err = Shrink::new(&coupling, &back)
        .check_input(&[2, 6])
        .apply(&vs, &mut mlp, |m, x| m.forward(x))
        .unwrap_err();
    assert!(matches!(err, PruneError::InvalidUnitIndex { .. }));
    Ok(())
}
