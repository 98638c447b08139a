//! The training loop on a small learnable task: the bundled emoji subset (Twemoji ID, Noto OOD)
//! at the tiny fixture model's 32×32, from its random weights. Asserts the loss falls and accuracy
//! beats chance (1/9 ≈ 0.111): at least 0.15 on the 72 Twemoji test images and 0.17 on the 360
//! Noto ones (3.5 standard deviations of guessing) at the best epoch; not timed.

use flyp::Clip;
use flyp::data::Scan;
use flyp::data::prompts::Templates;
use flyp::train::engine::{Method, TrainConfig, TrainData, train};

use crate::common::{devices, fixtures};

fn emoji_data() -> TrainData {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/emoji-subset");
    let id = Scan::folder(&assets.join("twemoji")).expect("twemoji");
    let (ood, _) = Scan::folder(&assets.join("noto"))
        .expect("noto")
        .align_to(&id.classes)
        .expect("align");
    TrainData {
        classes: id.classes.clone(),
        prompt_names: id.prompt_names.clone(),
        train: id.train.clone(),
        evals: vec![
            ("test".into(), id.test.clone().expect("test")),
            ("noto".into(), ood),
        ],
    }
}

fn check(method: Method, epochs: usize) {
    let data = emoji_data();
    for device in devices() {
        let clip = Clip::load(&fixtures().join("tiny-a"), &device.autodiff()).expect("load");
        let config = TrainConfig {
            method,
            epochs,
            batch_size: 36,
            lr: 2e-3,
            weight_decay: 0.01,
            warmup: Some(4),
            seed: 1,
            augment: true,
            templates: Templates::simple(),
            run_dir: None,
            resume: false,
        };
        let trained = train(clip, &data, &config, |r| {
            eprintln!(
                "{method:?} on {} epoch {}: loss {:.4} (first {:.4}), test top-1 {:.3}, noto {:.3}",
                device.description,
                r.epoch,
                r.mean_loss,
                r.first_loss,
                r.evals[0].1.top1,
                r.evals[1].1.top1
            )
        })
        .expect("train");
        let reports = &trained.reports;
        let first = reports.first().expect("epochs").first_loss;
        let last = reports.last().expect("epochs");
        let what = format!("{method:?} on {}", device.description);
        assert!(
            last.mean_loss < 0.9 * first,
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
            best(0) >= 0.15,
            "{what}: best test top-1 {} is not above chance",
            best(0)
        );
        assert!(
            best(1) >= 0.17,
            "{what}: best Noto top-1 {} is not above chance",
            best(1)
        );
    }
}

#[test]
fn flyp_learns_the_emoji_categories() {
    check(
        Method::Flyp {
            mask_collisions: false,
        },
        8,
    );
}

#[test]
fn finetune_learns_the_emoji_categories() {
    check(Method::Finetune, 8);
}
