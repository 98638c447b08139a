//! Mixed precision (f16 blocks, f32 weights, loss and optimizer state): embeddings against
//! transformers' f32 reference, the f16 path really taken, a short FLYP run that follows the f32
//! run, and the loss scale's skip-and-halve rule.

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use flyp::Clip;
use flyp::methods::Method;
use flyp::model::Precision;
use flyp::train::engine::{TrainConfig, train};
use flyp::train::loss_scale::LossScale;

use crate::common::{cosine, devices, fixtures, max_abs_diff, reference};

#[test]
fn mixed_precision_embeddings_match_the_f32_reference_on_every_device() {
    let r = reference("tiny-a");
    let paths: Vec<_> = r
        .images
        .iter()
        .map(|n| fixtures().join("images").join(n))
        .collect();
    for device in devices() {
        let mut clip = Clip::load(&fixtures().join("tiny-a"), &device).expect("load");
        let f32_images = clip.embed_images(&paths).expect("images");
        clip.model = clip.model.with_precision(Precision::Mixed);
        assert_eq!(clip.model.precision(), Precision::Mixed);
        let images = clip.embed_images(&paths).expect("images");
        let texts = clip.embed_texts(&r.texts).expect("texts");
        let (mut worst, mut moved) = (0.0f32, 0.0f32);
        for (ours, theirs) in images
            .iter()
            .chain(&texts)
            .zip(r.image_embeds.iter().chain(&r.text_embeds))
        {
            let diff = max_abs_diff(ours, theirs);
            worst = worst.max(diff);
            assert!(
                diff <= 1e-2 && cosine(ours, theirs) >= 0.9995,
                "on {}: max |diff| {diff}, cosine {}",
                device.description,
                cosine(ours, theirs)
            );
        }
        for (mixed, full) in images.iter().zip(&f32_images) {
            moved = moved.max(max_abs_diff(mixed, full));
        }
        // f16 rounding must show: equal embeddings would mean the f32 path ran.
        assert!(
            moved > 1e-5,
            "on {}: mixed equals f32 (max |diff| {moved})",
            device.description
        );
        eprintln!(
            "mixed precision on {}: worst |diff| vs transformers f32 {worst:.2e}; vs our f32 {moved:.2e}",
            device.description
        );
    }
}

#[test]
fn a_mixed_precision_flyp_run_follows_the_f32_run() {
    let data = crate::training::emoji_data();
    let device = flyp::ComputeDevice::flex();
    let run = |precision: Precision| {
        let clip = Clip::load(&fixtures().join("tiny-a"), &device.autodiff()).expect("load");
        let config = TrainConfig {
            hyper: flyp::train::engine::Hyper {
                epochs: 2,
                batch: 36,
                lr: 1e-3,
                warmup: Some(2),
                seed: 3,
                augment: false,
                ..Default::default()
            },
            templates: flyp::data::prompts::Templates::simple(),
            precision,
            ..TrainConfig::new(
                flyp::methods::flyp::Flyp
                    .objective(Default::default())
                    .expect("FLYP trains"),
            )
        };
        train(clip, &data, &config, |_| {}).expect("train").reports
    };
    let full = run(Precision::F32);
    let mixed = run(Precision::Mixed);
    for (f, m) in full.iter().zip(&mixed) {
        eprintln!(
            "epoch {}: loss f32 {:.4} mixed {:.4} (skipped {}), test top-1 f32 {:.3} mixed {:.3}",
            f.epoch,
            f.mean_loss,
            m.mean_loss,
            m.skipped_steps,
            f.evals[1].1.top1,
            m.evals[1].1.top1
        );
        assert_eq!(f.skipped_steps, 0);
    }
    // The first step's loss is the same model's forward pass: f16 rounding only.
    let (f0, m0) = (full[0].first_loss, mixed[0].first_loss);
    assert!(
        (f0 - m0).abs() <= 1e-3 * f0,
        "first loss f32 {f0} mixed {m0}"
    );
    // Overflowing steps are skipped, not applied: some steps trained, and the loss fell.
    let trained: usize = mixed.iter().map(|r| r.steps - r.skipped_steps).sum();
    assert!(trained >= 4, "only {trained} steps applied");
    let last = mixed.last().expect("epochs");
    assert!(last.mean_loss < m0 - 0.1, "loss {m0} -> {}", last.mean_loss);
    assert!(
        (last.mean_loss - full.last().expect("epochs").mean_loss).abs() < 0.25,
        "mixed ends at {} where f32 ends at {}",
        last.mean_loss,
        full.last().expect("epochs").mean_loss
    );
}

#[derive(Module, Debug)]
struct Weights {
    w: Param<Tensor<1>>,
}

#[test]
fn the_loss_scale_unscales_finite_gradients_and_skips_overflow() {
    let device = flyp::ComputeDevice::flex().device.autodiff();
    let module = Weights {
        w: Param::from_tensor(Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device)),
    };
    let grads_of = |factor: f32| {
        let loss = (module.w.val() * factor).sum();
        GradientsParams::from_grads(loss.backward(), &module)
    };
    let values = |grads: &GradientsParams| -> Vec<f32> {
        grads
            .get::<1>(module.w.id)
            .expect("grad")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32")
    };
    let mut scale = LossScale::default();
    assert_eq!(scale.scale, 65536.0);

    // d(s · Σ 3w)/dw = 3s; unscaled: 3.
    let mut grads = grads_of(3.0 * 65536.0);
    assert!(scale.unscale(&module, &mut grads));
    let g = values(&grads);
    assert_eq!(g, vec![3.0; 3]);
    assert_eq!(scale.scale, 65536.0);

    // An infinite gradient: skip, halve, leave the gradients alone.
    let mut grads = grads_of(f32::INFINITY);
    assert!(!scale.unscale(&module, &mut grads));
    assert_eq!(scale.scale, 32768.0);
    let g = values(&grads);
    assert!(g.iter().all(|x| x.is_infinite()), "{g:?}");
}
