//! The contrastive core as a burn backend extension: implemented by the cubecl (wgpu) backend
//! with the WGSL kernels ([`super::kernels`]), lazily recorded under burn's fusion, and
//! differentiated by a hand-written backward under autodiff.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, TensorMetadata, backend_extension};
use burn::tensor::{DType, Shape};

/// Outputs of [`ContrastiveBackend::contrastive_forward`]: loss `[1]`, logits `[bp, bp]`,
/// normalised image and text features `[bp, dp]`, and stats `[4, bp]` (row LSE, column LSE,
/// inverse image norms, inverse text norms); `bp`, `dp` are `b`, `d` rounded up to a multiple of
/// 32 (the kernels' zero-padded layout).
pub type ForwardOutput<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
);

/// The fused contrastive core. Labels are class ids as f32, used for class-collision masking when
/// `masked` (without it they are not read).
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait ContrastiveBackend: Backend {
    /// Symmetric InfoNCE forward.
    ///
    /// # Shapes
    /// - image, text: `[b, d]`; logit_scale: `[1]`; labels: `[b]` → see [`ForwardOutput`]
    #[fusion(meta = forward_meta)]
    #[allow(clippy::type_complexity)] // the macro reads the tuple to count outputs
    fn contrastive_forward(
        image: FloatTensor<Self>,
        text: FloatTensor<Self>,
        logit_scale: FloatTensor<Self>,
        labels: FloatTensor<Self>,
        masked: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );

    /// Gradients of the loss for the raw image and text features (`[b, dim]`) and for
    /// logit_scale, given the forward's logits, normalised features, stats, and the upstream
    /// gradient `grad` `[1]`.
    #[fusion(meta = backward_meta)]
    #[allow(clippy::too_many_arguments)] // one per saved forward output
    fn contrastive_backward(
        logits: FloatTensor<Self>,
        image_n: FloatTensor<Self>,
        text_n: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        labels: FloatTensor<Self>,
        masked: bool,
        logit_scale: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        dim: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `softmax(s·normalise(image)·normalise(classes)ᵀ)` per row.
    ///
    /// # Shapes
    /// - image `[n, d]`, classes `[k, d]`, logit_scale `[1]` → `[n, k]`
    #[fusion(meta = classify_meta)]
    fn class_probabilities(
        image: FloatTensor<Self>,
        classes: FloatTensor<Self>,
        logit_scale: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

fn spec(shape: impl Into<Shape>) -> TensorSpec {
    TensorSpec::new(shape.into(), DType::F32)
}

/// `x` rounded up to a multiple of 32 (the kernels' padded layout: whole register blocks of the
/// matrix product, at most 32 rows and 32 columns; the 64-row block runs only where the rows
/// are a multiple of 64).
pub fn pad(x: usize) -> usize {
    x.div_ceil(32) * 32
}

fn forward_meta(
    image: &TensorSpec,
    _text: &TensorSpec,
    _scale: &TensorSpec,
    _labels: &TensorSpec,
    _masked: &bool,
) -> (TensorSpec, TensorSpec, TensorSpec, TensorSpec, TensorSpec) {
    let (b, d) = (image.shape[0], image.shape[1]);
    let (bp, dp) = (pad(b), pad(d));
    (
        spec([1]),
        spec([bp, bp]),
        spec([bp, dp]),
        spec([bp, dp]),
        spec([4, bp]),
    )
}

#[allow(clippy::too_many_arguments)]
fn backward_meta(
    _logits: &TensorSpec,
    _image_n: &TensorSpec,
    _text_n: &TensorSpec,
    _stats: &TensorSpec,
    labels: &TensorSpec,
    _masked: &bool,
    _scale: &TensorSpec,
    _grad: &TensorSpec,
    dim: &usize,
) -> (TensorSpec, TensorSpec, TensorSpec) {
    let b = labels.shape[0];
    (spec([b, *dim]), spec([b, *dim]), spec([1]))
}

fn classify_meta(image: &TensorSpec, classes: &TensorSpec, _scale: &TensorSpec) -> TensorSpec {
    spec([image.shape[0], classes.shape[0]])
}

/// What the backward keeps from the forward (one B×B matrix: the logits), whether it masked
/// class collisions, and the feature width.
type Saved<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    bool,
    FloatTensor<B>,
    usize,
);

#[derive(Debug)]
struct ContrastiveBackward;

impl<B: Backend + ContrastiveBackend> Backward<B, 3> for ContrastiveBackward {
    type State = Saved<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let (logits, image_n, text_n, stats, labels, masked, scale, dim) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let (d_image, d_text, d_scale) = B::contrastive_backward(
            logits, image_n, text_n, stats, labels, masked, scale, grad, dim,
        );
        let [image, text, logit_scale] = ops.parents;
        if let Some(node) = image {
            grads.register::<B>(node.id, d_image);
        }
        if let Some(node) = text {
            grads.register::<B>(node.id, d_text);
        }
        if let Some(node) = logit_scale {
            grads.register::<B>(node.id, d_scale);
        }
    }
}

impl<B: Backend + ContrastiveBackend, C: CheckpointStrategy> ContrastiveBackend for Autodiff<B, C> {
    fn contrastive_forward(
        image: FloatTensor<Self>,
        text: FloatTensor<Self>,
        logit_scale: FloatTensor<Self>,
        labels: FloatTensor<Self>,
        masked: bool,
    ) -> ForwardOutput<Self> {
        let parents = [image.node(), text.node(), logit_scale.node()];
        let dim = image.shape()[1];
        let scale = logit_scale.into_primitive();
        let labels = labels.into_primitive();
        let (loss, logits, image_n, text_n, stats) = B::contrastive_forward(
            image.into_primitive(),
            text.into_primitive(),
            scale.clone(),
            labels.clone(),
            masked,
        );
        let untracked = |t: FloatTensor<B>| <Self as AutodiffBackend>::from_inner(t);
        let loss = match ContrastiveBackward
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = (
                    logits.clone(),
                    image_n.clone(),
                    text_n.clone(),
                    stats.clone(),
                    labels,
                    masked,
                    scale,
                    dim,
                );
                prep.finish(state, loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(loss),
        };
        (
            loss,
            untracked(logits),
            untracked(image_n),
            untracked(text_n),
            untracked(stats),
        )
    }

    fn contrastive_backward(
        logits: FloatTensor<Self>,
        image_n: FloatTensor<Self>,
        text_n: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        labels: FloatTensor<Self>,
        masked: bool,
        logit_scale: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        dim: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (a, b, c) = B::contrastive_backward(
            logits.into_primitive(),
            image_n.into_primitive(),
            text_n.into_primitive(),
            stats.into_primitive(),
            labels.into_primitive(),
            masked,
            logit_scale.into_primitive(),
            grad.into_primitive(),
            dim,
        );
        (
            Self::from_inner(a),
            Self::from_inner(b),
            Self::from_inner(c),
        )
    }

    fn class_probabilities(
        image: FloatTensor<Self>,
        classes: FloatTensor<Self>,
        logit_scale: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // Inference only: the result is not differentiated.
        Self::from_inner(B::class_probabilities(
            image.into_primitive(),
            classes.into_primitive(),
            logit_scale.into_primitive(),
        ))
    }
}
