//! The training loop on a small learnable task: the bundled emoji subset (Twemoji ID, Noto OOD)
//! at the tiny fixture model's 32×32, from its random weights. Asserts the loss falls and accuracy
//! beats chance (1/9 ≈ 0.111): at least 0.15 on the 72 Twemoji test images and 0.17 on the 360
//! Noto ones (3.5 standard deviations of guessing) at the best epoch; not timed.

use flyp::Clip;
use flyp::data::Scan;
use flyp::data::prompts::Templates;
use flyp::methods::{Method, Options};
use flyp::train::engine::{Hyper, TrainConfig, TrainData, train};

use crate::common::{devices, fixtures};

/// The bundled demo data seen as its 9 Unicode categories (assets/emoji-subset/classes.csv maps
/// each of the 49 class folders to one), in the order the category folders of the first two
/// rounds gave: these tests of the training engine were measured on that 9-class task, which the
/// small random `tiny-a` model can learn in a few epochs.
pub fn emoji_data() -> TrainData {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/emoji-subset");
    let id = Scan::folder(&assets.join("twemoji")).expect("twemoji");
    let (ood, _) = Scan::folder(&assets.join("noto"))
        .expect("noto")
        .align_to(&id.classes)
        .expect("align");
    let table = std::fs::read_to_string(assets.join("classes.csv")).expect("classes.csv");
    let category_of: std::collections::BTreeMap<&str, &str> = table
        .lines()
        .skip(1)
        .map(|line| line.split_once(',').expect("class,category"))
        .collect();
    let categories: Vec<String> = category_of
        .values()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(categories.len(), 9);
    let to_categories = |samples: &[flyp::data::Sample]| -> Vec<flyp::data::Sample> {
        let mut out: Vec<flyp::data::Sample> = samples
            .iter()
            .map(|s| {
                let category = category_of[id.classes[s.label].as_str()];
                let mut s = s.clone();
                s.label = categories
                    .iter()
                    .position(|c| c == category)
                    .expect("known");
                s
            })
            .collect();
        out.sort_by(|a, b| (a.label, a.path.file_name()).cmp(&(b.label, b.path.file_name())));
        out
    };
    // Every other training image and every third test image keep these tests as quick as the
    // demo's sets were before they grew to the demo's design sizes (each class keeps images).
    let thin = |samples: Vec<flyp::data::Sample>, every: usize| -> Vec<flyp::data::Sample> {
        samples.into_iter().step_by(every).collect()
    };
    TrainData {
        classes: categories.clone(),
        prompt_names: categories
            .iter()
            .map(|c| flyp::data::folder::prompt_name(c))
            .collect(),
        train: thin(to_categories(&id.train), 2),
        evals: vec![
            ("val".into(), to_categories(id.val.as_deref().expect("val"))),
            (
                "test".into(),
                thin(to_categories(id.test.as_deref().expect("test")), 3),
            ),
            ("noto".into(), thin(to_categories(&ood), 3)),
        ],
    }
}

fn check(method: &'static dyn Method, epochs: usize) {
    check_from(method, epochs, false);
}

