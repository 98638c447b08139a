//! The contrastive core of FLYP and CLIP: L2-normalise image and text features, logits =
//! exp(logit_scale)·I·Tᵀ, cross-entropy over rows and over columns against the diagonal, averaged
//! (Goyal et al., CVPR 2023, and its code); and the same core for classification against prompt heads
//! (class rows are L2-normalised here, so heads with rows of other norms — FT, LP-FT, probes — are
//! scored by `methods::zeroshot::evaluate` with REFERENCE's plain logits instead).
//!
//! Two implementations of exactly the same functions, chosen in one place ([`Implementation::for_device`]):
//! - wgpu devices: hand-written WGSL kernels (`shaders/`) launched as a burn backend extension with
//!   a hand-written backward ([`extension`], [`kernels`]);
//! - the Flex CPU backend: plain burn tensor ops ([`reference`]), differentiated by autodiff.

pub mod bench;
pub mod extension;
pub mod kernels;
pub mod reference;
pub mod sources;

use burn::prelude::*;

use extension::ContrastiveBackend;

/// Which implementation runs on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// The WGSL kernels (wgpu devices).
    Fused,
    /// Plain tensor ops (every other device).
    Reference,
}

impl Implementation {
    /// The one place that decides: WGSL on cubecl (wgpu) devices, plain ops elsewhere.
    pub fn for_device(device: &Device) -> Self {
        if crate::device::BackendKind::of(device) == Some(crate::device::BackendKind::Wgpu) {
            Self::Fused
        } else {
            Self::Reference
        }
    }
}

/// The symmetric InfoNCE loss of a batch of (image, caption) features, `[1]`. With `labels`
/// (class ids), off-diagonal pairs of the same class leave both softmax denominators.
///
/// # Shapes
/// - image, text: `[b, d]`, unnormalised; logit_scale `[1]` (log space); labels `[b]`
pub fn contrastive_loss(
    image: Tensor<2>,
    text: Tensor<2>,
    logit_scale: Tensor<1>,
    labels: Option<Tensor<1, Int>>,
) -> Tensor<1> {
    contrastive_loss_with(
        Implementation::for_device(&image.device()),
        image,
        text,
        logit_scale,
        labels,
    )
}

/// [`contrastive_loss`] with the implementation chosen by the caller (tests, benchmarks).
pub fn contrastive_loss_with(
    implementation: Implementation,
    image: Tensor<2>,
    text: Tensor<2>,
    logit_scale: Tensor<1>,
    labels: Option<Tensor<1, Int>>,
) -> Tensor<1> {
    match implementation {
        Implementation::Reference => reference::contrastive_loss(image, text, logit_scale, labels),
        Implementation::Fused => {
            let [b, _] = image.dims();
            let device = image.device();
            // Without labels the kernels skip the masking and never read these (0, 1, …, b−1,
            // uploaded rather than computed: an arange is a scan kernel on the device).
            let masked = labels.is_some();
            let labels = match labels {
                Some(labels) => labels.float(),
                None => distinct_labels(b, &device),
            };
            let (loss, ..) = <burn::backend::Dispatch as ContrastiveBackend>::contrastive_forward(
                image.into_dispatch(),
                text.into_dispatch(),
                logit_scale.into_dispatch(),
                labels.into_dispatch(),
                masked,
            );
            Tensor::from_dispatch(loss)
        }
    }
}

/// 0, 1, …, b−1 as f32 on `device`, uploaded once per device and size and kept: an upload in the
/// middle of a step ends the batch of queued launches on some adapters (a queue submission each),
/// and an arange would be a scan kernel.
fn distinct_labels(b: usize, device: &Device) -> Tensor<1> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<(String, usize), Tensor<1>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry((format!("{device:?}"), b))
        .or_insert_with(|| {
            let ids: Vec<f32> = (0..b).map(|i| i as f32).collect();
            Tensor::<1>::from_data(TensorData::new(ids, [b]), device)
        })
        .clone()
}

/// Class probabilities `softmax(s·normalise(image)·normalise(classes)ᵀ)`, `[n, k]`.
pub fn class_probabilities(
    image: Tensor<2>,
    classes: Tensor<2>,
    logit_scale: Tensor<1>,
) -> Tensor<2> {
    class_probabilities_with(
        Implementation::for_device(&image.device()),
        image,
        classes,
        logit_scale,
    )
}

/// [`class_probabilities`] with the implementation chosen by the caller.
pub fn class_probabilities_with(
    implementation: Implementation,
    image: Tensor<2>,
    classes: Tensor<2>,
    logit_scale: Tensor<1>,
) -> Tensor<2> {
    match implementation {
        Implementation::Reference => reference::class_probabilities(image, classes, logit_scale),
        Implementation::Fused => Tensor::from_dispatch(
            <burn::backend::Dispatch as ContrastiveBackend>::class_probabilities(
                image.into_dispatch(),
                classes.into_dispatch(),
                logit_scale.into_dispatch(),
            ),
        ),
    }
}

/// The top `k` classes of each row of probabilities: (probabilities, class indices), each `[n, k]`.
pub fn top_k(probabilities: Tensor<2>, k: usize) -> (Tensor<2>, Tensor<2, Int>) {
    let k = k.min(probabilities.dims()[1]).max(1);
    probabilities.topk_with_indices(k, 1)
}
