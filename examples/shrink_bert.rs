//! A BERT-base-shaped encoder made smaller: half of every layer's attention heads and half of
//! its feed-forward width removed.
//!
//! Run with:
//!
//! ```text
//! scripts/env.sh cargo run --release --example shrink_bert
//! ```
//!
//! The model has BERT-base's shapes (vocabulary 30522, hidden size 768, 12 layers of 12 heads
//! of 64, feed-forward size 3072: about 109M parameters) and Hugging Face's parameter names,
//! randomly initialised (no download). Each layer's attention reads its head count from its
//! query weight (`rows / 64`), so it follows the shrink; a model that stores `num_heads` in a
//! field would take it from the manifest instead.
//!
//! Per layer, two groups: `presets::attention_heads` (query/key/value rows of a head and the
//! output projection's columns) and `presets::ffn` (intermediate rows and output columns).
//! Half of each is selected locally by group L2 magnitude, masked in place (`HardMask`), then
//! shrunk with the equivalence check on seeded token ids. Printed: parameters, size, MACs per
//! token of the encoder's Linear layers, and CPU latency (median of 5 forwards) for one and
//! eight sequences of 128 tokens, masked and shrunk. Needs about 2 GB of memory.

use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};
use tch_prune::{
    median_latency, presets, prunable, ChannelGroup, ChannelPruning, Coupling, HardMask,
    ModelStats, Shrink,
};

const VOCAB: i64 = 30522;
const HIDDEN: i64 = 768;
const LAYERS: usize = 12;
const HEADS: i64 = 12; // HIDDEN = HEADS * HEAD_DIM
const HEAD_DIM: i64 = 64;
const FFN: i64 = 3072;
const SEQ: i64 = 128;

fn linear(p: nn::Path, i: i64, o: i64) -> nn::Linear {
    let init = nn::Init::Randn { mean: 0.0, stdev: 0.02 };
    nn::linear(p, i, o, nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true })
}

fn layer_norm(p: nn::Path) -> nn::LayerNorm {
    nn::layer_norm(p, vec![HIDDEN], nn::LayerNormConfig { eps: 1e-12, ..Default::default() })
}

#[derive(Debug)]
struct Layer {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    attn_out: nn::Linear,
    attn_norm: nn::LayerNorm,
    intermediate: nn::Linear,
    output: nn::Linear,
    out_norm: nn::LayerNorm,
}
prunable!(Layer {
    query => "attention.self.query",
    key => "attention.self.key",
    value => "attention.self.value",
    attn_out => "attention.output.dense",
    attn_norm => "attention.output.LayerNorm",
    intermediate => "intermediate.dense",
    output => "output.dense",
    out_norm => "output.LayerNorm",
});

impl Layer {
    fn new(p: nn::Path) -> Self {
        let a = &p / "attention";
        Self {
            query: linear(&a / "self" / "query", HIDDEN, HIDDEN),
            key: linear(&a / "self" / "key", HIDDEN, HIDDEN),
            value: linear(&a / "self" / "value", HIDDEN, HIDDEN),
            attn_out: linear(&a / "output" / "dense", HIDDEN, HIDDEN),
            attn_norm: layer_norm(&a / "output" / "LayerNorm"),
            intermediate: linear(&p / "intermediate" / "dense", HIDDEN, FFN),
            output: linear(&p / "output" / "dense", FFN, HIDDEN),
            out_norm: layer_norm(&p / "output" / "LayerNorm"),
        }
    }
}

impl Module for Layer {
    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, t, _) = x.size3().expect("[batch, tokens, hidden]");
        let heads = self.query.ws.size()[0] / HEAD_DIM; // follows the shrink
        let split = |y: Tensor| y.view([b, t, heads, HEAD_DIM]).transpose(1, 2);
        let (q, k, v) =
            (split(x.apply(&self.query)), split(x.apply(&self.key)), split(x.apply(&self.value)));
        let att =
            (q.matmul(&k.transpose(-2, -1)) / (HEAD_DIM as f64).sqrt()).softmax(-1, Kind::Float);
        let ctx = att.matmul(&v).transpose(1, 2).reshape([b, t, heads * HEAD_DIM]);
        let h = (x + ctx.apply(&self.attn_out)).apply(&self.attn_norm);
        (&h + h.apply(&self.intermediate).gelu("none").apply(&self.output)).apply(&self.out_norm)
    }
}

#[derive(Debug)]
struct Encoder {
    word: nn::Embedding,
    position: nn::Embedding,
    norm: nn::LayerNorm,
    layers: Vec<Layer>,
}
prunable!(Encoder { word => "embeddings.word_embeddings", position => "embeddings.position_embeddings", norm => "embeddings.LayerNorm", layers => "encoder.layer" });

