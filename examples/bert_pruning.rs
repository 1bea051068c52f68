//! Pruning the attention of a BERT-base-shaped encoder, the steps of the pruning tutorial
//! applied to a transformer.
//!
//! Run with:
//!
//! ```text
//! scripts/env.sh cargo run --release --example bert_pruning
//! ```
//!
//! The model is built in tch with BERT-base's shapes (vocabulary 30522, hidden size 768,
//! 12 layers of 12 heads, feed-forward size 3072: about 109M parameters) and Hugging Face's
//! parameter names (`embeddings.word_embeddings.weight`,
//! `encoder.layer.0.attention.self.query.weight`, ...), randomly initialised: no download, no
//! hub access. Its forward pass (embeddings, 12 heads of self-attention, GELU feed-forward,
//! post-LayerNorm) runs on a 2x16 batch of random token ids before and after each step.
//!
//! Steps, each timed (the timings are informational; they depend on the machine):
//!
//! 1. layer 0's `attention.self.key.weight`: `random_unstructured` 30%;
//! 2. layer 0's `attention.self.key.bias`: `l1_unstructured` of 50 entries;
//! 3. layer 0's `attention.self.query.weight`: `ln_structured` 30% of the input columns
//!    (`n = 2`, `dim = 1`);
//! 4. `remove` on those three, making the pruning permanent;
//! 5. every `Embedding` weight 20% and every `Linear` weight 40% by L1 magnitude, the layers
//!    found by kind (the tutorial's `named_modules()` + `isinstance` loop);
//! 6. on a fresh model, global L1 pruning of 20% of all query/key/value weights of the 12
//!    layers together, with the per-layer and global sparsity.
//!
//! Everything is seeded (`tch::manual_seed(42)`) and needs about 2 GB of memory (each pruned
//! weight has an `_orig`, a `_mask` and the `orig * mask` its layer computes with). In release
//! mode the whole run takes seconds on a CPU (5 to 15 s on a shared 2-core machine; the last
//! line prints the total). **Use `--release`**: in a debug build the crate's own selection
//! code for large tensors runs unoptimised, and the same run takes two to three times longer
//! (20 to 40 s here), most of it in step 5. Timings are informational only.

use std::time::Instant;

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};
use tch_prune::{prunable, L1Unstructured, Prunable, PrunedModel, Pruner};

const VOCAB_SIZE: i64 = 30522;
const MAX_POSITIONS: i64 = 512;
const TYPE_VOCAB_SIZE: i64 = 2;
const HIDDEN: i64 = 768;
const LAYERS: usize = 12;
const HEADS: i64 = 12;
const INTERMEDIATE: i64 = 3072;
const LAYER_NORM_EPS: f64 = 1e-12;
/// BERT's `initializer_range`: weights are drawn from N(0, 0.02). Biases too, unlike BERT's
/// zero init, so that pruning `key.bias` by magnitude has something to choose from (a trained
/// model's biases are not zero).
const INIT_STD: f64 = 0.02;

fn linear(path: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    let init = nn::Init::Randn { mean: 0.0, stdev: INIT_STD };
    let config = nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true };
    nn::linear(path, d_in, d_out, config)
}

fn embedding(path: nn::Path, n: i64) -> nn::Embedding {
    let config = nn::EmbeddingConfig {
        ws_init: nn::Init::Randn { mean: 0.0, stdev: INIT_STD },
        ..Default::default()
    };
    nn::embedding(path, n, HIDDEN, config)
}

fn layer_norm(path: nn::Path) -> nn::LayerNorm {
    let config = nn::LayerNormConfig { eps: LAYER_NORM_EPS, ..Default::default() };
    nn::layer_norm(path, vec![HIDDEN], config)
}

#[derive(Debug)]
struct BertEmbeddings {
    word_embeddings: nn::Embedding,
    position_embeddings: nn::Embedding,
    token_type_embeddings: nn::Embedding,
    layer_norm: nn::LayerNorm,
}
prunable!(BertEmbeddings {
    word_embeddings,
    position_embeddings,
    token_type_embeddings,
    layer_norm => "LayerNorm",
});

impl BertEmbeddings {
    fn new(p: nn::Path) -> Self {
        BertEmbeddings {
            word_embeddings: embedding(&p / "word_embeddings", VOCAB_SIZE),
            position_embeddings: embedding(&p / "position_embeddings", MAX_POSITIONS),
            token_type_embeddings: embedding(&p / "token_type_embeddings", TYPE_VOCAB_SIZE),
            layer_norm: layer_norm(&p / "LayerNorm"),
        }
    }