/// `probe_first`: LP-FT (FT starting from the linear probe's head, at a tenth of the lr).
fn check_from(method: &'static dyn Method, epochs: usize, probe_first: bool) {
    let data = emoji_data();
    for device in devices() {
        let initial_head = probe_first.then(|| {
            let frozen = Clip::load(&fixtures().join("tiny-a"), &device).expect("load");
            let (probe, _) =
                flyp::methods::linear_probe::run(&frozen, &data, 1, 64).expect("probe");
            probe.as_head()
        });
        let clip = Clip::load(&fixtures().join("tiny-a"), &device.autodiff()).expect("load");
        let config = TrainConfig {
            objective: method
                .objective(Options::default())
                .expect("a trained method"),
            hyper: Hyper {
                epochs,
                batch: 36,
                lr: if probe_first { 2e-4 } else { 2e-3 },
                wd: 0.01,
                warmup: Some(4),
                seed: 1,
                augment: true,
            },
            templates: Templates::simple(),
            run_dir: None,
            resume: false,
            initial_head,
            clip_grad_norm: None,
            clamp_logit_scale: false,
            precision: Default::default(),
            progress: false,
            hooks: Default::default(),
        };
        let trained = train(clip, &data, &config, |r| {
            eprintln!(
                "{method:?} on {} epoch {}: loss {:.4} (first {:.4}), test top-1 {:.3}, noto {:.3}",
                device.description,
                r.epoch,
                r.mean_loss,
                r.first_loss,
                r.evals[1].1.top1,
                r.evals[2].1.top1
            )
        })
        .expect("train");
        let reports = &trained.reports;
        let first = reports.first().expect("epochs").first_loss;
        let last = reports.last().expect("epochs");
        let what = format!("{method:?} on {}", device.description);
        // LP-FT starts at the probe's solution: its epoch-mean loss need only fall (one batch's
        // first loss is too noisy a yardstick that close to the optimum).
        let target = if probe_first {
            reports[0].mean_loss
        } else {
            0.9 * first
        };
        assert!(
            last.mean_loss < target,
            "{what}: loss {first} → {}",
            last.mean_loss
        );
        let best = |set: usize| {
            reports
                .iter()
                .map(|r| r.evals[set].1.top1)
                .fold(0.0, f64::max)
        };
        assert!(
            best(1) >= 0.15,
            "{what}: best test top-1 {} is not above chance",
            best(1)
        );
        assert!(
            best(2) >= 0.17,
            "{what}: best Noto top-1 {} is not above chance",
            best(2)
        );
        let at_best = reports[trained.best_epoch - 1].evals[0].1.top1;
        assert_eq!(
            at_best,
            best(0),
            "{what}: the best epoch is not the best on validation"
        );
    }
}

#[test]
fn flyp_learns_the_emoji_categories() {
    check(&flyp::methods::flyp::Flyp, 8);
}

#[test]
fn finetune_learns_the_emoji_categories() {
    check(&flyp::methods::finetune::Finetune, 8);
}

#[test]
fn ce_ablation_learns_the_emoji_categories() {
    check(&flyp::methods::ce_ablation::CeAblation, 8);
}

#[test]
fn lp_ft_learns_the_emoji_categories() {
    check_from(&flyp::methods::lp_ft::LpFt, 4, true);
}

#[test]
fn the_linear_probe_beats_chance_and_picks_l2_on_validation() {
    let data = emoji_data();
    for device in devices() {
        let clip = Clip::load(&fixtures().join("tiny-a"), &device).expect("load");
        let (probe, metrics) =
            flyp::methods::linear_probe::run(&clip, &data, 1, 64).expect("probe");
        assert_eq!(
            probe.sweep.len(),
            flyp::methods::linear_probe::L2_SWEEP.len()
        );
        let best_val = probe.sweep.iter().map(|s| s.1).fold(0.0, f64::max);
        let chosen = probe
            .sweep
            .iter()
            .find(|s| s.0 == probe.l2)
            .expect("chosen")
            .1;
        assert_eq!(
            chosen, best_val,
            "the chosen L2 is not the best on validation"
        );
        assert_eq!(metrics[0].1.top1, best_val);
        let (test, noto) = (metrics[1].1.top1, metrics[2].1.top1);
        eprintln!(
            "linear probe on {}: L2 {}, test {test:.3}, noto {noto:.3}",
            device.description, probe.l2
        );
        assert!(
            test >= 0.15 && noto >= 0.17,
            "linear probe on {}: test {test}, noto {noto}",
            device.description
        );
    }
}

