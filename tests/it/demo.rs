//! `flyp pretrain`, the bundled demo model, and `flyp demo` as a user runs them.

use std::path::Path;

use flyp::data::prompts::Templates;
use flyp::methods::head::ClassHead;
use flyp::methods::zeroshot::evaluate;
use flyp::{Clip, ComputeDevice};

use crate::cli::{emoji, expect_error, flyp, model_arg};
use crate::common::{fixtures, temp_dir};

fn arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn pretrain_from_scratch_lowers_the_caption_loss_and_writes_a_model() {
    let out = temp_dir("pretrain");
    let config = fixtures().join("tiny-a/config.json");
    let noto = format!("noto={}", emoji("noto"));
    let (ok, stdout, stderr) = flyp(&[
        "pretrain",
        "--device",
        "cpu",
        "--data",
        &emoji("captions.csv"),
        "--config",
        arg(&config),
        "--eval",
        &noto,
        "--out",
        arg(&out),
        "--epochs",
        "4",
        "--batch",
        "64",
        "--lr",
        "3e-3",
        "--warmup",
        "2",
        "--templates",
        "emoji",
    ]);
    assert!(ok, "pretrain failed: {stderr}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).expect("results.json"),
    )
    .expect("json");
    let losses: Vec<f64> = results["epochs"]
        .as_array()
        .expect("epochs")
        .iter()
        .map(|e| e["mean_loss"].as_f64().expect("loss"))
        .collect();
    assert_eq!(losses.len(), 4, "{stdout}");
    // ln(64) ≈ 4.16 at random; the captions must be learned.
    assert!(losses[3] < losses[0] - 0.3, "losses {losses:?}");
    // The written model is a model: it loads and embeds.
    let model = out.join("model");
    let (ok, stdout, stderr) = flyp(&[
        "embed",
        "--device",
        "cpu",
        "--model",
        arg(&model),
        "--text",
        "a flags emoji",
    ]);
    assert!(ok, "embed failed: {stderr}");
    assert!(stdout.contains("text_embeds"));
    // A second call without --resume does not overwrite the run.
    expect_error(
        &[
            "pretrain",
            "--device",
            "cpu",
            "--data",
            &emoji("captions.csv"),
            "--out",
            arg(&out),
        ],
        "already holds a run",
    );
}

#[test]
fn pretrain_names_a_manifest_without_captions() {
    let dir = temp_dir("pretrain-nocaption");
    let csv = dir.join("pairs.csv");
    let twemoji = emoji("twemoji/train");
    let mut text = String::from("path,label\n");
    for class in ["country_flag", "other_objects"] {
        let folder = Path::new(&twemoji).join(class);
        let file = std::fs::read_dir(&folder)
            .expect("class folder")
            .next()
            .expect("a file")
            .expect("entry");
        text.push_str(&format!("{},{class}\n", file.path().display()));
    }
    std::fs::write(&csv, text).expect("write csv");
    expect_error(
        &[
            "pretrain",
            "--device",
            "cpu",
            "--data",
            arg(&csv),
            "--out",
            arg(&dir.join("run")),
        ],
        "has no caption",
    );
}

/// The committed demo model (assets/demo-model, made by `flyp pretrain`, see assets/README.md)
/// classifies unseen emoji of both styles above chance (1/49) with the emoji templates, at the
/// accuracies the README's demo table reports for zero-shot.
#[test]
fn the_bundled_demo_model_is_zero_shot_above_chance_on_both_styles() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo-model");
    let clip = Clip::load(&model, &ComputeDevice::flex()).expect("demo model loads");
    let scan = flyp::data::Scan::folder(Path::new(&emoji("twemoji"))).expect("scan");
    assert_eq!(scan.classes.len(), 49);
    let head = ClassHead::zero_shot(&clip, &scan.prompt_names, &Templates::emoji()).expect("head");
    let (ood, _) = flyp::data::Scan::folder(Path::new(&emoji("noto")))
        .expect("scan noto")
        .align_to(&scan.classes)
        .expect("same classes");
    let test = scan.test.clone().expect("test split");
    let (id, _) = evaluate(&clip, &head, &test, 64).expect("eval test");
    let (shifted, _) = evaluate(&clip, &head, &ood, 64).expect("eval noto");
    // The README's zero-shot row (`flyp demo`, 2026-12-06): 41 and 48 of 439 images right; one
    // image either way allows for a different thread count's float sums.
    for (set, metrics, right) in [("Twemoji test", &id, 41.0), ("Noto", &shifted, 48.0)] {
        let got = metrics.top1 * 439.0;
        assert!(
            (got - right).abs() <= 1.0 + 1e-9,
            "{set} zero-shot: {got:.1} of 439 right, the README reports {right}"
        );
        assert!(metrics.top1 > 3.0 / 49.0, "{set}: not above chance");
    }
}