    /// `input_ids`: `[batch, seq]` token ids; positions `0..seq`, token type 0 everywhere.
    fn forward(&self, input_ids: &Tensor) -> Tensor {
        let seq = input_ids.size()[1];
        let positions = Tensor::arange(seq, (Kind::Int64, input_ids.device())).unsqueeze(0);
        let token_types = input_ids.zeros_like();
        let xs = input_ids.apply(&self.word_embeddings)
            + positions.apply(&self.position_embeddings)
            + token_types.apply(&self.token_type_embeddings);
        xs.apply(&self.layer_norm)
    }
}

/// Hugging Face's `BertSelfAttention`: the query/key/value projections.
#[derive(Debug)]
struct BertSelfAttention {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
}
prunable!(BertSelfAttention { query, key, value });

impl BertSelfAttention {
    fn new(p: nn::Path) -> Self {
        BertSelfAttention {
            query: linear(&p / "query", HIDDEN, HIDDEN),
            key: linear(&p / "key", HIDDEN, HIDDEN),
            value: linear(&p / "value", HIDDEN, HIDDEN),
        }
    }

    /// `[batch, seq, hidden]` -> the per-head context, concatenated back to `[batch, seq, hidden]`.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let (batch, seq, _) = xs.size3().unwrap();
        let head_dim = HIDDEN / HEADS;
        let heads = |t: Tensor| t.view([batch, seq, HEADS, head_dim]).transpose(1, 2);
        let q = heads(xs.apply(&self.query));
        let k = heads(xs.apply(&self.key));
        let v = heads(xs.apply(&self.value));
        let scores = q.matmul(&k.transpose(-1, -2)) / (head_dim as f64).sqrt();
        let probs = scores.softmax(-1, Kind::Float);
        probs.matmul(&v).transpose(1, 2).contiguous().view([batch, seq, HIDDEN])
    }
}

/// A dense layer, a residual connection and a LayerNorm (`BertSelfOutput` and `BertOutput`).
#[derive(Debug)]
struct DenseResidualNorm {
    dense: nn::Linear,
    layer_norm: nn::LayerNorm,
}
prunable!(DenseResidualNorm { dense, layer_norm => "LayerNorm" });

impl DenseResidualNorm {
    fn new(p: nn::Path, d_in: i64) -> Self {
        DenseResidualNorm {
            dense: linear(&p / "dense", d_in, HIDDEN),
            layer_norm: layer_norm(&p / "LayerNorm"),
        }
    }

    fn forward(&self, xs: &Tensor, residual: &Tensor) -> Tensor {
        (xs.apply(&self.dense) + residual).apply(&self.layer_norm)
    }
}

#[derive(Debug)]
struct BertAttention {
    /// Stored under `attention.self` as in Hugging Face (`self` is a keyword in Rust).
    self_attn: BertSelfAttention,
    output: DenseResidualNorm,
}
prunable!(BertAttention { self_attn => "self", output });

#[derive(Debug)]
struct BertIntermediate {
    dense: nn::Linear,
}
prunable!(BertIntermediate { dense });

#[derive(Debug)]
struct BertLayer {
    attention: BertAttention,
    intermediate: BertIntermediate,
    output: DenseResidualNorm,
}
prunable!(BertLayer { attention, intermediate, output });

