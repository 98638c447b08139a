//! The app drawn offscreen by egui_kittest on wgpu (llvmpipe in CI), through eframe's creation
//! path, so the window's renderer and adapter hand-over are exercised; then driven as a user
//! would: the bundled demo data, Start, live curves, frames while training.

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use flyp::train::engine::EpochReport;
use flyp_studio::app::Studio;

/// The app as `flyp-studio` opens it: its window's wgpu device requested with what burn needs.
fn harness() -> Harness<'static, Studio> {
    let setup = flyp_studio::compute::share_with_burn(egui_kittest::wgpu::default_wgpu_setup());
    let mut harness = Harness::builder()
        .with_size(eframe::egui::Vec2::new(1200.0, 760.0))
        .wgpu_setup(setup)
        .build_eframe(|cc| Studio::new(cc));
    harness.run();
    harness
}

/// A folder dropped on the window (what winit hands eframe).
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl eframe::egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        Err("a folder".into())
    }
}

/// Let the frame ask for its thumbnails, wait for them, then run until nothing repaints.
/// (A thumbnail can be asked for only once the previous ones are laid out, and the decoding
/// thread's wake-up can come a frame after its thumbnail: so retry until a run settles.)
fn settle(harness: &mut Harness<'_, Studio>) {
    let started = Instant::now();
    loop {
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
        if harness.state().thumbs.settled() && harness.try_run().is_ok() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "thumbnails did not arrive"
        );
    }
}

/// The prompt-head (emoji templates) top-1 of the CLIP folder `model` on the bundled Noto set,
/// computed by the library directly, to check the app's numbers against.
fn noto_zero_shot_top1(model: &std::path::Path) -> f64 {
    let clip = flyp::Clip::load(model, &flyp::ComputeDevice::flex()).expect("model loads");
    let scan = flyp::data::Scan::folder(&flyp_studio::app::bundled("assets/emoji-subset/twemoji"))
        .expect("scan");
    let (ood, _) = flyp::data::Scan::folder(&flyp_studio::app::bundled("assets/emoji-subset/noto"))
        .expect("scan noto")
        .align_to(&scan.classes)
        .expect("classes");
    let head = flyp::methods::head::ClassHead::zero_shot(
        &clip,
        &scan.prompt_names,
        &flyp::data::prompts::Templates::emoji(),
    )
    .expect("head");
    let (m, _) = flyp::methods::zeroshot::evaluate(&clip, &head, &ood, 64).expect("eval");
    m.top1
}

