//! Saving in HF layout, and what loading refuses.

use std::collections::BTreeMap;

use flyp::model::weights::{Checkpoint, infer_config, save_hf};
use flyp::{Clip, ComputeDevice};
use safetensors::SafeTensors;

use crate::common::{fixtures, max_abs_diff, reference, temp_dir};

fn key_shapes(path: &std::path::Path) -> BTreeMap<String, Vec<usize>> {
    let bytes = std::fs::read(path).expect("read");
    let st = SafeTensors::deserialize(&bytes).expect("safetensors");
    st.tensors()
        .into_iter()
        .map(|(k, v)| (k, v.shape().to_vec()))
        .collect()
}

#[test]
fn saved_model_has_hf_keys_and_reloads_to_the_same_embeddings() {
    let device = ComputeDevice::flex();
    let clip = Clip::load(&fixtures().join("tiny-a"), &device).expect("load");
    let out = temp_dir("save");
    save_hf(&clip.model, &out).expect("save");
    // Same keys and shapes as the file transformers wrote (logit_scale rank 0 included).
    assert_eq!(
        key_shapes(&out.join("model.safetensors")),
        key_shapes(&fixtures().join("tiny-a/model.safetensors"))
    );
    std::fs::copy(
        fixtures().join("tiny-a/preprocessor_config.json"),
        out.join("preprocessor_config.json"),
    )
    .expect("copy");
    let again = Clip::load(&out, &device).expect("reload");
    assert_eq!(again.model.config, clip.model.config);
    let r = reference("tiny-a");
    let texts = again.embed_texts(&r.texts).expect("texts");
    for (ours, theirs) in texts.iter().zip(&r.text_embeds) {
        assert!(max_abs_diff(ours, theirs) <= 1e-4);
    }
    let no_tmp = std::fs::read_dir(&out).expect("ls").all(|e| {
        !e.expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")
    });
    assert!(no_tmp, "temporary files left behind");
}

#[test]
fn sizes_are_inferred_from_a_bare_safetensors() {
    let dir = temp_dir("bare");
    let file = dir.join("clip.safetensors");
    std::fs::copy(fixtures().join("tiny-a/model.safetensors"), &file).expect("copy");
    let config = infer_config(&Checkpoint::read(&file).expect("read"), &file).expect("infer");
    let want =
        flyp::model::ClipConfig::from_file(&fixtures().join("tiny-a/config.json")).expect("config");
    assert_eq!(config.projection_dim, want.projection_dim);
    assert_eq!(
        config.vision_config.image_size,
        want.vision_config.image_size
    );
    assert_eq!(
        config.vision_config.patch_size,
        want.vision_config.patch_size
    );
    assert_eq!(
        config.vision_config.num_hidden_layers,
        want.vision_config.num_hidden_layers
    );
    assert_eq!(
        config.vision_config.intermediate_size,
        want.vision_config.intermediate_size
    );
    assert_eq!(config.text_config.hidden_size, want.text_config.hidden_size);
    assert_eq!(
        config.text_config.num_hidden_layers,
        want.text_config.num_hidden_layers
    );
}

#[test]
fn wise_ft_interpolates_every_parameter() {
    use flyp::methods::wise_ft::interpolate;
    for device in crate::common::devices() {
        let a = Clip::load(&fixtures().join("tiny-a"), &device).expect("f32");
        let b = Clip::load(&fixtures().join("tiny-a/model-f16.safetensors"), &device).expect("f16");
        let values = |m: &flyp::model::ClipModel| -> Vec<f32> {
            let w = m.text_model.encoder.layers[1].mlp.fc2.weight.val();
            w.into_data().try_into_vec_as::<f32>().expect("values")
        };
        let (va, vb) = (values(&a.model), values(&b.model));
        assert!(max_abs_diff(&va, &vb) > 0.0, "the two models must differ");
        for alpha in [0.0, 0.25, 1.0] {
            let mixed = values(&interpolate(&a.model, &b.model, alpha).expect("same keys"));
            let want: Vec<f32> = va
                .iter()
                .zip(&vb)
                .map(|(x, y)| (1.0 - alpha as f32) * x + alpha as f32 * y)
                .collect();
            assert!(max_abs_diff(&mixed, &want) < 1e-6, "alpha {alpha}");
        }
        let other = Clip::load(&fixtures().join("tiny-b"), &device).expect("tiny-b");
        let err = interpolate(&a.model, &other.model, 0.5)
            .expect_err("different shapes")
            .to_string();
        assert!(
            err.contains("shapes") || err.contains("missing") || err.contains("only in"),
            "{err}"
        );
    }
}

/// A head stored in f16 (as a user's tools may write it) reads back as its values, not as raw f32
/// bytes; `save_head`'s f32 file reads back exactly; a head without a bias (an older flyp's) is
/// refused with a line naming the file and what is missing.
#[test]
fn a_head_reads_back_in_f32_and_f16() {
    let device = flyp::ComputeDevice::flex().device;
    let values: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) / 3.0).collect();
    let dir = crate::common::temp_dir("head-dtypes");
    let f32_path = dir.join("head.safetensors");
    let weight = burn::prelude::Tensor::<2>::from_data(
        burn::prelude::TensorData::new(values.clone(), [3, 4]),
        &device,
    );
    let bias = burn::prelude::Tensor::<1>::from_data(
        burn::prelude::TensorData::new(vec![0.5f32, -1.0, 2.0], [3]),
        &device,
    );
    let head = flyp::methods::head::ClassHead { weight, bias };
    flyp::model::weights::save_head(&f32_path, &head).expect("save");
    let read = |path: &std::path::Path| -> (Vec<f32>, Vec<f32>) {
        let head = flyp::model::weights::load_head(path, &device).expect("load");
        assert_eq!(head.weight.dims(), [3, 4]);
        let values =
            |t: burn::prelude::Tensor<2>| t.into_data().try_to_vec::<f32>().expect("values");
        (values(head.weight), values(head.bias.unsqueeze()))
    };
    assert_eq!(read(&f32_path), (values.clone(), vec![0.5, -1.0, 2.0]));
    let halves: Vec<u8> = values
        .iter()
        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
        .collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![3, 4], &halves)
        .expect("view");
    let bias_halves: Vec<u8> = [0.5f32, -1.0, 2.0]
        .iter()
        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
        .collect();
    let bias_view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![3], &bias_halves)
            .expect("view");
    let old_path = dir.join("head-without-bias.safetensors");
    std::fs::write(
        &old_path,
        safetensors::serialize(vec![("weight".to_string(), view.clone())], None)
            .expect("serialize"),
    )
    .expect("write");
    let error = flyp::model::weights::load_head(&old_path, &device)
        .expect_err("a head without a bias is refused")
        .to_string();
    assert!(
        error.contains("head-without-bias.safetensors") && error.contains("\"bias\""),
        "{error}"
    );
    let f16_path = dir.join("head-f16.safetensors");
    std::fs::write(
        &f16_path,
        safetensors::serialize(
            vec![
                ("weight".to_string(), view),
                ("bias".to_string(), bias_view),
            ],
            None,
        )
        .expect("serialize"),
    )
    .expect("write");
    let (got_weight, got_bias) = read(&f16_path);
    assert_eq!(got_bias, vec![0.5, -1.0, 2.0]);
    for (got, want) in got_weight.iter().zip(&values) {
        assert!(
            (got - want).abs() <= 1e-3 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }
}
