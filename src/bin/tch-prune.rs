//! `tch-prune`: prune safetensors checkpoints of any size offline, in bounded memory, and store
//! sparse weights compactly. See `docs/offline.md`; the library side is `tch_prune::offline`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tch_prune::offline::{
    compress, densify, dry_run, prune, report, Checkpoint, Format, OfflineError, OfflineMethod,
    Progress, PruneOptions, Scope, Selection, WandaPattern,
};
use tch_prune::Amount;

#[derive(Parser)]
#[command(
    name = "tch-prune",
    version,
    about = "Prune safetensors checkpoints offline, in bounded memory"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Prune IN (a .safetensors file, a sharded folder or its index) into OUT.
    Prune {
        /// The checkpoint to prune (never modified).
        input: PathBuf,
        /// The output: a file for a single-file input, a folder for a sharded one.
        output: PathBuf,
        #[command(flatten)]
        method: MethodArgs,
        #[command(flatten)]
        selection: SelectionArgs,
        /// How the pruned tensors are stored.
        #[arg(long, value_enum, default_value_t = FormatArg::Dense)]
        format: FormatArg,
        /// Print what would be pruned and exit; nothing is read beyond the headers.
        #[arg(long)]
        dry_run: bool,
        /// MiB of data mapped at a time.
        #[arg(long, default_value_t = 8)]
        window_mib: usize,
    },
    /// Store the selected tensors of IN compressed (no pruning), e.g. a pruned checkpoint.
    Compress {
        /// The checkpoint.
        input: PathBuf,
        /// The output.
        output: PathBuf,
        #[command(flatten)]
        selection: SelectionArgs,
        /// The storage.
        #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
        format: FormatArg,
    },
    /// Turn a compressed checkpoint back into a dense one, bit for bit.
    Densify {
        /// The compressed checkpoint.
        input: PathBuf,
        /// The dense output.
        output: PathBuf,
    },
    /// Per-tensor and global sparsity, bytes on disk and bytes dense.
    Report {
        /// The checkpoint (dense or compressed).
        input: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct MethodArgs {
    /// The pruning method.
    #[arg(long, value_enum, default_value_t = MethodArg::L1)]
    method: MethodArg,
    /// For l1: per tensor, per output row, or global over the selection.
    #[arg(long, value_enum, default_value_t = ScopeArg::Global)]
    scope: ScopeArg,
    /// How much to prune: a fraction with a decimal point (0.5) or a count (1000). For wanda
    /// (per row): the fraction of each row.
    #[arg(long)]
    amount: Option<String>,
    /// N:M pattern, kept:group, along the last dimension (2:4), for nm and wanda.
    #[arg(long)]
    nm: Option<String>,
    /// Wanda's per-input-channel norms (safetensors, one f32 vector per weight).
    #[arg(long)]
    norms: Option<PathBuf>,
    /// Seed of the random method.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(clap::Args)]
struct SelectionArgs {
    /// Prune only tensors matching one of these patterns (`*`, `?`); repeatable.
    #[arg(long)]
    include: Vec<String>,
    /// Never prune tensors matching one of these patterns; repeatable.
    #[arg(long)]
    exclude: Vec<String>,
    /// Smallest rank pruned (2 leaves biases and norms alone).
    #[arg(long, default_value_t = 2)]
    min_rank: usize,
    /// Largest rank pruned.
    #[arg(long)]
    max_rank: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    L1,
    Random,
    Nm,
    Wanda,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScopeArg {
    Tensor,
    Row,
    Global,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Dense,
    Bitmask,
    Csr,
    Auto,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Dense => Format::Dense,
            FormatArg::Bitmask => Format::Bitmask,
            FormatArg::Csr => Format::Csr,
            FormatArg::Auto => Format::Auto,
        }
    }
}

impl SelectionArgs {
    fn selection(&self) -> Selection {
        Selection::new()
            .include(self.include.clone())
            .exclude(self.exclude.clone())
            .ranks(self.min_rank, self.max_rank)
    }
}

/// A usage error of the command line.
fn usage(reason: String) -> OfflineError {
    OfflineError::InvalidArgument { parameter: "command line", reason }
}

fn parse_amount(text: &Option<String>) -> Result<Amount, OfflineError> {
    let text =
        text.as_deref().ok_or_else(|| usage("--amount is required for this method".into()))?;
    if text.contains(['.', 'e', 'E']) {
        text.parse::<f64>()
            .map(Amount::Fraction)
            .map_err(|e| usage(format!("--amount {text:?}: {e}")))
    } else {
        text.parse::<i64>().map(Amount::Count).map_err(|e| usage(format!("--amount {text:?}: {e}")))
    }
}

fn parse_nm(text: &str) -> Result<(usize, usize), OfflineError> {
    let bad = || usage(format!("--nm {text:?}: expected N:M, e.g. 2:4"));
    let (n, m) = text.split_once(':').ok_or_else(bad)?;
    Ok((n.trim().parse().map_err(|_| bad())?, m.trim().parse().map_err(|_| bad())?))
}

impl MethodArgs {
    fn method(&self) -> Result<OfflineMethod, OfflineError> {
        Ok(match self.method {
            MethodArg::L1 => {
                let scope = match self.scope {
                    ScopeArg::Tensor => Scope::Tensor,
                    ScopeArg::Row => Scope::Row,
                    ScopeArg::Global => Scope::Global,
                };
                OfflineMethod::Magnitude { scope, amount: parse_amount(&self.amount)? }
            }
            MethodArg::Random => {
                OfflineMethod::Random { amount: parse_amount(&self.amount)?, seed: self.seed }
            }
            MethodArg::Nm => {
                let (n, m) = parse_nm(self.nm.as_deref().unwrap_or("2:4"))?;
                OfflineMethod::SemiStructured { n, m }
            }
            MethodArg::Wanda => {
                let norms = self
                    .norms
                    .clone()
                    .ok_or_else(|| usage("--norms is required for wanda".into()))?;
                let pattern = match &self.nm {
                    Some(nm) => {
                        let (n, m) = parse_nm(nm)?;
                        WandaPattern::SemiStructured { n, m }
                    }
                    None => match parse_amount(&self.amount)? {
                        Amount::Fraction(sparsity) => WandaPattern::Row { sparsity },
                        Amount::Count(_) => {
                            return Err(usage(
                                "wanda per row takes a fraction (--amount 0.5) or --nm".into(),
                            ))
                        }
                    },
                };
                OfflineMethod::Wanda { norms, pattern }
            }
        })
    }
}

/// Progress bars with bytes/s, one per phase, on stderr.
struct Bars {
    quiet: bool,
    bar: std::cell::RefCell<Option<ProgressBar>>,
}

impl Progress for Bars {
    fn start(&self, phase: &str, total_bytes: u64) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(total_bytes);
        let style = ProgressStyle::with_template(
            "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(phase.to_string());
        *self.bar.borrow_mut() = Some(bar);
    }
    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.inc(bytes);
        }
    }
    fn finish(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish();
        }
    }
}

