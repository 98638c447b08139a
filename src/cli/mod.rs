//! The `flyp` subcommands, one file each (`main.rs` parses and dispatches), and what they share:
//! argument parsers, the device choice, a run's data, the settings a run folder keeps.

pub mod bench;
pub mod compare;
pub mod demo;
mod demo_table;
pub mod embed;
pub mod eval;
pub mod export;
pub mod pretrain;
pub mod scan;
pub mod train;
pub mod wise;

use std::path::PathBuf;

use anyhow::Context;
use flyp::{ComputeDevice, DeviceChoice};

/// A finite number above zero (learning rates, clipping norms).
pub fn positive_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{text:?}: expected a number above 0")),
    }
}

/// A finite number of at least zero (weight decay).
pub fn non_negative_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{text:?}: expected a number of at least 0")),
    }
}

/// A whole number of at least one (batch sizes, epochs).
pub fn positive_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(format!("{text:?}: expected a whole number of at least 1")),
    }
}

pub fn precision_arg(name: &str) -> Result<flyp::model::Precision, String> {
    flyp::model::Precision::from_name(name)
        .ok_or_else(|| format!("unknown precision '{name}': f32 or mixed"))
}

/// An error and its causes in one line, each cause once (an I/O error's text is often already
/// part of the message that wraps it).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

/// Top-1 of each set as a table cell ("  48.61%"), the CLI's one format for accuracy rows.
pub fn top1_cells(sets: &[(String, flyp::train::Metrics)]) -> String {
    sets.iter()
        .map(|(_, m)| format!("{:>10.2}%", 100.0 * m.top1))
        .collect()
}

/// Resolve `--device` and say once, on stderr, what was chosen.
pub fn open_device(choice: DeviceChoice) -> anyhow::Result<ComputeDevice> {
    let device = ComputeDevice::select(choice).with_context(|| format!("--device {choice}"))?;
    eprintln!("flyp: device {}", device.description);
    Ok(device)
}

/// `NAME=DIR` for `--eval`.
pub fn parse_named_dir(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!("expected NAME=DIR, got {arg:?}")),
    }
}

/// A run's data (see [`flyp::train::engine::TrainData::from_folders`]), its warnings printed.
pub fn build_data(
    paths: &flyp::methods::recipe::DataPaths,
    seed: u64,
) -> anyhow::Result<flyp::train::engine::TrainData> {
    let (data, warnings) = paths.load(seed)?;
    warnings
        .iter()
        .for_each(|w| eprintln!("flyp: warning: {w}"));
    Ok(data)
}

/// `--method`: the registered methods' names and aliases, each with what it does.
pub fn method_arg() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(flyp::methods::ALL.iter().map(|m| {
        clap::builder::PossibleValue::new(m.name())
            .aliases(m.aliases().iter().copied())
            .help(m.about())
    }))
}

/// `--model`: a local folder or file as given, or a Hugging Face Hub id (`owner/name`) downloaded
/// into the cache (`FLYP_CACHE`, else ~/.cache/flyp/hub) with progress on stderr.
pub fn model_arg(text: &str) -> Result<PathBuf, String> {
    if !flyp::hub::is_model_id(text) {
        return Ok(PathBuf::from(text));
    }
    // `assets/demo-modle`: the owner part is a folder here, so this is a mistyped path.
    if flyp::hub::looks_local(text) {
        return Err(format!(
            "{text}: no such file or folder (not tried as a Hugging Face Hub id: {} is a local folder)",
            text.split('/').next().unwrap_or(text)
        ));
    }
    let cache = flyp::hub::default_cache();
    let mut shown = String::new();
    let dir = flyp::hub::download(
        &flyp::hub::default_endpoint(),
        text,
        &cache,
        &mut |p| {
            let mb = |b: u64| b as f64 / 1e6;
            let line = match p.total {
                Some(t) => format!("{text}: {} {:.1}/{:.1} MB", p.file, mb(p.done), mb(t)),
                None => format!("{text}: {} {:.1} MB", p.file, mb(p.done)),
            };
            if line != shown {
                eprint!("\r{line}");
                shown = line;
            }
        },
        None,
    )
    .map_err(|e| {
        format!("{text}: no such file or folder here, so tried the Hugging Face Hub: {e}")
    })?;
    if !shown.is_empty() {
        eprintln!();
    }
    Ok(dir)
}
