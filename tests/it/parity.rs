//! Parity with transformers on tiny random CLIPs (tests/fixtures): token ids equal, embeddings of
//! texts and exact-resolution images within 1e-4 (max |diff|), resized images cosine ≥ 0.995,
//! on Flex and on wgpu.

use flyp::Clip;
use flyp::tokenizer::ClipTokenizer;

use crate::common::{cosine, devices, fixtures, max_abs_diff, reference};

const TOL: f32 = 1e-4;
const RESIZED_COS: f32 = 0.995;

/// (reference name, what to load)
const MODELS: [(&str, &str); 3] = [
    ("tiny-a", "tiny-a"),
    ("tiny-a-f16", "tiny-a/model-f16.safetensors"),
    ("tiny-b", "tiny-b"),
];

#[test]
fn token_ids_match_transformers() {
    let r = reference("tiny-a");
    for tokenizer in [
        ClipTokenizer::bundled(77).expect("bundled"),
        ClipTokenizer::for_model_dir(&fixtures().join("tiny-a"), 77).expect("dir"),
    ] {
        for (text, expected) in r.texts.iter().zip(&r.input_ids) {
            let ids = tokenizer.encode(text).expect("encode");
            assert_eq!(&ids, expected, "{} on {text:?}", tokenizer.source);
        }
    }
    // The long text really was truncated, keeping <|endoftext|> last.
    let long = r.input_ids.last().expect("texts");
    assert_eq!(long.len(), 77);
    assert_eq!(long[76], 49407);
}

#[test]
fn preprocessing_matches_clip_image_processor() {
    let r = reference("tiny-a");
    let clip = Clip::load(&fixtures().join("tiny-a"), &flyp::ComputeDevice::flex()).expect("load");
    for (name, expected) in r.images.iter().zip(&r.pixel_values) {
        let image =
            flyp::data::decode_image(&fixtures().join("images").join(name)).expect("decode");
        let ours = clip.preprocess.apply(&image);
        let diff = max_abs_diff(&ours, expected);
        if r.exact_resolution.contains(name) {
            assert!(diff < 1e-5, "{name}: max |diff| {diff}");
        } else {
            // PIL's and the image crate's bicubic round differently; 8-bit steps are 1/255/std ≈ 0.015.
            let mean: f32 = ours
                .iter()
                .zip(expected)
                .map(|(a, b)| (a - b).abs())
                .sum::<f32>()
                / ours.len() as f32;
            eprintln!("{name}: resized pixels mean |diff| {mean:.4}, max {diff:.4}");
            assert!(mean < 0.015, "{name}: mean |diff| {mean}");
        }
    }
}

#[test]
fn embeddings_match_transformers_on_every_device() {
    for device in devices() {
        for (name, path) in MODELS {
            let r = reference(name);
            let clip = Clip::load(&fixtures().join(path), &device).expect("load");
            assert_eq!(clip.model.config.vision_config.image_size, r.image_size);
            let scale: Vec<f32> = clip
                .model
                .logit_scale
                .val()
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("scale");
            assert!(
                (scale[0] - r.logit_scale).abs() < 1e-6,
                "{name}: logit_scale {}",
                scale[0]
            );

            let (mut worst_diff, mut worst_cos) = (0.0f32, 1.0f32);
            let texts = clip.embed_texts(&r.texts).expect("texts");
            for ((text, ours), theirs) in r.texts.iter().zip(&texts).zip(&r.text_embeds) {
                let diff = max_abs_diff(ours, theirs);
                worst_diff = worst_diff.max(diff);
                assert!(
                    diff <= TOL,
                    "{name} on {}: text {text:?} max |diff| {diff}",
                    device.description
                );
            }

            let paths: Vec<_> = r
                .images
                .iter()
                .map(|n| fixtures().join("images").join(n))
                .collect();
            let images = clip.embed_images(&paths).expect("images");
            for ((image, ours), theirs) in r.images.iter().zip(&images).zip(&r.image_embeds) {
                if r.exact_resolution.contains(image) {
                    let diff = max_abs_diff(ours, theirs);
                    worst_diff = worst_diff.max(diff);
                    assert!(
                        diff <= TOL,
                        "{name} on {}: {image} max |diff| {diff}",
                        device.description
                    );
                } else {
                    let cos = cosine(ours, theirs);
                    worst_cos = worst_cos.min(cos);
                    assert!(
                        cos >= RESIZED_COS,
                        "{name} on {}: {image} cosine {cos}",
                        device.description
                    );
                }
            }
            eprintln!(
                "{name} on {}: max |diff| {worst_diff:.2e}, resized min cosine {worst_cos:.5}",
                device.description
            );
        }
    }
}

/// Evaluation's image forward on Flex splits the batch across threads: the features must be
/// those of the whole batch in one pass (odd batch sizes make uneven chunks).
#[test]
fn the_threaded_inference_forward_matches_the_plain_one() {
    use burn::prelude::*;
    use burn::tensor::Distribution;
    let device = flyp::ComputeDevice::flex();
    let clip = Clip::load(&fixtures().join("tiny-a"), &device).expect("load");
    let s = clip.model.config.vision_config.image_size;
    for batch in [1, 2, 7, 9, 33] {
        let pixels = Tensor::<4>::random(
            [batch, 3, s, s],
            Distribution::Normal(0.0, 1.0),
            &device.device,
        );
        let plain = clip.model.encode_image(pixels.clone());
        let threaded = clip.model.encode_image_threaded(pixels);
        assert_eq!(threaded.dims(), plain.dims());
        let rows = |t: Tensor<2>| t.into_data().try_into_vec_as::<f32>().expect("f32");
        let (a, b) = (rows(threaded), rows(plain));
        let diff = max_abs_diff(&a, &b);
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(
            diff <= 1e-5 * scale.max(1.0),
            "batch {batch}: max |diff| {diff}"
        );
    }
}