/// Writes `text` to stdout; a closed pipe (`tch-prune report x | head`) is not an error.
fn emit(text: &str) -> Result<(), OfflineError> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(OfflineError::Io { operation: "write", path: "<stdout>".into(), source: e })
        }
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tch-prune: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), OfflineError> {
    let bars = Bars { quiet: cli.quiet, bar: Default::default() };
    match cli.command {
        Command::Prune { input, output, method, selection, format, dry_run: dry, window_mib } => {
            let ckpt = Checkpoint::open(&input)?;
            let options = PruneOptions::new(method.method()?)
                .selection(selection.selection())
                .format(format.into())
                .window_bytes(window_mib.max(1) << 20);
            if dry {
                let (planned, total) = dry_run(&ckpt, &options)?;
                let mut text = String::new();
                for p in &planned {
                    let count = p.to_prune.map_or("(global)".to_string(), |c| c.to_string());
                    let shape = format!("{:?}", p.shape);
                    text.push_str(&format!(
                        "{:<60} {:>5} {shape:>20} {count:>14}  {}\n",
                        p.name, p.dtype, p.file
                    ));
                }
                let numel: u64 =
                    planned.iter().map(|p| p.shape.iter().product::<usize>() as u64).sum();
                let percent = 100.0 * total as f64 / numel.max(1) as f64;
                text.push_str(&format!(
                    "{} tensors, {total} of {numel} entries would be pruned ({percent:.2}%)\n",
                    planned.len()
                ));
                return emit(&text);
            }
            let summary = prune(&ckpt, &output, &options, &bars)?;
            let (pruned, numel) =
                summary.tensors.iter().fold((0, 0), |(p, n), t| (p + t.pruned, n + t.numel));
            eprintln!(
                "pruned {pruned} of {numel} entries in {} tensors; wrote {} files",
                summary.tensors.len(),
                summary.files.len()
            );
        }
        Command::Compress { input, output, selection, format } => {
            let ckpt = Checkpoint::open(&input)?;
            let summary = compress(&ckpt, &output, &selection.selection(), format.into(), &bars)?;
            eprintln!("wrote {} files", summary.files.len());
        }
        Command::Densify { input, output } => {
            let files = densify(&Checkpoint::open(&input)?, &output, &bars)?;
            eprintln!("wrote {} files", files.len());
        }
        Command::Report { input, json } => {
            let r = report(&Checkpoint::open(&input)?, &bars)?;
            if json {
                let text = serde_json::to_string_pretty(&r).map_err(|e| usage(e.to_string()))?;
                emit(&format!("{text}\n"))?;
            } else {
                emit(&r.to_table())?;
            }
        }
    }
    Ok(())
}