impl BertLayer {
    fn new(p: nn::Path) -> Self {
        let attention = &p / "attention";
        BertLayer {
            attention: BertAttention {
                self_attn: BertSelfAttention::new(&attention / "self"),
                output: DenseResidualNorm::new(&attention / "output", HIDDEN),
            },
            intermediate: BertIntermediate {
                dense: linear(&p / "intermediate" / "dense", HIDDEN, INTERMEDIATE),
            },
            output: DenseResidualNorm::new(&p / "output", INTERMEDIATE),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let context = self.attention.self_attn.forward(xs);
        let attended = self.attention.output.forward(&context, xs);
        let hidden = attended.apply(&self.intermediate.dense).gelu("none");
        self.output.forward(&hidden, &attended)
    }
}

#[derive(Debug)]
struct BertEncoder {
    layer: Vec<BertLayer>,
}
prunable!(BertEncoder { layer });

#[derive(Debug)]
struct BertModel {
    embeddings: BertEmbeddings,
    encoder: BertEncoder,
}
prunable!(BertModel { embeddings, encoder });

impl BertModel {
    fn new(vs: &nn::VarStore) -> Self {
        let root = vs.root();
        let layers = &root / "encoder" / "layer";
        BertModel {
            embeddings: BertEmbeddings::new(&root / "embeddings"),
            encoder: BertEncoder {
                layer: (0..LAYERS).map(|i| BertLayer::new(&layers / i)).collect(),
            },
        }
    }
}

impl Module for BertModel {
    /// `[batch, seq]` token ids -> the last hidden state, `[batch, seq, 768]`.
    fn forward(&self, input_ids: &Tensor) -> Tensor {
        let mut xs = self.embeddings.forward(input_ids);
        for layer in &self.encoder.layer {
            xs = layer.forward(&xs);
        }
        xs
    }
}

/// Percentage of entries of `t` that are exactly zero.
fn sparsity(t: &Tensor) -> f64 {
    100.0 * zeros(t) as f64 / t.numel() as f64
}

fn zeros(t: &Tensor) -> i64 {
    t.eq(0.0).sum(Kind::Int64).int64_value(&[])
}

/// Runs `f`, printing how long it took.
fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    println!("[{:>8.1} ms] {label}", start.elapsed().as_secs_f64() * 1e3);
    out
}

fn section(title: &str) {
    println!("\n=== {title} {}", "=".repeat(72usize.saturating_sub(title.len())));
}

