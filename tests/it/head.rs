//! FT's classification head as WiSE-FT builds it: the parameter s·W plus a zero-initialised bias.

use burn::optim::GradientsParams;
use burn::prelude::*;
use flyp::Clip;
use flyp::data::Scan;
use flyp::data::prompts::Templates;
use flyp::methods::head::ClassHead;
use flyp::methods::head::Head;
use flyp::methods::wise_ft::WiseFt;
use flyp::methods::zeroshot::zero_shot_head;
use flyp::train::engine::cross_entropy;

use crate::common::{devices, fixtures};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("values")
}

/// At step 0 FT's logits are the zero-shot logits s·normalise(image)·Tᵀ; one AdamW step (no
/// decay) moves each logit by 2·lr on a one-hot feature — lr through the weight, lr through the
/// bias, as Adam's first step moves every parameter by lr·sign(gradient) — where the old head
/// (unit rows under a frozen s) moved it by s·lr; WiSE-FT at α = 0 is zero-shot exactly.
#[test]
fn the_ft_head_starts_at_zero_shot_and_a_step_moves_a_logit_by_lr_not_s_lr() {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/emoji-subset");
    let scan = Scan::folder(&assets.join("twemoji")).expect("scan");
    let templates = Templates::simple();
    let test: Vec<_> = scan
        .test
        .clone()
        .expect("test split")
        .into_iter()
        .take(16)
        .collect();
    for device in devices() {
        let clip = Clip::load(&fixtures().join("tiny-a"), &device).expect("load");
        let s = clip.model.logit_scale.val().exp().into_scalar::<f32>();
        assert!(s > 4.0, "the check needs s well above 2, got {s}");
        let rows = zero_shot_head(&clip, &scan.prompt_names, &templates).expect("rows");
        let head = ClassHead::zero_shot(&clip, &scan.prompt_names, &templates).expect("head");
        assert_eq!(values(head.bias.clone()), vec![0.0; scan.classes.len()]);
        let paths: Vec<_> = test.iter().map(|s| s.path.clone()).collect();
        let features = clip
            .model
            .encode_image(clip.pixels(&paths).expect("pixels"));
        let zero_shot = flyp::model::l2_normalize(features.clone()).matmul(rows.transpose()) * s;
        let trainable = Head::new(&head, &device.device);
        let (got, want) = (values(trainable.logits(features)), values(zero_shot));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{g} vs {w}");
        }

        // One AdamW step on a one-hot feature, label 0.
        let autodiff = device.autodiff();
        let trainable = Head::new(&head, &autodiff.device);
        let d = head.weight.dims()[1];
        let mut one_hot = vec![0.0f32; d];
        one_hot[0] = 1.0;
        let x = Tensor::<2>::from_data(TensorData::new(one_hot, [1, d]), &autodiff.device);
        let label = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64], [1]), &autodiff.device);
        let before = values(trainable.logits(x.clone()).without_autodiff());
        let loss = cross_entropy(trainable.logits(x.clone()), label);
        let grads = GradientsParams::from_grads(loss.backward(), &trainable);
        let mut optim = flyp::train::adamw::adamw(0.9, 0.999, 1e-8, 0.0);
        let lr = 1e-3;
        let stepped = optim.step(lr, trainable, grads);
        let after = values(stepped.logits(x).without_autodiff());
        for (c, (b, a)) in before.iter().zip(&after).enumerate() {
            // The true class rises, every other falls, each by 2·lr.
            let want = if c == 0 { 2.0 * lr } else { -2.0 * lr } as f32;
            let moved = a - b;
            assert!(
                (moved - want).abs() < 0.02 * want.abs(),
                "class {c} on {}: moved {moved}, want {want} (s·lr would be {})",
                device.description,
                s * lr as f32
            );
        }

        // WiSE-FT at α = 0 is the zero-shot head and model, exactly; at 1, the fine-tuned head.
        let tuned = ClassHead {
            weight: head.weight.clone() * 0.5,
            bias: head.bias.clone() + 1.0,
        };
        let wise = WiseFt {
            zero_shot: clip.for_inference(),
            fine_tuned: clip.for_inference(),
            heads: Some((head.clone(), tuned.clone())),
            prompt_names: scan.prompt_names.clone(),
            templates: templates.clone(),
        };
        let (_, at_zero) = wise.at(0.0).expect("alpha 0");
        assert_eq!(values(at_zero.weight), values(head.weight.clone()));
        assert_eq!(values(at_zero.bias), values(head.bias.clone()));
        let (_, at_one) = wise.at(1.0).expect("alpha 1");
        assert_eq!(values(at_one.bias), values(tuned.bias));
    }
}