/// Run until the run reports its outcome (at most `secs` seconds).
fn until_outcome(harness: &mut Harness<'_, Studio>, secs: u64) {
    let started = Instant::now();
    // A started run takes the screen once it trains: until then `jobs.next` holds it.
    while harness.state().progress.outcome.is_none() || harness.state().jobs.next.is_some() {
        let p = &harness.state().progress;
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "the run did not end: running {}, device {:?}, {} steps, {} epochs",
            harness.state().is_running(),
            p.device,
            p.steps.len(),
            p.epochs.len()
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run();
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

/// Click the button `label`, let the click be handled (it clears the previous answer), then step
/// until `answered` holds (at most `secs` seconds).
fn click_and_wait(
    harness: &mut Harness<'_, Studio>,
    label: &str,
    secs: u64,
    answered: impl Fn(&Studio) -> bool,
) {
    harness.get_by_label(label).click();
    harness.step();
    step_until(harness, secs, &format!("no answer to {label}"), answered);
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
fn a_short_run_on_the_demo_data_updates_the_curves_while_frames_keep_coming() {
    let mut harness = harness();
    harness.get_by_label("Use the bundled demo data").click();
    harness.step(); // not run(): the scan's spinner repaints until the scan ends
    // The scan report of the demo data (decoded on the "flyp-scan" thread).
    step_until(&mut harness, 120, "scan did not finish", |s| {
        !s.is_scanning()
    });
    harness.run();
    harness.get_by_label(
        "49 classes · 396 train, 99 val, 439 test images · 0 skipped (train/val/test folders)",
    );
    harness.get_by_label("Images per class").click();
    harness.run();
    harness.get_by_label("animal mammal");
    // A few thumbnails per class, decoded on the "flyp-thumbs" thread.
    harness.get_by_label("Thumbnails per class").click();
    settle(&mut harness);
    screenshot(&mut harness, "scan");
    // Drop a second OOD folder on the window (the ID test folder itself: it must score exactly
    // as the test set does): the app asks what it is.
    let extra = flyp_studio::app::bundled("assets/emoji-subset/twemoji/test");
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(extra.clone())));
    harness.run();
    harness.get_by_label("A folder was dropped");
    screenshot(&mut harness, "drop");
    harness.get_by_label("Add as an OOD set").click();
    harness.run();
    assert_eq!(
        harness.state().settings.spec.data.evals,
        [
            (
                "noto".to_string(),
                flyp_studio::app::bundled("assets/emoji-subset/noto")
            ),
            (
                "unseen-styles".to_string(),
                flyp_studio::app::bundled("assets/emoji-subset/unseen-styles")
            ),
            ("test-2".to_string(), extra)
        ]
    );
    assert!(harness.query_by_label("A folder was dropped").is_none());
    harness.state_mut().settings.spec.hyper.epochs = 2;
    harness.get_by_label("Start").click();
    let started = Instant::now();
    let mut frames = Vec::new();
    let mut seen_steps_before_end = false;
    // Pause after two steps: no step may arrive while paused (one already under way may finish).
    let mut paused_at: Option<(Instant, usize)> = None;
    let mut resumed = false;
    // A started run takes the screen once it trains: until then `jobs.next` holds it.
    while harness.state().progress.outcome.is_none() || harness.state().jobs.next.is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the run did not finish in 10 minutes"
        );
        let t = Instant::now();
        harness.step();
        frames.push(t.elapsed().as_secs_f64() * 1e3);
        let p = &harness.state().progress;
        let steps = p.steps.len();
        if steps > 0 && p.epochs.len() < 2 {
            seen_steps_before_end = true;
        }
        match paused_at {
            None if steps >= 2 && p.epochs.is_empty() => {
                harness.get_by_label("Pause").click();
                paused_at = Some((Instant::now(), usize::MAX));
            }
            Some((when, usize::MAX)) if when.elapsed() > Duration::from_millis(1500) => {
                // Whatever step was under way has ended by now.
                paused_at = Some((Instant::now(), steps));
            }
            Some((when, held)) if held != usize::MAX && !resumed => {
                assert!(harness.state().is_paused());
                assert_eq!(steps, held, "a step ran while paused");
                if when.elapsed() > Duration::from_millis(1500) {
                    harness.get_by_label_contains("paused");
                    harness.get_by_label("Resume").click();
                    resumed = true;
                }
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    assert!(
        resumed,
        "the run ended before it could be paused and resumed"
    );
    harness.run();
    let progress = harness.state().progress.clone();
    assert!(!progress.failed, "{:?}", progress.outcome);
    assert!(seen_steps_before_end, "no live step before the run ended");
    assert_eq!(progress.epochs.len(), 2, "two epoch reports");
    assert_eq!(
        progress.sets,
        ["val", "test", "noto", "unseen-styles", "test-2"]
    );
    let total = progress.steps.last().expect("steps").total;
    assert_eq!(progress.steps.len(), total, "one event per step");
    for report in &progress.epochs {
        assert_eq!(report.evals.len(), 5);
        assert_eq!(
            report.evals[1].1.top1, report.evals[4].1.top1,
            "test vs test-2"
        );
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
    // Each set's share of the map: at most MAP_IMAGES_PER_SET, evenly through the set.
    let cap = flyp_studio::worker::MAP_IMAGES_PER_SET;
    let images: usize = progress.epochs[0].evals[1..]
        .iter()
        .map(|(_, m)| m.images.div_ceil(m.images.div_ceil(cap).max(1)))
        .sum();
    assert_eq!(e.images.len(), images);
    assert_eq!(e.paths.len(), images);
    let (before, after) = (e.at(0.0).expect("α 0"), e.at(1.0).expect("α 1"));
    assert_eq!(before.len(), images + e.classes.len());
    assert_eq!(after.len(), before.len());
    let moved = before
        .iter()
        .zip(after)
        .filter(|(b, a)| b.iter().zip(a.iter()).any(|(x, y)| (x - y).abs() > 1e-4))
        .count();
    assert!(
        moved > images / 2,
        "fine-tuning moved only {moved} embeddings"
    );
    harness.get_by_label("Embeddings").click();
    harness.run();
    // The embeddings at α = 0.1 … 0.9 follow in the background.
    step_until(
        &mut harness,
        300,
        "embeddings along α did not arrive",
        |s| {
            s.progress
                .embeddings
                .as_ref()
                .is_some_and(|e| e.frames.len() == 11)
        },
    );
    harness.run();
    let e = harness
        .state()
        .progress
        .embeddings
        .clone()
        .expect("embeddings");
    let projected = flyp_studio::app::project(&e, false).expect("projection");
    assert_eq!(projected.len(), 11);
    let start = flyp_studio::app::positions_at(&projected, 0.0);
    let end = flyp_studio::app::positions_at(&projected, 1.0);
    assert_eq!(start.len(), e.at(0.0).expect("α 0").len());
    assert_ne!(start, end);
    // Halfway between two computed α, positions are the mean of theirs.
    let (p, q) = (
        flyp_studio::app::positions_at(&projected, 0.3),
        flyp_studio::app::positions_at(&projected, 0.4),
    );
    let mid = flyp_studio::app::positions_at(&projected, 0.35);
    assert!((mid[0][0] - (p[0][0] + q[0][0]) / 2.0).abs() < 1e-9);
    // Play moves α from 0 towards 1.
    harness.state_mut().embed_view.alpha = 1.0;
    harness.get_by_label("Play").click();
    for _ in 0..10 {
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let alpha = harness.state().embed_view.alpha;
    assert!(
        harness.state().embed_view.playing && alpha > 0.0 && alpha < 1.0,
        "α {alpha}"
    );
    harness.get_by_label("Stop playing").click();
    harness.step();
    assert!(!harness.state().embed_view.playing);
    harness.state_mut().embed_view.alpha = 1.0;
    harness.run();
    // The map settles: its bounds stay from frame to frame (the 49 classes' prompt labels are
    // painted over it, so pushing them aside does not move the bounds).
    let bounds = |h: &Harness<'_, Studio>| h.state().embed_view.transform.map(|t| *t.bounds());
    let settled = bounds(&harness);
    harness.run();
    assert_eq!(bounds(&harness), settled, "the map's bounds moved");
    // Hovering an image shows its thumbnail, class and set.
    let at = harness.state().embed_view.points[0];
    harness.hover_at(at);
    settle(&mut harness);
    let hovered = harness
        .state()
        .embed_view
        .hovered
        .expect("an image under the pointer");
    assert!(harness.state().embed_view.points[hovered].distance(at) < 8.0);
    let (class, set) = e.images[hovered].clone();
    harness.get_by_label(&format!("{} ({set})", e.classes[class]));
    screenshot(&mut harness, "hover");
    harness.remove_cursor();
    harness.get_by_label("Center each modality").click();
    harness.run();
    assert!(harness.state().embed_view.center_modalities);
    // The numbers beside the map, and "show one class".
    harness.get_by_label_contains("Nearest prompt at α = ");
    harness
        .get_by_role_and_label(eframe::egui::accesskit::Role::ComboBox, "Show one class")
        .click();
    harness.run();
    harness
        .get_by_label(&format!("only {}", e.classes[1]))
        .click();
    harness.run();
    assert_eq!(harness.state().embed_view.focus, Some(1));
    // Every prompt on one spot: each label gets a place of its own while places last.
    let transform = harness.state().embed_view.transform.expect("drawn");
    let stars = vec![[0.0, 0.0]; e.classes.len()];
    let labels = flyp_studio::app::place_labels(&stars, &e.classes, &transform);
    for i in 0..labels.len().min(8) {
        for j in 0..i {
            assert_ne!(labels[i], labels[j], "labels {i} and {j} share a place");
        }
    }
    harness.state_mut().embed_view.focus = None;
    harness.run();
    screenshot(&mut harness, "embeddings");
    // t-SNE of all 11 α frames together, fitted on its own thread.
    harness.state_mut().embed_view.projection = flyp_studio::app::Projection::Tsne;
    harness.step();
    step_until(&mut harness, 300, "t-SNE did not finish", |s| {
        s.shown_projection() == Some(flyp_studio::app::Projection::Tsne)
    });
    harness.run();
    screenshot(&mut harness, "tsne");
    harness.state_mut().embed_view.projection = flyp_studio::app::Projection::Pca;
    harness.run();
    // Back to t-SNE: the run's fit is kept, nothing is fitted again.
    harness.state_mut().embed_view.projection = flyp_studio::app::Projection::Tsne;
    harness.run();
    assert!(!harness.state().is_fitting_tsne());
    assert_eq!(
        harness.state().shown_projection(),
        Some(flyp_studio::app::Projection::Tsne)
    );
    // A new fit (not centred) shows its progress; choosing PCA cancels it.
    harness.state_mut().embed_view.center_modalities = false;
    harness.step();
    harness.step();
    assert!(harness.state().is_fitting_tsne());
    harness.get_by_label_contains("(choose PCA to cancel)");
    let fit = harness.state().embed_view.tsne_progress.clone();
    harness.state_mut().embed_view.projection = flyp_studio::app::Projection::Pca;
    harness.run();
    assert!(!harness.state().is_fitting_tsne());
    assert!(harness.query_by_label_contains("fitting t-SNE").is_none());
    std::thread::sleep(Duration::from_millis(500));
    let stopped_at = fit.load(std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        fit.load(std::sync::atomic::Ordering::Relaxed),
        stopped_at,
        "the fit went on"
    );
    assert!(stopped_at < flyp_studio::app::TSNE_ITERATIONS);
    harness.state_mut().embed_view.center_modalities = true;
    harness.run();
    // Results: WiSE-FT at α = 1 is the fine-tuned (best-epoch) model: the same accuracies as
    // that epoch's report; moving the slider re-evaluates.
    harness.get_by_label("Results").click();
    // The run keeps the first epoch with the best validation top-1 (a later tie is no better).
    let best = progress
        .epochs
        .iter()
        .fold(None::<&EpochReport>, |kept, e| match kept {
            Some(k) if k.evals[0].1.top1 >= e.evals[0].1.top1 => Some(k),
            _ => Some(e),
        })
        .expect("epochs")
        .clone();
    let wait_for = |harness: &mut Harness<'_, Studio>, alpha: f64| {
        step_until(
            harness,
            300,
            &format!("no WiSE-FT answer for {alpha}"),
            |s| s.progress.wise.iter().any(|w| w.alpha == alpha),
        );
        harness.run();
    };
    wait_for(&mut harness, 1.0);
    let at_one = harness.state().progress.wise[0].sets.clone();
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
    harness.state_mut().results_view.alpha = 0.55;
    harness.run();
    wait_for(&mut harness, 0.55);
    harness.get_by_label("top-1 at α = 0.55");
    let at_half = harness
        .state()
        .progress
        .wise
        .iter()
        .find(|w| w.alpha == 0.55)
        .expect("0.55")
        .clone();
    let point = at_half.clone();
    let at_half = at_half.sets;
    assert_eq!(at_half.len(), 5);
    // The ID-vs-OOD point: test top-1 against the mean of the three OOD sets.
    let (id, ood) = point.id_ood().expect("ID and OOD");
    assert!((id - 100.0 * at_half[1].1.top1).abs() < 1e-9);
    let ood_mean = 100.0 * at_half[2..].iter().map(|(_, m)| m.top1).sum::<f64>() / 3.0;
    assert!((ood - ood_mean).abs() < 1e-9, "{ood} vs {ood_mean}");
    assert!(at_half.iter().all(|(_, m)| m.top1 > 0.0 && m.top1 <= 1.0));
    harness
        .get_by_label("Confusion matrix and per-class precision / recall")
        .click();
    harness.run();
    // One line, never broken letter by letter in a narrow column.
    let title = harness
        .get_by_label("noto: rows true, columns predicted")
        .rect();
    assert!(title.width() > 4.0 * title.height(), "{title:?}");
    // Each confusion row sums to the images of that class in the set.
    let ood = &at_half[2].1;
    assert_eq!(ood.confusion.iter().flatten().sum::<usize>(), ood.images);
    // A cell opens its images: the most frequent confusion of the OOD set.
    let (t, q, n) = (0..ood.confusion.len())
        .flat_map(|t| (0..ood.confusion.len()).map(move |q| (t, q)))
        .filter(|(t, q)| t != q)
        .map(|(t, q)| (t, q, ood.confusion[t][q]))
        .max_by_key(|c| c.2)
        .expect("cells");
    assert!(n > 0, "no OOD image misclassified");
    harness.state_mut().results_view.open_cell = Some((2, t, q));
    settle(&mut harness);
    let classes = &harness.state().progress.classes.clone();
    harness.get_by_label(&format!(
        "noto: {n} image(s) of {} predicted as {} at α = 0.55",
        classes[t], classes[q]
    ));
    harness.get_by_label("Images of one confusion cell");
    let paths = flyp_studio::app::cell_paths(&harness.state().progress, &point, 2, t, q);
    assert_eq!(paths.len(), n);
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with(flyp_studio::app::bundled("assets/emoji-subset/noto")))
    );
    screenshot(&mut harness, "confusion");
    // Try an image: a Noto flag's top-5 at this α, most probable first, from the run's model.
    let flag = std::fs::read_dir(flyp_studio::app::bundled(
        "assets/emoji-subset/noto/country_flag",
    ))
    .expect("noto flags")
    .next()
    .expect("a file")
    .expect("entry")
    .path();
    harness.state_mut().results_view.try_image = flag.clone();
    click_and_wait(&mut harness, "Classify", 120, |s| {
        s.progress.classified.is_some()
    });
    settle(&mut harness);
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
    // The answer follows the slider: at α = 0.3 it is asked again, and says so.
    harness.state_mut().results_view.alpha = 0.3;
    harness.step();
    step_until(
        &mut harness,
        120,
        "try an image did not follow α",
        |s| matches!(&s.progress.classified, Some(Ok((_, a, _))) if (a - 0.3).abs() < 1e-9),
    );
    harness.run();
    harness.get_by_label_contains("at α = 0.30");
    harness.state_mut().results_view.alpha = 0.55;
    harness.step();
    step_until(
        &mut harness,
        120,
        "try an image did not follow α back",
        |s| matches!(&s.progress.classified, Some(Ok((_, a, _))) if (a - 0.55).abs() < 1e-9),
    );
    // A file that is not an image: one line naming it, and the run stays usable.
    harness.state_mut().results_view.try_image = flyp_studio::app::bundled("README.md");
    click_and_wait(&mut harness, "Classify", 60, |s| {
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
    click_and_wait(&mut harness, "Export", 120, |s| {
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
    assert_eq!(results["exported_alpha"], 0.55);
    // The CLI's schema, read by the CLI's type, with the α points the slider evaluated.
    let typed = flyp::train::RunResults::read(&out.join("results.json")).expect("RunResults");
    assert_eq!(typed.schema, flyp::train::RunResults::SCHEMA);
    assert!(
        typed.wise.iter().any(|w| w.alpha == 0.55),
        "{:?}",
        typed.wise.len()
    );
    let top1 = noto_zero_shot_top1(&out.join("model"));
    assert!(
        (top1 - at_half[2].1.top1).abs() < 1e-9,
        "exported {} vs slider {}",
        top1,
        at_half[2].1.top1
    );
    screenshot(&mut harness, "results");
    // Frame times while training are printed, not asserted: a shared CI machine makes any bound
    // a timed test (speed is for benchmarks). That the UI thread never waits on training is
    // asserted above: frames keep coming while the run is paused and while it steps.
    frames.sort_by(f64::total_cmp);
    let max = frames.last().copied().unwrap_or(0.0);
    let median = frames[frames.len() / 2];
    eprintln!(
        "{} frames while training: median {median:.2} ms, max {max:.2} ms",
        frames.len()
    );
}

/// "Compute: GPU" trains on the window's own wgpu device (llvmpipe here): burn registers
/// eframe's device instead of opening a second one, and the run's numbers match the same run on
/// the CPU backend.
#[test]
fn training_on_the_window_s_wgpu_device_matches_the_cpu_backend() {
    let mut harness = harness();
    let gpu = harness
        .state()
        .gpu
        .as_ref()
        .expect("a wgpu window")
        .name
        .clone();
    let run = |harness: &mut Harness<'_, Studio>,
               choice: flyp::DeviceChoice,
               precision: flyp::model::Precision| {
        let studio = harness.state_mut();
        studio.settings.compute = choice;
        studio.settings.spec.precision = precision;
        studio.settings.spec.model = flyp_studio::app::bundled("tests/fixtures/tiny-a");
        studio.settings.spec.templates = "simple".into();
        studio.settings.spec.method = &flyp::methods::finetune::Finetune;
        studio.settings.spec.hyper.epochs = 1;
        studio.settings.spec.hyper.batch = 72;
        studio.settings.spec.data.evals.clear();
        harness.get_by_label("Start").click();
        harness.step();
        until_outcome(harness, 400);
        let progress = harness.state().progress.clone();
        assert!(!progress.failed, "{:?}", progress.outcome);
        progress
    };
    let t = Instant::now();
    let on_gpu = run(
        &mut harness,
        flyp::DeviceChoice::Gpu,
        flyp::model::Precision::F32,
    );
    eprintln!(
        "on the window's wgpu device: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert!(
        on_gpu.device.contains(&gpu) && on_gpu.device.contains("shared with the window"),
        "{}",
        on_gpu.device
    );
    harness.get_by_label(&format!("Training on: {}", on_gpu.device));
    let on_cpu = run(
        &mut harness,
        flyp::DeviceChoice::Cpu,
        flyp::model::Precision::F32,
    );
    assert!(on_cpu.device.contains("Flex"), "{}", on_cpu.device);
    // The Precision setting reaches the loop: mixed precision follows f32 to f16 rounding.
    harness.get_by_label("Precision");
    let mixed = run(
        &mut harness,
        flyp::DeviceChoice::Cpu,
        flyp::model::Precision::Mixed,
    );
    assert!(
        mixed.device.contains("Flex") && mixed.device.contains("mixed precision"),
        "{}",
        mixed.device
    );
    assert_eq!(mixed.steps.len(), on_cpu.steps.len());
    let first = (mixed.steps[0].loss - on_cpu.steps[0].loss).abs();
    assert!(
        first > 0.0 && first < 1e-2 * on_cpu.steps[0].loss.abs().max(1.0),
        "first step: mixed {} vs f32 {}",
        mixed.steps[0].loss,
        on_cpu.steps[0].loss
    );
    // The same seed and data: the losses agree to float tolerance across backends.
    assert_eq!(on_gpu.steps.len(), on_cpu.steps.len());
    for (g, c) in on_gpu.steps.iter().zip(&on_cpu.steps) {
        assert!(
            (g.loss - c.loss).abs() < 1e-3 * c.loss.abs().max(1.0),
            "step {}: wgpu {} vs Flex {}",
            g.step,
            g.loss,
            c.loss
        );
    }
}

/// The linear probe in the app: its reported metrics are what WiSE-FT at α = 1 gives (the probe's
/// head) and α = 0 is zero-shot; no weights train, so the curves view has no steps.
#[test]
fn the_linear_probe_runs_in_the_app_and_wise_interpolates_its_head() {
    let mut harness = harness();
    harness.state_mut().settings.compute = flyp::DeviceChoice::Cpu;
    harness.state_mut().settings.spec.method = &flyp::methods::linear_probe::LinearProbe;
    harness.get_by_label("Start").click();
    harness.step();
    until_outcome(&mut harness, 300);
    let progress = harness.state().progress.clone();
    assert!(!progress.failed, "{:?}", progress.outcome);
    assert!(progress.steps.is_empty() && progress.epochs.is_empty());
    let (_, probed) = progress.probe.clone().expect("probe metrics");
    harness.get_by_label_contains("linear probe (L2");
    harness.get_by_label("Results").click();
    for alpha in [0.0, 1.0] {
        step_until(&mut harness, 120, "no WiSE answer", |s| {
            s.progress.wise.iter().any(|w| w.alpha == alpha)
        });
    }
    harness.run();
    let at = |alpha: f64| {
        let p = &harness.state().progress;
        p.wise
            .iter()
            .find(|w| w.alpha == alpha)
            .expect("α")
            .sets
            .clone()
    };
    for ((name, m), (_, probe)) in at(1.0).iter().zip(&probed) {
        assert!(
            (m.top1 - probe.top1).abs() < 1e-9,
            "{name}: {} vs {}",
            m.top1,
            probe.top1
        );
    }
    // α = 0: the demo model's zero-shot accuracy on the Noto set (see the README: 55.8 %).
    let zero = at(0.0);
    let noto = zero.iter().find(|(n, _)| n == "noto").expect("noto").1.top1;
    let top1 = noto_zero_shot_top1(&flyp_studio::app::bundled("assets/demo-model"));
    assert!((noto - top1).abs() < 1e-9, "α 0 {noto} vs zero-shot {top1}");
    screenshot(&mut harness, "linear-probe");
}

/// A Hub id with no network: the Download button reports one line saying so, and the model
/// setting is left as it was.
#[test]
fn downloading_a_hub_model_offline_says_so() {
    let mut harness = harness();
    let model = harness.state().settings.spec.model.clone();
    // Nobody listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    harness.state_mut().settings.hub_endpoint = format!("http://127.0.0.1:{port}");
    harness.state_mut().settings.hub_id = "openai/clip-vit-base-patch32".into();
    harness.run();
    click_and_wait(&mut harness, "Download", 60, |s| s.download.is_some());
    harness.run();
    let error = harness
        .state()
        .download
        .clone()
        .expect("outcome")
        .expect_err("offline");
    assert!(
        error.contains("cannot reach") && error.contains("offline?"),
        "{error}"
    );
    harness.get_by_label_contains("error: openai/clip-vit-base-patch32");
    assert_eq!(harness.state().settings.spec.model, model);
    screenshot(&mut harness, "offline");
}

/// "Browse…": the in-app folder picker goes into a sub-folder and chooses it as the training set,
/// which is then scanned.
#[test]
fn the_folder_picker_chooses_a_training_folder() {
    let mut harness = harness();
    harness.state_mut().settings.spec.data.train = std::path::PathBuf::new();
    let subset = flyp_studio::app::bundled("assets/emoji-subset");
    harness
        .state_mut()
        .browse(flyp_studio::app::FolderRole::Train, &subset);
    harness.run();
    harness.get_by_label("Choose the training folder");
    harness.get_by_label("noto/");
    harness.get_by_label("twemoji/").click();
    harness.run();
    screenshot(&mut harness, "browse");
    harness.get_by_label("Choose this folder").click();
    harness.step();
    assert_eq!(
        harness.state().settings.spec.data.train,
        subset.join("twemoji")
    );
    assert!(harness.state().browser.is_none());
    step_until(&mut harness, 120, "scan did not finish", |s| {
        !s.is_scanning()
    });
    harness.run();
    harness.get_by_label_contains("49 classes · 396 train");
}

/// A run folder keeps checkpoints: Start refuses to overwrite a saved run, and a stopped run
/// continues from its last finished epoch to the same first epochs and all of the rest.
#[test]
fn a_stopped_run_continues_from_its_run_folder() {
    let dir = std::env::temp_dir().join(format!("flyp-app-run-folder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut harness = harness();
    let epochs = 8;
    {
        let studio = harness.state_mut();
        studio.settings.compute = flyp::DeviceChoice::Cpu;
        studio.settings.spec.model = flyp_studio::app::bundled("tests/fixtures/tiny-a");
        studio.settings.spec.templates = "simple".into();
        studio.settings.spec.method = &flyp::methods::finetune::Finetune;
        studio.settings.spec.hyper.epochs = epochs;
        studio.settings.spec.hyper.batch = 72;
        studio.settings.spec.data.evals.clear();
        studio.settings.spec.out = Some(dir.clone());
    }
    harness.get_by_label("Start").click();
    harness.step();
    step_until(&mut harness, 300, "no first epoch", |s| {
        !s.progress.epochs.is_empty()
    });
    harness.get_by_label("Stop").click();
    harness.step();
    until_outcome(&mut harness, 120);
    let stopped = harness.state().progress.clone();
    let outcome = stopped.outcome.clone().unwrap_or_default();
    assert!(outcome.starts_with("stopped"), "{outcome}");
    let done = stopped.epochs.len();
    assert!((1..epochs).contains(&done), "{done} epochs before the stop");
    assert!(flyp::train::checkpoint::exists(&dir));

    // The stopped run is explorable like a finished one: its best finished epoch.
    assert!(stopped.finished, "{outcome}");
    assert!(outcome.contains("exploring epoch"), "{outcome}");
    harness.get_by_label("Results").click();
    harness.run();
    assert!(
        harness
            .query_by_label("Results appear here when a run has finished.")
            .is_none()
    );
    harness.get_by_label("Export");

    // Start again without "Continue": refused, the checkpoint left as it was, and the stopped
    // run's results still on screen.
    let state = dir.join("checkpoint/state.json");
    let saved = std::fs::read(&state).expect("state.json");
    harness.get_by_label("Start").click();
    harness.run();
    let refused = harness.state().start_error.clone().unwrap_or_default();
    assert!(refused.contains("already holds a run"), "{refused}");
    harness.get_by_label_contains("Not started:");
    assert_eq!(std::fs::read(&state).expect("state.json"), saved);
    let kept = &harness.state().progress;
    assert!(kept.finished && !kept.failed, "{:?}", kept.outcome);
    assert_eq!(kept.epochs.len(), done);
    harness.get_by_label("Export");

    harness.get_by_label("Training").click();
    harness.get_by_label("Continue the run saved there").click();
    harness.run();
    assert!(harness.state().settings.spec.resume);
    harness.get_by_label("Start").click();
    harness.step();
    until_outcome(&mut harness, 300);
    assert!(harness.state().start_error.is_none());
    let resumed = harness.state().progress.clone();
    assert!(!resumed.failed, "{:?}", resumed.outcome);
    let numbers: Vec<usize> = resumed.epochs.iter().map(|r| r.epoch).collect();
    assert_eq!(numbers, (1..=epochs).collect::<Vec<_>>());
    // The curves go on where they left off: the checkpoint's epochs first, then steps numbered
    // after the saved ones; epoch 0 (before training) on the accuracy curves.
    assert_eq!(resumed.resumed_epochs(), done);
    let saved_steps: usize = resumed.epochs[..done].iter().map(|r| r.steps).sum();
    assert!(
        resumed
            .steps
            .first()
            .is_some_and(|s| s.step == saved_steps + 1),
        "first step after the resume: {:?}, saved {saved_steps}",
        resumed.steps.first().map(|s| s.step)
    );
    let before = resumed.before.clone().expect("epoch 0");
    assert_eq!(before.len(), resumed.sets.len());
    assert_eq!(
        stopped.before.as_ref().map(|b| b[0].1.top1),
        Some(before[0].1.top1)
    );
    for (before, after) in stopped.epochs.iter().zip(&resumed.epochs) {
        assert_eq!(before.mean_loss, after.mean_loss, "epoch {}", before.epoch);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Zoom setting is egui's zoom factor, and Ctrl + (egui's own zoom) becomes the setting.
#[test]
fn zoom_is_the_setting_both_ways() {
    let mut harness = harness();
    harness.state_mut().settings.zoom = 1.5;
    harness.run();
    assert_eq!(harness.ctx.zoom_factor(), 1.5);
    harness.ctx.set_zoom_factor(2.0);
    harness.run();
    assert_eq!(harness.state().settings.zoom, 2.0);
    harness.get_by_label("Zoom");
}

/// Every method the library registers for the app is in the Method box, under its label, and
/// choosing it makes it the run's method.
#[test]
fn every_registered_method_is_in_the_method_box() {
    let mut harness = harness();
    let offered = flyp::methods::in_app();
    assert!(offered.len() >= 5, "{offered:?}");
    for method in offered {
        harness
            .get_by_role_and_label(eframe::egui::accesskit::Role::ComboBox, "Method")
            .click();
        harness.run();
        harness.get_by_label(method.label()).click();
        harness.run();
        assert_eq!(harness.state().settings.spec.method, method);
    }
}

/// A storage in memory (what eframe keeps in its app-data file).
#[derive(Default)]
struct Memory(std::collections::HashMap<String, String>);

impl eframe::Storage for Memory {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

/// The settings come back in the next session; the run folder does not (a new session never
/// continues or writes into a run by itself); stored values that no longer hold fall back to the
/// demo's one by one.
#[test]
fn settings_are_kept_between_sessions_and_bad_ones_fall_back() {
    use flyp_studio::app::Settings;
    let mut settings = Settings::demo();
    settings.spec.method = &flyp::methods::lp_ft::LpFt;
    settings.spec.hyper.epochs = 3;
    settings.spec.hyper.lr = 2e-5;
    settings.spec.data.train = std::path::PathBuf::from("/data/mine");
    settings.spec.out = Some(std::path::PathBuf::from("/runs/one"));
    settings.compute = flyp::DeviceChoice::Cpu;
    settings.hub_id = "owner/name".into();
    let mut storage = Memory::default();
    settings.save(&mut storage);
    let back = Settings::load(Some(&storage));
    assert_eq!(back.spec.method, settings.spec.method);
    assert_eq!((back.spec.hyper.epochs, back.spec.hyper.lr), (3, 2e-5));
    assert_eq!(back.spec.data.train, settings.spec.data.train);
    assert_eq!(back.compute, flyp::DeviceChoice::Cpu);
    assert_eq!(back.hub_id, "owner/name");
    assert_eq!(back.spec.out, None, "a run folder was kept");
    // A method the app does not offer, a zero batch and a negative lr: the demo's values.
    let mut bad = settings.clone();
    bad.spec.method = &flyp::methods::ce_ablation::CeAblation;
    bad.spec.hyper.batch = 0;
    bad.spec.hyper.lr = -1.0;
    bad.save(&mut storage);
    let back = Settings::load(Some(&storage));
    let demo = Settings::demo();
    assert_eq!(back.spec.method, demo.spec.method);
    assert_eq!(
        (back.spec.hyper.batch, back.spec.hyper.lr),
        (demo.spec.hyper.batch, demo.spec.hyper.lr)
    );
    assert_eq!(back.spec.hyper.epochs, 3, "the valid settings stay");
    storage
        .0
        .insert(Settings::KEY.into(), "not a stored value".into());
    assert_eq!(Settings::load(Some(&storage)), demo);
}

/// Every file below `dir` with its bytes, for "nothing changed" checks.
fn files_below(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).expect("read")));
        }
    }
    out.sort();
    out
}

/// A finished linear-probe run on the tiny model (seconds): something to export and to lose.
fn finished_probe_run() -> Harness<'static, Studio> {
    let mut harness = harness();
    {
        let studio = harness.state_mut();
        studio.settings.compute = flyp::DeviceChoice::Cpu;
        studio.settings.spec.model = flyp_studio::app::bundled("tests/fixtures/tiny-a");
        studio.settings.spec.templates = "simple".into();
        studio.settings.spec.method = &flyp::methods::linear_probe::LinearProbe;
        studio.settings.spec.data.evals.clear();
    }
    harness.get_by_label("Start").click();
    harness.step();
    until_outcome(&mut harness, 300);
    assert!(
        harness.state().progress.finished,
        "{:?}",
        harness.state().progress.outcome
    );
    harness
}

/// Nothing a click can lose: a Start that fails (a training folder of junk) leaves the finished
/// run on screen and explorable; Start is disabled, with the reason, while the scan shows an
/// error.
#[test]
fn a_failed_start_keeps_the_finished_run_and_a_scan_error_disables_start() {
    let mut harness = finished_probe_run();
    let before = harness.state().progress.clone();
    let junk = std::env::temp_dir().join(format!("flyp-app-junk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&junk);
    std::fs::create_dir_all(&junk).expect("junk");
    std::fs::write(junk.join("notes.txt"), "not an image").expect("write");
    harness.state_mut().settings.spec.data.train = junk.clone();
    // Start without a scan: the worker fails on the data; the run on screen stays.
    harness.get_by_label("Start").click();
    harness.step();
    step_until(
        &mut harness,
        120,
        "the failed start was not reported",
        |s| s.start_error.is_some(),
    );
    harness.run();
    let error = harness.state().start_error.clone().unwrap_or_default();
    assert!(error.contains(&junk.display().to_string()), "{error}");
    harness.get_by_label_contains("Not started:");
    let kept = &harness.state().progress;
    assert!(kept.finished && !kept.failed);
    assert_eq!(
        kept.results.as_ref().map(|r| r.best.len()),
        before.results.as_ref().map(|r| r.best.len())
    );
    harness.get_by_label("Results").click();
    harness.run();
    harness.get_by_label("Export");
    // Scan the junk folder: Start is disabled and says why.
    let ctx = harness.ctx.clone();
    harness.state_mut().start_scan(&ctx);
    harness.step();
    step_until(&mut harness, 60, "scan did not finish", |s| {
        !s.is_scanning()
    });
    harness.run();
    assert!(matches!(harness.state().scan, Some(Err(_))));
    assert!(harness.get_by_label("Start").accesskit_node().is_disabled());
    assert!(
        harness
            .state()
            .cannot_start()
            .is_some_and(|r| r.contains("cannot be used"))
    );
    let _ = std::fs::remove_dir_all(&junk);
}

/// Export into a folder that is not empty asks first; "Choose another folder" changes no file
/// (byte for byte); an earlier export is overwritten only when asked; a file flyp did not write
/// is never replaced.
#[test]
fn export_into_a_folder_that_is_not_empty_asks_and_never_replaces_foreign_files() {
    let mut harness = finished_probe_run();
    harness.get_by_label("Results").click();
    harness.run();
    let root = std::env::temp_dir().join(format!("flyp-app-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mine = root.join("mine");
    std::fs::create_dir_all(&mine).expect("dir");
    std::fs::write(mine.join("notes.txt"), "my notes").expect("write");
    let before = files_below(&mine);
    harness.state_mut().export_dir = mine.clone();
    harness.get_by_label("Export").click();
    harness.run();
    harness.get_by_label_contains("is not empty (it holds notes.txt");
    harness.get_by_label("Choose another folder").click();
    harness.run();
    assert_eq!(files_below(&mine), before, "cancelling changed a file");
    assert!(harness.state().progress.exported.is_none());
    // Write into it: model/, results.json and the marker added, the notes untouched.
    harness.get_by_label("Export").click();
    harness.run();
    click_and_wait(&mut harness, "Write into it", 120, |s| {
        s.progress.exported.is_some()
    });
    harness
        .state()
        .progress
        .exported
        .clone()
        .expect("answer")
        .expect("exported");
    assert_eq!(
        std::fs::read(mine.join("notes.txt")).expect("notes"),
        b"my notes"
    );
    assert!(mine.join("model/model.safetensors").is_file() && mine.join("results.json").is_file());
    // Again: an earlier export, overwritten only when asked.
    harness.get_by_label("Export").click();
    harness.run();
    harness.get_by_label_contains("holds an earlier export");
    click_and_wait(&mut harness, "Overwrite the earlier export", 120, |s| {
        s.progress.exported.is_some()
    });
    harness
        .state()
        .progress
        .exported
        .clone()
        .expect("answer")
        .expect("exported");
    assert_eq!(
        std::fs::read(mine.join("notes.txt")).expect("notes"),
        b"my notes"
    );
    // A results.json flyp did not write: no way to write there.
    let theirs = root.join("theirs");
    std::fs::create_dir_all(&theirs).expect("dir");
    std::fs::write(theirs.join("results.json"), "{\"theirs\": true}").expect("write");
    let before = files_below(&theirs);
    harness.state_mut().export_dir = theirs.clone();
    harness.get_by_label("Export").click();
    harness.run();
    harness.get_by_label_contains("which flyp did not write");
    assert!(harness.query_by_label("Write into it").is_none());
    harness.get_by_label("Choose another folder").click();
    harness.run();
    assert_eq!(files_below(&theirs), before);
    // A file where the folder should be: one clear line.
    let file = root.join("a-file");
    std::fs::write(&file, "x").expect("write");
    harness.state_mut().export_dir = file.clone();
    harness.get_by_label("Export").click();
    harness.run();
    let line = harness
        .state()
        .progress
        .exported
        .clone()
        .expect("answer")
        .unwrap_err();
    assert!(
        line.contains("a-file") && line.contains("not a folder"),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Every finished run of the session stays explorable: after a second run, Results and
/// Embeddings offer the first again, with its own numbers.
#[test]
fn earlier_runs_of_the_session_stay_selectable() {
    let mut harness = finished_probe_run();
    let first = harness.state().progress.clone();
    assert_eq!(harness.state().run_label, "run 1: Linear probe (LP)");
    harness.state_mut().settings.spec.method = &flyp::methods::zeroshot::ZeroShot;
    harness.get_by_label("Start").click();
    harness.step();
    until_outcome(&mut harness, 300);
    assert_eq!(harness.state().run_label, "run 2: Zero-shot");
    assert_eq!(harness.state().past.len(), 1);
    assert!(harness.state().progress.probe.is_none());
    harness.get_by_label("Results").click();
    harness.run();
    harness
        .get_by_role_and_label(eframe::egui::accesskit::Role::ComboBox, "Run")
        .click();
    harness.run();
    harness.get_by_label("run 1: Linear probe (LP)").click();
    harness.run();
    let shown = harness.state();
    assert_eq!(shown.run_label, "run 1: Linear probe (LP)");
    assert_eq!(shown.past[0].label, "run 2: Zero-shot");
    assert_eq!(
        shown.progress.probe.as_ref().map(|p| p.0),
        first.probe.as_ref().map(|p| p.0)
    );
    // Its worker still answers: the slider's α evaluated again, the embeddings there.
    step_until(&mut harness, 120, "the first run did not answer", |s| {
        !s.progress.wise.is_empty()
    });
    harness.get_by_label("Embeddings").click();
    harness.run();
    harness.get_by_label("Projection");
}

/// Every screen fits a laptop (900×600) and the default window (1200×780): after a finished run
/// on the demo data, no button, slider, box or check box reaches past the window's left or right
/// edge (vertical overflow scrolls). With FLYP_SCREENSHOTS=DIR each screen is saved as
/// DIR/<screen>-<width>x<height>.png.
#[test]
fn every_screen_fits_900x600_and_1200x780() {
    use eframe::egui::accesskit::Role;
    let mut harness = harness();
    harness.get_by_label("Use the bundled demo data").click();
    harness.step();
    step_until(&mut harness, 120, "scan did not finish", |s| {
        !s.is_scanning()
    });
    {
        let studio = harness.state_mut();
        studio.settings.compute = flyp::DeviceChoice::Cpu;
        studio.settings.spec.model = flyp_studio::app::bundled("tests/fixtures/tiny-a");
        studio.settings.spec.templates = "simple".into();
        studio.settings.spec.method = &flyp::methods::finetune::Finetune;
        studio.settings.spec.hyper.epochs = 2;
        studio.settings.spec.hyper.batch = 72;
    }
    harness.get_by_label("Start").click();
    harness.step();
    until_outcome(&mut harness, 600);
    assert!(
        harness.state().progress.finished,
        "{:?}",
        harness.state().progress.outcome
    );
    step_until(
        &mut harness,
        300,
        "the WiSE-FT curve and the embeddings did not arrive",
        |s| {
            s.progress.wise.len() >= 11
                && s.progress
                    .embeddings
                    .as_ref()
                    .is_some_and(|e| e.frames.len() >= 11)
        },
    );
    // The status line is the run's, whatever the settings say now.
    harness.state_mut().settings.spec.hyper.epochs = 9;
    harness.run();
    harness.get_by_label_contains("epoch 2/2 · step");
    for (w, h) in [(900.0, 600.0), (1200.0, 780.0)] {
        harness.set_size(eframe::egui::Vec2::new(w, h));
        harness.run();
        for screen in flyp_studio::app::SCREENS.iter() {
            harness.get_by_label(screen.name).click();
            harness.run();
            settle(&mut harness);
            harness.run();
            assert_eq!(
                flyp_studio::app::SCREENS[harness.state().view].name,
                screen.name
            );
            screenshot(
                &mut harness,
                &format!("{}-{w}x{h}", screen.name.to_lowercase()),
            );
            for role in [
                Role::Button,
                Role::Slider,
                Role::ComboBox,
                Role::CheckBox,
                Role::SpinButton,
            ] {
                // The settings panel's width (see `Studio::show`): what starts in it ends in it.
                let panel = (w * 0.35f32).clamp(280.0, 360.0);
                for node in harness.query_all_by_role(role) {
                    let rect = node.rect();
                    let right = if rect.left() < panel { panel } else { w };
                    assert!(
                        rect.left() >= -0.5 && rect.right() <= right + 0.5,
                        "{} at {w}×{h}: {role:?} {:?} spans x {:.0}–{:.0}",
                        screen.name,
                        node.accesskit_node().label(),
                        rect.left(),
                        rect.right()
                    );
                }
            }
        }
    }
}

/// The scan report says what a run will do without a val folder (how many images it holds out),
/// and names an image too small to show anything (a 1×1 pixel).
#[test]
fn the_scan_names_the_automatic_split_and_tiny_images() {
    let root = std::env::temp_dir().join(format!("flyp-app-tiny-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let twemoji = flyp_studio::app::bundled("assets/emoji-subset/twemoji/train");
    for (class, bundled) in [("flags", "country_flag"), ("symbols", "other_symbols")] {
        std::fs::create_dir_all(root.join(class)).expect("dir");
        let mut files: Vec<_> = std::fs::read_dir(twemoji.join(bundled))
            .expect("class")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for f in files.iter().take(10) {
            std::fs::copy(f, root.join(class).join(f.file_name().expect("name"))).expect("copy");
        }
    }
    // A valid 1×1 PNG (one green pixel).
    let png = "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082";
    let bytes: Vec<u8> = (0..png.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&png[i..i + 2], 16).expect("hex"))
        .collect();
    std::fs::write(root.join("flags").join("dot.png"), bytes).expect("png");
    let mut harness = harness();
    harness.state_mut().settings.spec.data.train = root.clone();
    let ctx = harness.ctx.clone();
    harness.state_mut().start_scan(&ctx);
    harness.step();
    step_until(&mut harness, 60, "scan did not finish", |s| {
        !s.is_scanning()
    });
    harness.run();
    let scan = harness.state().scan.clone().expect("scan").expect("usable");
    assert_eq!(scan.train.len(), 21);
    harness.get_by_label_contains("1 image(s) smaller than 16×16 pixels (e.g.");
    harness.get_by_label_contains("dot.png, 1×1");
    // 10 % of each class: 1 of 11 flags, 1 of 10 symbols.
    harness.get_by_label_contains(
        "No val folder: a run holds out 10 % of the training images for validation (2,",
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// "Show me FLYP": zero-shot, FT and FLYP on the bundled demo (one epoch each here), then four
/// captioned pages with this session's numbers; a second click reuses the runs.
#[test]
fn the_lesson_runs_zero_shot_ft_and_flyp_then_walks_four_pages() {
    let mut harness = harness();
    harness.state_mut().settings.compute = flyp::DeviceChoice::Cpu;
    harness.state_mut().lesson.epochs = 1;
    let started = Instant::now();
    harness.get_by_label("Show me FLYP").click();
    harness.step();
    step_until(
        &mut harness,
        1200,
        "the lesson did not reach its first page",
        |s| s.lesson.page.is_some() || s.lesson.error.is_some(),
    );
    eprintln!("lesson runs: {:.0} s", started.elapsed().as_secs_f64());
    let lesson = harness.state().lesson.clone();
    assert!(lesson.error.is_none(), "{:?}", lesson.error);
    let names: Vec<&str> = lesson.done.iter().map(|d| d.0).collect();
    assert_eq!(names, ["zeroshot", "finetune", "flyp"]);
    assert_eq!(harness.state().past.len(), 2);
    harness.run();
    harness.get_by_label_contains("1 of 4");
    let caption = harness.state().lesson_caption(0);
    assert!(!caption.contains("not measured"), "{caption}");
    assert!(
        caption.contains("Zero-shot, the model before any training: "),
        "{caption}"
    );
    screenshot(&mut harness, "lesson-1");
    for page in 1..4 {
        harness.get_by_label("Next").click();
        // The embeddings page plays α from 0 to 1 (it repaints while it plays).
        for _ in 0..30 {
            harness.step();
            std::thread::sleep(Duration::from_millis(10));
        }
        harness.get_by_label_contains(&format!("{} of 4", page + 1));
        screenshot(&mut harness, &format!("lesson-{}", page + 1));
    }
    assert_eq!(
        flyp_studio::app::SCREENS[harness.state().view].name,
        "Results"
    );
    // Again: the session's runs are reused, nothing trains.
    harness.get_by_label("Close the lesson").click();
    harness.step();
    harness.step();
    assert!(harness.state().lesson.page.is_none());
    harness.get_by_label("Show me FLYP").click();
    harness.step();
    harness.step();
    assert_eq!(harness.state().lesson.page, Some(0));
    assert!(!harness.state().is_running());
}

/// "Nearest prompt": an image counts for its class when its own class's prompt is the most
/// similar one (cosine of unit rows).
#[test]
fn nearest_prompt_counts_images_by_their_most_similar_prompt() {
    let e = flyp_studio::worker::Embeddings {
        images: vec![(0, "test".into()), (0, "test".into()), (1, "noto".into())],
        paths: vec![Default::default(); 3],
        classes: vec!["a".into(), "b".into()],
        frames: Vec::new(),
    };
    let rows = vec![
        vec![0.9f32, 0.1],
        vec![0.2, 0.8],
        vec![0.1, 0.9],
        vec![1.0, 0.0],
        vec![0.0, 1.0],
    ];
    let (right, total) = flyp_studio::app::nearest_prompt_counts(&e, &rows);
    assert_eq!((right, total), (vec![1, 1], vec![2, 1]));
}
