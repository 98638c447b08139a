//! The app drawn offscreen by egui_kittest on wgpu (llvmpipe in CI), through eframe's creation
//! path, so the window's renderer and adapter hand-over are exercised; then driven as a user
//! would: the bundled demo data, Start, live curves, frame times while training.

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use flyp_studio::app::Studio;

fn harness() -> Harness<'static, Studio> {
    let mut harness = Harness::builder()
        .with_size(eframe::egui::Vec2::new(1200.0, 760.0))
        .wgpu()
        .build_eframe(|cc| Studio::new(cc));
    harness.run();
    harness
}

/// Step the app (the worker threads run meanwhile) until `done` holds, failing with `what` after
/// `secs` seconds.
fn step_until(
    harness: &mut Harness<'_, Studio>,
    secs: u64,
    what: &str,
    done: impl Fn(&Studio) -> bool,
) {
    let started = Instant::now();
    while !done(harness.state()) {
        assert!(started.elapsed() < Duration::from_secs(secs), "{what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// With FLYP_SCREENSHOTS=DIR, save what the window shows as DIR/NAME.png (for docs/).
fn screenshot(harness: &mut Harness<'_, Studio>, name: &str) {
    if let Ok(dir) = std::env::var("FLYP_SCREENSHOTS") {
        let image = harness.render().expect("render");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        image
            .save(std::path::Path::new(&dir).join(format!("{name}.png")))
            .expect("save screenshot");
    }
}

#[test]
fn window_opens_on_wgpu_and_names_its_adapter() {
    let mut harness = harness();
    harness.get_by_label("flyp-studio");
    let adapter = harness.state().adapter.clone();
    let adapter = adapter.expect("eframe reported no wgpu adapter");
    assert!(!adapter.is_empty());
    harness.get_by_label(&format!("Drawing on: {adapter}"));
    assert!(
        harness
            .query_by_label("Drawing on: (no wgpu adapter reported)")
            .is_none()
    );
    screenshot(&mut harness, "start");
}

#[test]
fn a_short_run_on_the_demo_data_updates_the_curves_and_frames_stay_fast() {
    let mut harness = harness();
    harness.get_by_label("Use the bundled demo data").click();
    harness.step(); // not run(): the scan's spinner repaints until the scan ends
    // The scan report of the demo data (decoded on the "flyp-scan" thread).
    step_until(&mut harness, 120, "scan did not finish", |s| {
        !s.is_scanning()
    });
    harness.run();
    harness.get_by_label(
        "9 classes · 216 train, 72 val, 72 test images · 0 skipped (train/val/test folders)",
    );
    harness.get_by_label("Images per class").click();
    harness.run();
    harness.get_by_label("smileys and emotion");
    screenshot(&mut harness, "scan");
    harness.state_mut().spec.epochs = 2;
    harness.get_by_label("Start").click();
    let started = Instant::now();
    let mut frames = Vec::new();
    let mut seen_steps_before_end = false;
    while harness.state().progress.outcome.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the run did not finish in 10 minutes"
        );
        let t = Instant::now();
        harness.step();
        frames.push(t.elapsed().as_secs_f64() * 1e3);
        let p = &harness.state().progress;
        if !p.steps.is_empty() && p.epochs.len() < 2 {
            seen_steps_before_end = true;
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    harness.run();
    let progress = harness.state().progress.clone();
    assert!(!progress.failed, "{:?}", progress.outcome);
    assert!(seen_steps_before_end, "no live step before the run ended");
    assert_eq!(progress.epochs.len(), 2, "two epoch reports");
    assert_eq!(progress.sets, ["val", "test", "ood"]);
    let total = progress.steps.last().expect("steps").total;
    assert_eq!(progress.steps.len(), total, "one event per step");
    for report in &progress.epochs {
        assert_eq!(report.evals.len(), 3);
        assert!(
            report
                .evals
                .iter()
                .all(|(_, m)| m.top1 > 0.0 && m.top1 <= 1.0)
        );
    }
    harness.get_by_label_contains("epoch 2/2");
    harness.get_by_label_contains("finished in");
    screenshot(&mut harness, "training");
    // The embedding view: every test and OOD image and one prompt per class, before and after.
    let e = progress
        .embeddings
        .clone()
        .expect("embeddings after the run");
    let images = progress.epochs[0].evals[1].1.images + progress.epochs[0].evals[2].1.images;
    assert_eq!(e.images.len(), images);
    assert_eq!(e.before.len(), images + e.classes.len());
    assert_eq!(e.after.len(), e.before.len());
    let moved = e
        .before
        .iter()
        .zip(&e.after)
        .filter(|(b, a)| b.iter().zip(a.iter()).any(|(x, y)| (x - y).abs() > 1e-4))
        .count();
    assert!(
        moved > images / 2,
        "fine-tuning moved only {moved} embeddings"
    );
    harness.get_by_label("Embeddings").click();
    harness.run();
    let (before, after) = flyp_studio::app::project(&e, false).expect("projection");
    assert_eq!(before.len(), e.before.len());
    assert_ne!(before, after);
    harness.get_by_label("Center each modality").click();
    harness.run();
    assert!(harness.state().center_modalities);
    screenshot(&mut harness, "embeddings");
    // Results: WiSE-FT at α = 1 is the fine-tuned (best-epoch) model: the same accuracies as
    // that epoch's report; moving the slider re-evaluates.
    harness.get_by_label("Results").click();
    let best = progress
        .epochs
        .iter()
        .max_by(|a, b| a.evals[0].1.top1.total_cmp(&b.evals[0].1.top1))
        .expect("epochs")
        .clone();
    let wait_for = |harness: &mut Harness<'_, Studio>, alpha: f64| {
        step_until(
            harness,
            300,
            &format!("no WiSE-FT answer for {alpha}"),
            |s| s.progress.wise.iter().any(|(a, _)| *a == alpha),
        );
        harness.run();
    };
    wait_for(&mut harness, 1.0);
    let at_one = harness.state().progress.wise[0].1.clone();
    for ((name, m), (_, r)) in at_one.iter().zip(&best.evals) {
        assert!(
            (m.top1 - r.top1).abs() < 1e-9,
            "{name}: α=1 {} vs epoch {} {}",
            m.top1,
            best.epoch,
            r.top1
        );
    }
    // The whole curve is filled in the background: α = 0 … 1 in tenths.
    for k in 0..=10 {
        wait_for(&mut harness, k as f64 / 10.0);
    }
    // A slider position off that grid is evaluated when set.
    harness.state_mut().alpha = 0.55;
    harness.run();
    wait_for(&mut harness, 0.55);
    harness.get_by_label("top-1 at α = 0.55");
    let at_half = harness
        .state()
        .progress
        .wise
        .iter()
        .find(|(a, _)| *a == 0.55)
        .expect("0.55")
        .1
        .clone();
    assert_eq!(at_half.len(), 3);
    assert!(at_half.iter().all(|(_, m)| m.top1 > 0.0 && m.top1 <= 1.0));
    harness
        .get_by_label("Confusion matrix and per-class precision / recall")
        .click();
    harness.run();
    harness.get_by_label("ood: rows true, columns predicted");
    // Each confusion row sums to the images of that class in the set.
    let ood = &at_half[2].1;
    assert_eq!(ood.confusion.iter().flatten().sum::<usize>(), ood.images);
    // Try an image: a Noto flag's top-5 at this α, most probable first, from the run's model.
    let flag = std::fs::read_dir(flyp_studio::app::bundled("assets/emoji-subset/noto/flags"))
        .expect("noto flags")
        .next()
        .expect("a file")
        .expect("entry")
        .path();
    harness.state_mut().try_image = flag.clone();
    harness.get_by_label("Classify").click();
    harness.step(); // the click is handled: the previous answer is cleared
    step_until(&mut harness, 120, "no answer to Classify", |s| {
        s.progress.classified.is_some()
    });
    harness.run();
    let (path, alpha, top) = harness
        .state()
        .progress
        .classified
        .clone()
        .expect("answer")
        .expect("classified");
    assert_eq!((path, alpha), (flag, 0.55));
    assert_eq!(top.len(), 5);
    assert!(top.windows(2).all(|w| w[0].1 >= w[1].1), "{top:?}");
    let total: f64 = top.iter().map(|t| t.1).sum();
    assert!(total > 0.0 && total <= 1.0 + 1e-6, "{top:?}");
    harness.get_by_label("probability");
    screenshot(&mut harness, "try");
    // A file that is not an image: one line naming it, and the run stays usable.
    harness.state_mut().try_image = flyp_studio::app::bundled("README.md");
    harness.get_by_label("Classify").click();
    harness.step(); // the click is handled: the previous answer is cleared
    step_until(&mut harness, 60, "no answer to Classify", |s| {
        s.progress.classified.is_some()
    });
    harness.run();
    let error = harness
        .state()
        .progress
        .classified
        .clone()
        .expect("answer")
        .expect_err("not an image");
    assert!(error.contains("README.md"), "{error}");
    assert!(!harness.state().progress.failed);
    // Export: model/ at α = 0.55 and results.json; the written model scores the OOD set exactly as
    // the slider's evaluation did.
    let out = std::env::temp_dir().join(format!("flyp-studio-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    harness.state_mut().export_dir = out.clone();
    harness.get_by_label("Export").click();
    harness.step();
    step_until(&mut harness, 120, "no answer to Export", |s| {
        s.progress.exported.is_some()
    });
    harness.run();
    let written = harness
        .state()
        .progress
        .exported
        .clone()
        .expect("answer")
        .expect("exported");
    assert_eq!(written, out.join("model"));
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).expect("results.json"),
    )
    .expect("json");
    assert_eq!(results["epochs"].as_array().map(Vec::len), Some(2));
    assert_eq!(results["alpha"], 0.55);
    let device = flyp::ComputeDevice::flex();
    let clip = flyp::Clip::load(&out.join("model"), &device).expect("exported model loads");
    let scan = flyp::data::Scan::folder(&flyp_studio::app::bundled("assets/emoji-subset/twemoji"))
        .expect("scan");
    let (ood, _) = flyp::data::Scan::folder(&flyp_studio::app::bundled("assets/emoji-subset/noto"))
        .expect("scan noto")
        .align_to(&scan.classes)
        .expect("classes");
    let head = flyp::methods::zeroshot::zero_shot_head(
        &clip,
        &scan.prompt_names,
        &flyp::data::prompts::Templates::emoji(),
    )
    .expect("head");
    let (m, _) = flyp::methods::zeroshot::evaluate(&clip, &head, &ood, 64).expect("eval");
    assert!(
        (m.top1 - at_half[2].1.top1).abs() < 1e-9,
        "exported {} vs slider {}",
        m.top1,
        at_half[2].1.top1
    );
    screenshot(&mut harness, "results");
    // The UI thread never waits on training: every frame's work stays under 50 ms.
    frames.sort_by(f64::total_cmp);
    let max = frames.last().copied().unwrap_or(0.0);
    let median = frames[frames.len() / 2];
    eprintln!(
        "{} frames while training: median {median:.2} ms, max {max:.2} ms",
        frames.len()
    );
    assert!(max < 50.0, "slowest frame {max:.1} ms");
}
