//! `flyp`: the command-line face of the library. Every command takes `--device auto|gpu|cpu`;
//! each subcommand lives in `src/cli/<command>.rs`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flyp::DeviceChoice;

#[derive(Parser)]
#[command(
    name = "flyp",
    version,
    about = "Fine-tune CLIP like you pretrain (FLYP) and its baselines"
)]
struct Cli {
    /// Where to compute: auto (a hardware GPU if any, else CPU), gpu (wgpu), cpu (Flex).
    #[arg(long, global = true, default_value = "auto")]
    device: DeviceChoice,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print L2-normalised CLIP embeddings of images and texts as one JSON object:
    /// {"image_embeds": [[...], ...], "text_embeds": [[...], ...]}, in argument order.
    Embed(cli::embed::EmbedArgs),
    /// Check a dataset folder: classes, counts, every skipped file and why, image sizes, warnings.
    /// Layouts: DIR/<class>/<images>, DIR/{train,val,test}/<class>/…, or a CSV (path,label[,caption]).
    Scan(cli::scan::ScanArgs),
    /// Fine-tune a CLIP on a labelled image folder with FLYP or standard fine-tuning, evaluating
    /// every epoch on the validation, test and extra sets; writes RUN_DIR/{config.json,
    /// results.json, model/ (best epoch by validation top-1, HF layout)} and, for finetune, head.safetensors.
    Train(cli::train::TrainArgs),
    /// Pretrain a CLIP contrastively on image–caption pairs (CLIP's loss, through the same engine
    /// and kernel as FLYP), from a random model of a given size or from a checkpoint; evaluates
    /// zero-shot on the --eval sets every epoch; writes OUT/{config.json, results.json, model/}.
    Pretrain(cli::pretrain::PretrainArgs),
    /// The whole story in one command: zero-shot, linear probe, FT, LP-FT and FLYP with their
    /// WiSE-FT curves, on the bundled emoji experiment (Twemoji ID → the test emoji in Noto and in
    /// three unseen styles, OOD) from the bundled demo model; prints every accuracy and planned
    /// difference with a 95 % bootstrap interval and writes OUT/results.json and the pictures.
    Demo(cli::demo::DemoArgs),
    /// Every method on one dataset — zero-shot, linear probe, FT, LP-FT, FLYP (and the CE
    /// ablation if asked) — each into OUT/<method>/, WiSE-FT curves for the fine-tuned ones, then
    /// one ID/OOD table and the curves; writes OUT/compare.json. Finished methods are not rerun.
    Compare(cli::compare::CompareArgs),
    /// WiSE-FT for a `flyp train` run: interpolate every weight between the run's zero-shot model
    /// and its fine-tuned model, θ(α) = (1−α)·θ₀ + α·θ₁, and evaluate every set at every α; the α
    /// with the best validation top-1 is reported. Writes RUN_DIR/wise.json.
    Wise(cli::wise::WiseArgs),
    /// Zero-shot accuracy of a model on dataset folders: the prompt-ensemble head from the class
    /// names, then top-1 and macro-F1 per set.
    Eval(cli::eval::EvalArgs),
    /// Benchmarks that print tables.
    #[command(subcommand)]
    Bench(cli::bench::Bench),
    /// Write a model as a Hugging Face CLIP folder (config.json + f32 model.safetensors, plus its
    /// tokenizer.json and preprocessor_config.json): converts f16/bf16, shards or a bare
    /// .safetensors into what `transformers.CLIPModel.from_pretrained` loads.
    Export(cli::export::ExportArgs),
}

fn main() -> ExitCode {
    // A panic is a bug: say so in one line and exit 1 like any other failure.
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("error: internal error (a bug in flyp; please report it){place}: {message}");
    }));
    let cli = Cli::parse();
    if cli.device == DeviceChoice::Cpu {
        // burn materialises a loaded optimizer state on its default device, which would open
        // Vulkan on a CPU run's --resume; name Flex as that default.
        // SAFETY: no other thread exists yet (nothing has run but argument parsing).
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let device = cli.device;
    match cli.command {
        Command::Embed(args) => cli::embed::run(device, args),
        Command::Scan(args) => cli::scan::run(device, args),
        Command::Train(args) => cli::train::run(device, args),
        Command::Pretrain(args) => cli::pretrain::run(device, args),
        Command::Demo(args) => cli::demo::run(device, args),
        Command::Compare(args) => cli::compare::run(device, args),
        Command::Wise(args) => cli::wise::run(device, args),
        Command::Eval(args) => cli::eval::run(device, args),
        Command::Bench(bench) => cli::bench::run(device, bench),
        Command::Export(args) => cli::export::run(device, args),
    }
}
