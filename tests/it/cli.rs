//! The `flyp` binary as a user runs it: output format, and one-line errors with a non-zero exit
//! (never a panic) on bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use safetensors::SafeTensors;

use crate::common::{cosine, fixtures, max_abs_diff, reference, temp_dir};

pub fn flyp(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flyp"))
        .args(args)
        .output()
        .expect("run flyp");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs and expects a one-line error that mentions `needle`.
pub fn expect_error(args: &[&str], needle: &str) {
    let (ok, _, stderr) = flyp(args);
    assert!(!ok, "{args:?} should fail");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors.len(),
        1,
        "{args:?}: expected one error line, got {stderr}"
    );
    assert!(
        errors[0].contains(needle),
        "{args:?}: {:?} does not name {needle:?}",
        errors[0]
    );
}

#[test]
fn embed_prints_json_matching_transformers_for_another_model() {
    // tiny-b: other widths, depths, heads, image/patch size, projection; bf16 shards; no tokenizer.json.
    let r = reference("tiny-b");
    let model = fixtures().join("tiny-b");
    let images: Vec<PathBuf> = r
        .images
        .iter()
        .map(|n| fixtures().join("images").join(n))
        .collect();
    let mut args: Vec<String> = vec![
        "embed".into(),
        "--device".into(),
        "cpu".into(),
        "--model".into(),
        model.display().to_string(),
    ];
    for p in &images {
        args.extend(["--image".into(), p.display().to_string()]);
    }
    for t in &r.texts {
        args.extend(["--text".into(), t.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = flyp(&args);
    assert!(ok, "flyp embed failed: {stderr}");
    assert!(
        stderr.contains("device Flex"),
        "device not reported: {stderr}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object on stdout");
    let rows =
        |key: &str| -> Vec<Vec<f32>> { serde_json::from_value(json[key].clone()).expect(key) };
    let (image_embeds, text_embeds) = (rows("image_embeds"), rows("text_embeds"));
    assert_eq!(image_embeds.len(), r.images.len());
    assert_eq!(text_embeds.len(), r.texts.len());
    for (ours, theirs) in text_embeds.iter().zip(&r.text_embeds) {
        assert!(max_abs_diff(ours, theirs) <= 1e-4);
    }
    for ((name, ours), theirs) in r.images.iter().zip(&image_embeds).zip(&r.image_embeds) {
        if r.exact_resolution.contains(name) {
            assert!(max_abs_diff(ours, theirs) <= 1e-4, "{name}");
        } else {
            assert!(cosine(ours, theirs) >= 0.995, "{name}");
        }
    }
}

pub fn model_arg() -> String {
    fixtures().join("tiny-a").display().to_string()
}

#[test]
fn missing_image_file_is_named() {
    expect_error(
        &[
            "embed",
            "--device",
            "cpu",
            "--model",
            &model_arg(),
            "--image",
            "/no/such/cat.png",
        ],
        "/no/such/cat.png",
    );
}

#[test]
fn non_image_and_truncated_png_are_named() {
    let dir = temp_dir("badimg");
    let text = dir.join("notes.png");
    std::fs::write(&text, "this is not an image").expect("write");
    expect_error(
        &[
            "embed",
            "--device",
            "cpu",
            "--model",
            &model_arg(),
            "--image",
            text.to_str().expect("utf8"),
        ],
        "notes.png",
    );
    let png = std::fs::read(fixtures().join("images/rgb48.png")).expect("png");
    let truncated = dir.join("truncated.png");
    std::fs::write(&truncated, &png[..png.len() / 2]).expect("write");
    expect_error(
        &[
            "embed",
            "--device",
            "cpu",
            "--model",
            &model_arg(),
            "--image",
            truncated.to_str().expect("utf8"),
        ],
        "truncated.png",
    );
}

#[test]
fn model_folder_problems_are_named() {
    expect_error(
        &["embed", "--device", "cpu", "--model", "/no/such/model"],
        "/no/such/model",
    );
    let empty = temp_dir("noconfig");
    expect_error(
        &[
            "embed",
            "--device",
            "cpu",
            "--model",
            empty.to_str().expect("utf8"),
        ],
        "config.json",
    );
}

/// Copy tiny-a with its weights rewritten by `edit`.
fn edited_model(name: &str, edit: impl Fn(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) -> PathBuf {
    let dir = temp_dir(name);
    for file in ["config.json", "preprocessor_config.json", "tokenizer.json"] {
        std::fs::copy(fixtures().join("tiny-a").join(file), dir.join(file)).expect("copy");
    }
    let bytes = std::fs::read(fixtures().join("tiny-a/model.safetensors")).expect("read");
    let st = SafeTensors::deserialize(&bytes).expect("parse");
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(k, s, d)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .expect("view"),
            )
        })
        .collect();
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors::serialize(views, None).expect("serialize"),
    )
    .expect("write");
    dir
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

#[test]
fn missing_and_misshaped_keys_are_named_with_shapes() {
    let missing = edited_model("missingkey", |t| {
        t.retain(|(k, _, _)| k != "text_projection.weight")
    });
    expect_error(
        &[
            "embed",
            "--device",
            "cpu",
            "--model",
            arg(&missing),
            "--text",
            "x",
        ],
        "missing key text_projection.weight (model expects shape [16, 24])",
    );

    let misshaped = edited_model("badshape", |t| {
        let entry = t
            .iter_mut()
            .find(|(k, _, _)| k == "visual_projection.weight")
            .expect("key");
        entry.1 = vec![32, 16]; // transposed: same bytes, wrong shape
    });
    expect_error(
        &[
            "embed",
            "--device",
            "cpu",
            "--model",
            arg(&misshaped),
            "--text",
            "x",
        ],
        "key visual_projection.weight: checkpoint has shape [32, 16], model expects [16, 32]",
    );

    let extra = edited_model("extrakey", |t| {
        t.push(("vision_model.head.weight".into(), vec![2], vec![0; 8]))
    });
    expect_error(
        &[
            "embed",
            "--device",
            "cpu",
            "--model",
            arg(&extra),
            "--text",
            "x",
        ],
        "unexpected key vision_model.head.weight",
    );
}

#[test]
fn export_writes_a_folder_that_embeds_the_same() {
    // bf16 shards without tokenizer.json → one f32 file with tokenizer and processor config.
    let out = temp_dir("export");
    let model = fixtures().join("tiny-b");
    let (ok, _, stderr) = flyp(&[
        "export",
        "--device",
        "cpu",
        "--model",
        arg(&model),
        "--out",
        arg(&out),
    ]);
    assert!(ok, "export failed: {stderr}");
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "preprocessor_config.json",
    ] {
        assert!(out.join(file).is_file(), "{file} not written");
    }
    let r = reference("tiny-b");
    let mut args = vec!["embed", "--device", "cpu", "--model", arg(&out)];
    let image = fixtures().join("images/rgb48.png");
    args.extend(["--image", arg(&image)]);
    for t in &r.texts {
        args.extend(["--text", t.as_str()]);
    }
    let (ok, stdout, stderr) = flyp(&args);
    assert!(ok, "embed on the export failed: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let texts: Vec<Vec<f32>> = serde_json::from_value(json["text_embeds"].clone()).expect("texts");
    for (ours, theirs) in texts.iter().zip(&r.text_embeds) {
        assert!(max_abs_diff(ours, theirs) <= 1e-4);
    }
    let images: Vec<Vec<f32>> =
        serde_json::from_value(json["image_embeds"].clone()).expect("images");
    let at = r
        .images
        .iter()
        .position(|n| n == "rgb48.png")
        .expect("rgb48");
    assert!(max_abs_diff(&images[0], &r.image_embeds[at]) <= 1e-4);
}

pub fn emoji(part: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/emoji-subset")
        .join(part)
        .display()
        .to_string()
}

#[test]
fn train_writes_a_run_folder_and_stops_on_a_diverging_loss() {
    let out = temp_dir("run-ft");
    let model = model_arg();
    let args = [
        "train",
        "--device",
        "cpu",
        "--method",
        "finetune",
        "--model",
        &model,
        "--train",
        &emoji("twemoji"),
        "--eval",
        &format!("noto={}", emoji("noto")),
        "--out",
        arg(&out),
        "--epochs",
        "2",
        "--batch",
        "36",
        "--lr",
        "1e-3",
        "--templates",
        "simple",
    ];
    let (ok, stdout, stderr) = flyp(&args);
    assert!(ok, "train failed: {stderr}");
    assert!(stdout.contains("best epoch"), "{stdout}");
    for file in [
        "config.json",
        "results.json",
        "head.safetensors",
        "model/model.safetensors",
        "model/config.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("results"))
            .expect("json");
    assert_eq!(results["epochs"].as_array().map(Vec::len), Some(2));
    for set in ["val", "test", "noto"] {
        let top1 = results["best"][set]["top1"].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&top1), "{set}: {top1}");
    }

    // WiSE-FT at α = 1 is the fine-tuned model itself.
    let (ok, stdout, stderr) = flyp(&[
        "wise",
        "--device",
        "cpu",
        "--run",
        arg(&out),
        "--alphas",
        "0,1",
    ]);
    assert!(ok, "wise failed: {stderr}");
    assert!(stdout.contains("alpha chosen by val top-1"), "{stdout}");
    let wise: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("wise.json")).expect("wise.json"))
            .expect("json");
    let at_one = wise["curve"][1]["sets"]["val"]["top1"].as_f64();
    assert_eq!(
        at_one,
        results["best"]["val"]["top1"].as_f64(),
        "α = 1 differs from the run's best epoch"
    );

    let out = temp_dir("run-nan");
    let args = [
        "train",
        "--device",
        "cpu",
        "--method",
        "flyp",
        "--model",
        &model,
        "--train",
        &emoji("twemoji"),
        "--out",
        arg(&out),
        "--epochs",
        "3",
        "--batch",
        "36",
        "--lr",
        "1e30",
        "--warmup",
        "1",
        "--templates",
        "simple",
    ];
    let (ok, _, stderr) = flyp(&args);
    assert!(!ok, "a diverging run must fail");
    assert!(stderr.contains("the loss became"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_killed_run_resumes_to_the_same_metrics() {
    let model = model_arg();
    let command = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "train", "--device", "cpu", "--method", "flyp", "--model", &model, "--train",
        ];
        let train = emoji("twemoji");
        let noto = format!("noto={}", emoji("noto"));
        args.extend([train.as_str(), "--eval", noto.as_str(), "--out", arg(out)]);
        args.extend([
            "--epochs",
            "4",
            "--batch",
            "36",
            "--lr",
            "2e-3",
            "--wd",
            "0.01",
            "--warmup",
            "4",
            "--templates",
            "simple",
        ]);
        args.extend(extra);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flyp"));
        cmd.args(&args);
        cmd
    };
    let run = |out: &Path, extra: &[&str]| command(out, extra).output().expect("run flyp");
    let whole = temp_dir("resume-whole");
    assert!(run(&whole, &[]).status.success());
    let cut = temp_dir("resume-cut");
    // Killed (SIGKILL, from here) as soon as epoch 2's checkpoint is in place: inside epoch 3.
    let mut child = command(&cut, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let epoch = || -> Option<u64> {
        let text = std::fs::read_to_string(cut.join("checkpoint/state.json")).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?["epoch"].as_u64()
    };
    while epoch() != Some(2) {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before epoch 2's checkpoint was seen"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cut.join("checkpoint/state.json")).expect("state"),
    )
    .expect("json");
    assert_eq!(
        state["epoch"], 2,
        "the last checkpoint is the end of epoch 2"
    );
    assert!(!cut.join("checkpoint.new").exists() || cut.join("checkpoint").exists());
    let again = run(&cut, &[]);
    assert!(
        !again.status.success(),
        "an existing run must not be overwritten without --resume"
    );
    let resumed = run(&cut, &["--resume"]);
    assert!(
        resumed.status.success(),
        "resume failed: {}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let read = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).expect("results"))
            .expect("json")
    };
    let (a, b) = (read(&whole), read(&cut));
    assert_eq!(a["best_epoch"], b["best_epoch"]);
    for epoch in 0..4 {
        let (ea, eb) = (&a["epochs"][epoch], &b["epochs"][epoch]);
        let (la, lb) = (
            ea["mean_loss"].as_f64().unwrap_or(f64::NAN),
            eb["mean_loss"].as_f64().unwrap_or(f64::NAN),
        );
        assert!(
            (la - lb).abs() <= 1e-6 * la.abs(),
            "epoch {}: loss {la} vs {lb}",
            epoch + 1
        );
        for set in 0..3 {
            assert_eq!(
                ea["evals"][set][1]["top1"],
                eb["evals"][set][1]["top1"],
                "epoch {} set {set}",
                epoch + 1
            );
        }
    }
}

#[test]
fn a_resume_with_another_lr_keeps_the_last_good_checkpoint() {
    let model = model_arg();
    let out = temp_dir("nan-keep");
    let train = emoji("twemoji");
    let base = |epochs: &'static str, lr: &'static str| -> Vec<String> {
        let mut args: Vec<String> = [
            "train", "--device", "cpu", "--method", "flyp", "--model", &model, "--train", &train,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(
            [
                "--out",
                arg(&out),
                "--epochs",
                epochs,
                "--batch",
                "36",
                "--lr",
                lr,
                "--warmup",
                "1",
                "--templates",
                "simple",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        flyp(&refs)
    };
    let (ok, _, stderr) = run(base("2", "1e-3"));
    assert!(ok, "{stderr}");
    let state = || std::fs::read_to_string(out.join("checkpoint/state.json")).expect("state");
    let before = state();
    // A resume must repeat the run's settings: another --lr is refused before anything runs.
    let mut diverge = base("4", "1e30");
    diverge.push("--resume".into());
    let (ok, _, stderr) = run(diverge);
    assert!(
        !ok && stderr.contains("lr: saved 0.001, now 1e+30"),
        "{stderr}"
    );
    assert_eq!(state(), before, "the last good checkpoint changed");
    let mut sane = base("3", "1e-3");
    sane.push("--resume".into());
    let (ok, stdout, stderr) = run(sane);
    assert!(ok, "resuming after the failure: {stderr}");
    assert!(stdout.contains("best epoch"), "{stdout}");
}

#[test]
fn compare_prints_every_method_and_the_wise_ft_curves() {
    let out = temp_dir("compare");
    let model = model_arg();
    let noto = format!("noto={}", emoji("noto"));
    let args = [
        "compare",
        "--device",
        "cpu",
        "--model",
        &model,
        "--train",
        &emoji("twemoji"),
        "--eval",
        &noto,
        "--out",
        arg(&out),
        "--epochs",
        "2",
        "--batch",
        "36",
        "--lr",
        "2e-3",
        "--wd",
        "0.01",
        "--warmup",
        "2",
        "--templates",
        "simple",
        "--alphas",
        "0,0.5,1",
    ];
    let (ok, stdout, stderr) = flyp(&args);
    assert!(ok, "compare failed: {stderr}");
    for line in [
        "zeroshot",
        "linear-probe",
        "finetune",
        "lp-ft",
        "flyp",
        "WiSE-FT curve of flyp",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("compare.json")).expect("compare.json"),
    )
    .expect("json");
    assert!(json["rows"].as_array().is_some_and(|r| r.len() >= 5));
    assert_eq!(
        json["wise"]["flyp"]["curve"].as_array().map(Vec::len),
        Some(3)
    );
    // A compare killed after FLYP's last checkpoint (no results.json, no model/, run.json not
    // finished) is completed by the next call, which reuses the other runs.
    let flyp_run = out.join("flyp");
    let results = std::fs::read_to_string(flyp_run.join("results.json")).expect("results");
    std::fs::remove_file(flyp_run.join("results.json")).expect("rm");
    std::fs::remove_dir_all(flyp_run.join("model")).expect("rm");
    let manifest = std::fs::read_to_string(flyp_run.join("run.json")).expect("run.json");
    std::fs::write(
        flyp_run.join("run.json"),
        manifest.replace("\"finished\": true", "\"finished\": false"),
    )
    .expect("write");
    let (ok, _, stderr) = flyp(&args);
    assert!(ok, "the second compare failed: {stderr}");
    let again = std::fs::read_to_string(flyp_run.join("results.json")).expect("results");
    let best =
        |t: &str| serde_json::from_str::<serde_json::Value>(t).expect("json")["best"].clone();
    assert_eq!(best(&again), best(&results));
}

/// Every registered method reaches the CLI: `flyp train --help` lists it with what it does,
/// `--method` accepts its name and aliases, `flyp compare --methods` lists it, and an unknown name
/// is refused naming every method.
#[test]
fn every_registered_method_is_offered_by_the_cli() {
    let (ok, help, _) = flyp(&["train", "--help"]);
    assert!(ok);
    let (ok, compare_help, _) = flyp(&["compare", "--help"]);
    assert!(ok);
    for method in flyp::methods::ALL {
        assert!(
            help.contains(method.name()),
            "train --help lacks {}",
            method.name()
        );
        assert!(
            help.contains(method.about()),
            "train --help lacks what {} does",
            method.name()
        );
        assert!(
            compare_help.contains(method.name()),
            "compare --help lacks {}",
            method.name()
        );
        for alias in method.aliases() {
            // A name that parses reaches the run (which then fails on the missing model).
            let (_, _, stderr) = flyp(&[
                "train",
                "--method",
                alias,
                "--model",
                "/nonexistent",
                "--train",
                "/nonexistent",
                "--out",
                "/nonexistent/out",
            ]);
            assert!(
                !stderr.contains("invalid value"),
                "--method {alias}: {stderr}"
            );
        }
    }
    let (ok, _, stderr) = flyp(&[
        "train", "--method", "sgd", "--model", "m", "--train", "t", "--out", "o",
    ]);
    assert!(!ok);
    for method in flyp::methods::ALL {
        assert!(
            stderr.contains(method.name()),
            "the refusal of 'sgd' does not name {}: {stderr}",
            method.name()
        );
    }
}