impl Encoder {
    fn new(vs: &VarStore) -> Self {
        let r = vs.root();
        let e = &r / "embeddings";
        let cfg = nn::EmbeddingConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.02 },
            ..Default::default()
        };
        Self {
            word: nn::embedding(&e / "word_embeddings", VOCAB, HIDDEN, cfg),
            position: nn::embedding(&e / "position_embeddings", 512, HIDDEN, cfg),
            norm: layer_norm(&e / "LayerNorm"),
            layers: (0..LAYERS).map(|i| Layer::new(&r / "encoder" / "layer" / i)).collect(),
        }
    }
}

impl Module for Encoder {
    fn forward(&self, ids: &Tensor) -> Tensor {
        let positions = Tensor::arange(ids.size()[1], (Kind::Int64, ids.device()));
        let x = (ids.apply(&self.word) + positions.apply(&self.position)).apply(&self.norm);
        self.layers.iter().fold(x, |x, layer| layer.forward(&x))
    }
}

fn coupling() -> Vec<ChannelGroup> {
    (0..LAYERS)
        .flat_map(|i| {
            let l = format!("encoder.layer.{i}");
            let qkv = ["query", "key", "value"].map(|n| format!("{l}.attention.self.{n}"));
            [
                presets::attention_heads(
                    &format!("{l}.heads"),
                    [&qkv[0], &qkv[1], &qkv[2]],
                    &format!("{l}.attention.output.dense"),
                    HEAD_DIM,
                ),
                presets::ffn(
                    &format!("{l}.ffn"),
                    &format!("{l}.intermediate.dense"),
                    &format!("{l}.output.dense"),
                ),
            ]
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(HEADS * HEAD_DIM, HIDDEN);
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let mut encoder = Encoder::new(&vs);
    let coupling = Coupling::new(coupling())?;
    // Each encoder Linear runs once per token; embeddings are lookups (no MACs).
    let per_token = |layer: &str| layer.starts_with("encoder.").then_some(1);
    let before = ModelStats::of(&vs).with_macs(per_token);

    let selection = ChannelPruning::local(0.5)?.select(&coupling, &vs)?;
    selection.mask(&coupling, &vs, &mut HardMask::new(&vs))?;
    let ids = |batch: i64, seed: i64| {
        Tensor::arange(batch * SEQ, (Kind::Int64, Device::Cpu))
            .f_mul_scalar(7919 + seed)
            .unwrap()
            .remainder(VOCAB)
            .view([batch, SEQ])
    };
    let latency = |encoder: &Encoder, batch: i64| {
        let x = ids(batch, 1);
        median_latency(5, || {
            let _ = tch::no_grad(|| encoder.forward(&x));
        })
    };
    let masked = [latency(&encoder, 1), latency(&encoder, 8)];

    let start = std::time::Instant::now();
    let report = Shrink::new(&coupling, &selection).check_inputs([ids(2, 0)]).apply(
        &vs,
        &mut encoder,
        |m, x| m.forward(x),
    )?;
    let shrink_time = start.elapsed();
    let after = ModelStats::of(&vs).with_macs(per_token);
    let shrunk = [latency(&encoder, 1), latency(&encoder, 8)];

    println!("BERT-base-shaped encoder: half the heads (12 -> 6) and half the FFN width (3072 -> 1536) of every layer\n");
    println!("{report}\n");
    println!("| | masked | shrunk | ratio |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, a: f64, b: f64| println!("| {name} | {a:.3} | {b:.3} | {:.2}x |", a / b);
    row("parameters (M)", before.params() as f64 / 1e6, after.params() as f64 / 1e6);
    row("size (MB)", before.bytes() as f64 / 1e6, after.bytes() as f64 / 1e6);
    row("encoder Linear MACs per token (M)", before.macs() as f64 / 1e6, after.macs() as f64 / 1e6);
    for (i, batch) in [1, 8].iter().enumerate() {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        row(&format!("CPU latency, {batch} x {SEQ} tokens (ms)"), ms(masked[i]), ms(shrunk[i]));
    }
    let heads = &report.manifest().groups["encoder.layer.0.heads"];
    let ffn = &report.manifest().groups["encoder.layer.0.ffn"];
    println!("\nlayer 0: {} heads, intermediate_size {}", heads.after, ffn.after);
    println!("shrink and check: {:.3} s", shrink_time.as_secs_f64());
    Ok(())
}