#[test]
fn demo_writes_the_table_results_and_readable_pictures() {
    let out = temp_dir("demo");
    let model = model_arg();
    let (ok, stdout, stderr) = flyp(&[
        "demo",
        "--device",
        "cpu",
        "--model",
        &model,
        "--out",
        arg(&out),
        "--epochs",
        "1",
        "--lr-finetune",
        "1e-3",
        "--lr-lp-ft",
        "1e-3",
        "--lr-flyp",
        "1e-3",
    ]);
    assert!(ok, "demo failed: {stderr}");
    for method in [
        "zeroshot",
        "linear-probe",
        "finetune",
        "lp-ft",
        "flyp",
        "WiSE-FT",
    ] {
        assert!(stdout.contains(method), "no {method} in:\n{stdout}");
    }
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).expect("results.json"),
    )
    .expect("json");
    let rows = results["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 8, "5 methods and 3 WiSE-FT points: {rows:?}");
    for row in rows {
        let method = row["method"].as_str().expect("method");
        for set in ["test", "noto", "unseen-styles"] {
            let v = row["top1"][set].as_f64().expect("top-1");
            assert!((0.0..=1.0).contains(&v), "{row}");
            // The interval holds the measured value, which is the row's top-1 (from the same
            // predictions).
            let i = &results["accuracy"][method][set];
            let (value, low, high) = (
                i["value"].as_f64().expect("value"),
                i["low"].as_f64().expect("low"),
                i["high"].as_f64().expect("high"),
            );
            assert!(
                (value - v).abs() < 1e-9 && low <= value && value <= high,
                "{method} {set}: {i}"
            );
        }
    }
    let differences = results["differences"].as_array().expect("differences");
    assert_eq!(
        differences.len(),
        6,
        "the six planned comparisons: {differences:?}"
    );
    assert_eq!(results["seed"], 0);
    for (stem, title) in [
        ("id_vs_ood", "ID vs OOD accuracy"),
        ("wise_alpha", "WiSE-FT"),
        ("epochs", "Accuracy during fine-tuning"),
        ("embeddings", "class-prompt embeddings"),
    ] {
        let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).expect("svg");
        assert!(svg.starts_with("<svg") && svg.contains(title), "{stem}.svg");
        let png = image::open(out.join(format!("{stem}.png")))
            .expect("png decodes")
            .to_rgb8();
        assert!(
            png.width() >= 900 && png.height() >= 700,
            "{stem}.png is {:?}",
            png.dimensions()
        );
        let ink = png
            .pixels()
            .filter(|p| p.0.iter().all(|&c| c < 128))
            .count();
        assert!(
            ink > 2000,
            "{stem}.png: {ink} dark pixels (no text or axes?)"
        );
    }
    // 49 classes are more than the palette's colours: the embedding picture shows the ten with
    // the most test images and says so; the largest (country flags) is among them.
    let svg = std::fs::read_to_string(out.join("embeddings.svg")).expect("svg");
    assert!(
        svg.contains("the 10 largest of the 49 classes") && svg.contains("country flag"),
        "embeddings.svg"
    );
    // A second call reuses the finished runs and rewrites the report.
    let (ok, _, stderr) = flyp(&[
        "demo",
        "--device",
        "cpu",
        "--model",
        &model,
        "--out",
        arg(&out),
        "--epochs",
        "1",
        "--lr-finetune",
        "1e-3",
        "--lr-lp-ft",
        "1e-3",
        "--lr-flyp",
        "1e-3",
    ]);
    assert!(ok, "second demo failed: {stderr}");
    // Other settings would mix runs of two recipes in one report: refused, naming the field.
    crate::cli::expect_error(
        &[
            "demo",
            "--device",
            "cpu",
            "--model",
            &model,
            "--out",
            arg(&out),
            "--epochs",
            "1",
        ],
        "lr_finetune: saved 0.001, now",
    );
}
