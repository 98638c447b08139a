//! Zero-shot: the prompt-ensemble head and evaluation, checked against the same quantities built
//! by hand from `flyp embed`'s functions, on Flex and wgpu.

use flyp::Clip;
use flyp::data::Scan;
use flyp::data::prompts::Templates;
use flyp::methods::zeroshot::{evaluate, zero_shot_head};

use crate::common::{devices, fixtures, max_abs_diff};

fn rows(t: burn::prelude::Tensor<2>) -> Vec<Vec<f32>> {
    flyp::embed::to_rows(t).expect("rows")
}

#[test]
fn head_and_predictions_match_a_hand_computation() {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/emoji-subset");
    let scan = Scan::folder(&assets.join("twemoji")).expect("scan");
    let test = scan.test.clone().expect("test split");
    let templates = Templates::openai();
    for device in devices() {
        let clip = Clip::load(&fixtures().join("tiny-a"), &device).expect("load");
        let head = rows(zero_shot_head(&clip, &scan.prompt_names, &templates).expect("head"));
        // By hand: normalised template embeddings, averaged, normalised.
        for (class, row) in scan.prompt_names.iter().zip(&head) {
            let embeds = clip.embed_texts(&templates.fill(class)).expect("texts");
            let d = embeds[0].len();
            let mean: Vec<f32> = (0..d)
                .map(|k| embeds.iter().map(|e| e[k]).sum::<f32>() / embeds.len() as f32)
                .collect();
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
            let want: Vec<f32> = mean.iter().map(|v| v / norm).collect();
            assert!(
                max_abs_diff(row, &want) < 1e-5,
                "{class} on {}",
                device.description
            );
        }
        let head_t =
            flyp::methods::head::ClassHead::zero_shot(&clip, &scan.prompt_names, &templates)
                .expect("head");
        let (metrics, predicted) = evaluate(&clip, &head_t, &test, 16).expect("evaluate");
        let paths: Vec<_> = test.iter().map(|s| s.path.clone()).collect();
        let images = clip.embed_images(&paths).expect("images");
        let mut correct = 0;
        for ((image, sample), &p) in images.iter().zip(&test).zip(&predicted) {
            let scores: Vec<f32> = head
                .iter()
                .map(|h| h.iter().zip(image).map(|(a, b)| a * b).sum())
                .collect();
            let best = (0..scores.len())
                .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
                .expect("classes");
            // Ties within float noise may pick either; anything else must agree.
            assert!(
                best == p || (scores[best] - scores[p]).abs() < 1e-5,
                "{}: {p} vs {best}",
                sample.path.display()
            );
            correct += usize::from(p == sample.label);
        }
        assert_eq!(metrics.images, test.len());
        assert!((metrics.top1 - correct as f64 / test.len() as f64).abs() < 1e-12);
        eprintln!(
            "tiny-a zero-shot on {}: top-1 {:.3}",
            device.description, metrics.top1
        );
    }
}