#[test]
fn global_norm_clipping_scales_every_gradient_by_one_factor() {
    use burn::module::Param;
    use burn::optim::GradientsParams;
    use burn::prelude::*;
    use flyp::methods::head::Head;
    let device = Device::flex().autodiff();
    let head = Head {
        weight: Param::from_tensor(Tensor::<2>::ones([2, 3], &device)),
        bias: Param::from_tensor(Tensor::<1>::zeros([2], &device)),
    };
    let c = Tensor::<2>::from_data(
        TensorData::new(vec![3.0f32, 0.0, 4.0, 0.0, 12.0, 0.0], [2, 3]),
        &device,
    );
    let loss = (head.weight.val() * c).sum(); // gradient = c, ‖c‖ = 13
    let mut grads = GradientsParams::from_grads(loss.backward(), &head);
    flyp::train::clip_grad::clip_global_norm(&head, &mut grads, 1.0);
    let g: Vec<f32> = grads
        .get::<2>(head.weight.id)
        .expect("grad")
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("values");
    let want = [3.0 / 13.0, 0.0, 4.0 / 13.0, 0.0, 12.0 / 13.0, 0.0];
    for (a, b) in g.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{g:?}");
    }
    // Under the limit nothing changes.
    let loss = (head.weight.val() * 0.01).sum();
    let mut grads = GradientsParams::from_grads(loss.backward(), &head);
    flyp::train::clip_grad::clip_global_norm(&head, &mut grads, 1.0);
    let g: Vec<f32> = grads
        .get::<2>(head.weight.id)
        .expect("grad")
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("values");
    assert!(g.iter().all(|v| (v - 0.01).abs() < 1e-7), "{g:?}");
}

#[test]
fn the_logit_scale_clamp_holds_it_at_ln_100() {
    let data = emoji_data();
    let device = flyp::ComputeDevice::flex();
    let mut clip = Clip::load(&fixtures().join("tiny-a"), &device.autodiff()).expect("load");
    // Start far above the cap: the first step must bring it down to ln 100.
    clip.model.logit_scale = clip
        .model
        .logit_scale
        .map(|t| (t * 0.0 + 9.0).detach().require_grad());
    let config = TrainConfig {
        objective: std::sync::Arc::new(flyp::methods::flyp::Contrastive {
            mask_collisions: true,
        }),
        hyper: Hyper {
            epochs: 1,
            batch: 36,
            lr: 1e-3,
            wd: 0.0,
            warmup: Some(1),
            seed: 1,
            augment: false,
        },
        templates: Templates::simple(),
        run_dir: None,
        resume: false,
        initial_head: None,
        clip_grad_norm: Some(1.0),
        clamp_logit_scale: true,
        precision: Default::default(),
        progress: false,
        hooks: Default::default(),
    };
    let trained = train(clip, &data, &config, |_| {}).expect("train");
    let scale = trained.reports[0].logit_scale;
    assert!(scale <= 100f64.ln() + 1e-6, "logit_scale {scale}");
}

/// A results.json as `flyp train` wrote it before the typed results (keys sorted by serde_json's
/// map, `probe` null, no `skipped_steps`) still reads, with its numbers.
#[test]
fn results_written_before_the_typed_schema_still_read() {
    let metrics = serde_json::json!({"images": 2, "top1": 0.5, "macro_f1": 0.25,
        "precision": [0.5, 0.0], "recall": [1.0, 0.0], "confusion": [[1, 0], [1, 0]]});
    let old = serde_json::json!({
        "schema": 1, "method": "flyp", "classes": ["a", "b"], "best_epoch": 1,
        "best": {"val": metrics, "test": metrics},
        "epochs": [{"epoch": 1, "steps": 3, "mean_loss": 1.5, "first_loss": 2.0,
            "last_lr": 1e-3, "logit_scale": 4.6, "evals": [["val", metrics], ["test", metrics]]}],
        "probe": null,
    });
    let dir = crate::common::temp_dir("old-results");
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&old).expect("json")).expect("write");
    let read = flyp::train::RunResults::read(&path).expect("read");
    assert_eq!(read.best["test"].top1, 0.5);
    assert_eq!(read.top1_by_epoch("val"), vec![(1, 0.5)]);
    assert!(read.probe.is_none());
    read.write(&path).expect("write back");
    let again = flyp::train::RunResults::read(&path).expect("read again");
    assert_eq!(again.epochs[0].mean_loss, 1.5);
}