/// A forward pass; prints how much the last hidden state moved from `baseline`.
fn check_forward(
    model: &mut PrunedModel<BertModel>,
    input_ids: &Tensor,
    baseline: Option<&Tensor>,
) -> Result<Tensor, tch_prune::PruneError> {
    let hidden = timed("forward pass (2x16 tokens)", || tch::no_grad(|| model.forward(input_ids)))?;
    match baseline {
        Some(before) => {
            let change = (&hidden - before).abs().max().double_value(&[]);
            println!(
                "    last hidden state {:?}, max |change| vs. unpruned: {change:.4}",
                hidden.size()
            );
        }
        None => println!("    last hidden state {:?}", hidden.size()),
    }
    Ok(hidden)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    tch::manual_seed(42);
    let device = Device::Cpu;
    let input_ids = Tensor::randint(VOCAB_SIZE, [2, 16], (Kind::Int64, device));

    section("A BERT-base-shaped encoder");
    let vs = nn::VarStore::new(device);
    let bert = timed("build the model (random init)", || BertModel::new(&vs));
    let total: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
    println!("    {} tensors, {total} parameters", vs.variables().len());
    let mut model = PrunedModel::new(bert, &vs)?;
    let unpruned = check_forward(&mut model, &input_ids, None)?;

    let attn = "encoder.layer.0.attention.self";
    let key_w = format!("{attn}.key.weight");
    let key_b = format!("{attn}.key.bias");
    let query_w = format!("{attn}.query.weight");

    section("Pruning layer 0's attention");
    // prune.random_unstructured(attn.key, name="weight", amount=0.3)
    timed("random_unstructured 30% of key.weight", || model.random_unstructured(&key_w, 0.3))?;
    println!("    {key_w}: {:.2}% sparsity", sparsity(model.mask(&key_w).unwrap()));
    // prune.l1_unstructured(attn.key, name="bias", amount=50)
    timed("l1_unstructured 50 entries of key.bias", || model.l1_unstructured(&key_b, 50, None))?;
    println!("    {key_b}: {} entries pruned", zeros(model.mask(&key_b).unwrap()));
    // prune.ln_structured(attn.query, name="weight", amount=0.3, n=2, dim=1)
    timed("ln_structured 30% n=2 dim=1 of query.weight", || {
        model.ln_structured(&query_w, 0.3, 2, 1, None)
    })?;
    let mask = model.mask(&query_w).unwrap();
    let dead_columns = zeros(&mask.sum_dim_intlist(0, false, Kind::Float));
    println!("    {query_w}: {dead_columns} of {HIDDEN} input columns pruned");
    let mut names: Vec<String> = vs
        .variables()
        .into_keys()
        .filter(|k| {
            k.starts_with(&format!("{attn}.")) && (k.ends_with("_orig") || k.ends_with("_mask"))
        })
        .collect();
    names.sort();
    println!("    reparametrized: {names:?}");
    let _ = check_forward(&mut model, &input_ids, Some(&unpruned))?;

    section("Making it permanent (remove)");
    timed("remove key.weight, key.bias, query.weight", || -> tch_prune::Result<()> {
        for name in [&key_w, &key_b, &query_w] {
            model.remove(name)?;
        }
        Ok(())
    })?;
    let vars = vs.variables();
    for name in [&key_w, &key_b, &query_w] {
        println!("    {name}: plain parameter again, {:.2}% zeros", sparsity(&vars[name.as_str()]));
    }
    drop(vars);
    println!("    is_pruned: {}", model.is_pruned());

    section("Pruning every Embedding (20%) and Linear (40%) weight");
    // for name, module in model.named_modules():
    //     if isinstance(module, nn.Embedding): prune.l1_unstructured(module, "weight", amount=0.2)
    //     elif isinstance(module, nn.Linear): prune.l1_unstructured(module, "weight", amount=0.4)
    let plan: Vec<(String, f64)> = model
        .model()
        .named_modules() // Prunable::named_modules, generated by prunable!
        .into_iter()
        .filter_map(|(path, module)| {
            if module.is::<nn::Embedding>() {
                Some((format!("{path}.weight"), 0.2))
            } else if module.is::<nn::Linear>() {
                Some((format!("{path}.weight"), 0.4))
            } else {
                None // LayerNorm
            }
        })
        .collect();
    timed(&format!("l1_unstructured on {} weights", plan.len()), || -> tch_prune::Result<()> {
        for (name, amount) in &plan {
            model.l1_unstructured(name, *amount, None)?;
        }
        Ok(())
    })?;
    for (label, amount) in [("Embedding", 0.2), ("Linear", 0.4)] {
        let (mut pruned, mut total, mut count) = (0, 0, 0);
        for (name, _) in plan.iter().filter(|(_, a)| *a == amount) {
            let mask = model.mask(name).unwrap();
            pruned += zeros(mask);
            total += mask.numel() as i64;
            count += 1;
        }
        println!(
            "    {count:>2} {label} weights: {:.2}% sparsity ({pruned} of {total} entries)",
            100.0 * pruned as f64 / total as f64
        );
    }
    let word = "embeddings.word_embeddings.weight";
    println!("    {word}: {:.2}%", sparsity(model.mask(word).unwrap()));
    println!("    {query_w}: {:.2}%", sparsity(model.mask(&query_w).unwrap()));
    let masks = vs.variables().keys().filter(|k| k.ends_with("_mask")).count();
    println!("    {masks} masks in the VarStore");
    let _ = check_forward(&mut model, &input_ids, Some(&unpruned))?;
    drop(model);
    drop(vs);

    section("Global pruning of the attention projections");
    let vs = nn::VarStore::new(device);
    let mut model = PrunedModel::new(timed("build a fresh model", || BertModel::new(&vs)), &vs)?;
    let names: Vec<String> = (0..LAYERS)
        .flat_map(|i| {
            ["query", "key", "value"]
                .map(|proj| format!("encoder.layer.{i}.attention.self.{proj}.weight"))
        })
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let unpruned = check_forward(&mut model, &input_ids, None)?;
    // prune.global_unstructured(parameters, pruning_method=prune.L1Unstructured, amount=0.2)
    timed(&format!("global_unstructured L1 20% over {} weights", names.len()), || {
        model.global_unstructured(&names, L1Unstructured::new(0.2)?, &[])
    })?;
    model.refresh()?;
    let layers = &model.model().encoder.layer;
    let (mut total_zeros, mut total) = (0, 0);
    for (i, layer) in layers.iter().enumerate() {
        let sa = &layer.attention.self_attn;
        let mut line = format!("Sparsity in {:<33}", format!("encoder.layer.{i}.attention.self:"));
        for (proj, w) in [("query", &sa.query.ws), ("key", &sa.key.ws), ("value", &sa.value.ws)] {
            line += &format!("  {proj} {:.2}%", sparsity(w));
            total_zeros += zeros(w);
            total += w.numel() as i64;
        }
        println!("{line}");
    }
    println!("Global sparsity: {:.2}%", 100.0 * total_zeros as f64 / total as f64);
    let _ = check_forward(&mut model, &input_ids, Some(&unpruned))?;
    println!("\ntotal: {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
