//! Attention as a burn backend extension: WGSL kernels on cubecl, recorded lazily under burn's
//! fusion, differentiated by a hand-written backward under autodiff.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::{CubeBackend, CubeTensor};
use burn::backend::{Autodiff, AutodiffBackend, Backend, backend_extension};
use burn::tensor::{DType, Shape};
use burn_cubecl::cubecl::prelude::CubeDim;

use crate::shader;
use crate::wgsl::{Pass, Variant, empty, f32_contiguous};

/// Fused multi-head attention on `[batch, seq, hidden]` rows.
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait AttentionBackend: Backend {
    /// Outputs `[batch, seq, hidden]` and stats `[2, batch, heads, seq]`: the log-sum-exp of each
    /// query row's scaled scores, which the backward needs, then room for the backward's
    /// D = rowsum(dO∘O) (a buffer of its own would be a ninth binding: eight is WebGPU's
    /// default limit).
    #[fusion(meta = forward_meta)]
    fn attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        heads: usize,
        causal: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients for q, k and v (each `[batch, seq, hidden]`) given the forward's inputs, output
    /// and log-sum-exp, and the output's gradient `grad`.
    #[fusion(meta = backward_meta)]
    #[allow(clippy::too_many_arguments)] // the forward's inputs and outputs, then the gradient
    fn attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        heads: usize,
        causal: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

fn spec(shape: impl Into<Shape>) -> TensorSpec {
    TensorSpec::new(shape.into(), DType::F32)
}

fn forward_meta(
    q: &TensorSpec,
    _k: &TensorSpec,
    _v: &TensorSpec,
    heads: &usize,
    _causal: &bool,
) -> (TensorSpec, TensorSpec) {
    let (b, n, hidden) = (q.shape[0], q.shape[1], q.shape[2]);
    (spec([b, n, hidden]), spec([2, b, *heads, n]))
}

#[allow(clippy::too_many_arguments)]
fn backward_meta(
    q: &TensorSpec,
    _k: &TensorSpec,
    _v: &TensorSpec,
    _out: &TensorSpec,
    _lse: &TensorSpec,
    _grad: &TensorSpec,
    _heads: &usize,
    _causal: &bool,
) -> (TensorSpec, TensorSpec, TensorSpec) {
    let shape = q.shape.clone();
    (spec(shape.clone()), spec(shape.clone()), spec(shape))
}

/// An attention shader's text for heads of `head_dim` (a multiple of 4), causal or not.
pub fn attention_source(text: &str, head_dim: u32, causal: bool) -> String {
    const QUADS: &str = "const QUADS: u32 = 16u;";
    const CAUSAL: &str = "const CAUSAL: bool = false;";
    debug_assert!(text.contains(QUADS) && text.contains(CAUSAL));
    text.replace(QUADS, &format!("const QUADS: u32 = {}u;", head_dim / 4))
        .replace(CAUSAL, &format!("const CAUSAL: bool = {causal};"))
}

/// What the backward keeps: the inputs, the output and the log-sum-exp (`batch·heads·seq`
/// floats, not the `seq²` probabilities), and the kernel's settings.
type Saved<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    usize,
    bool,
);

#[derive(Debug)]
struct AttentionGrad;

impl<B: Backend + AttentionBackend> Backward<B, 3> for AttentionGrad {
    type State = Saved<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let (q, k, v, out, lse, heads, causal) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let (dq, dk, dv) = B::attention_backward(q, k, v, out, lse, grad, heads, causal);
        for (parent, grad) in ops.parents.into_iter().zip([dq, dk, dv]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + AttentionBackend, C: CheckpointStrategy> AttentionBackend for Autodiff<B, C> {
    fn attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        heads: usize,
        causal: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let parents = [q.node(), k.node(), v.node()];
        let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
        let (out, lse) = B::attention_forward(q.clone(), k.clone(), v.clone(), heads, causal);
        let out = match AttentionGrad
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = (q, k, v, out.clone(), lse.clone(), heads, causal);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        (out, <Self as AutodiffBackend>::from_inner(lse))
    }

    fn attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        heads: usize,
        causal: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Not differentiated again (no second derivatives of attention are taken).
        let (dq, dk, dv) = B::attention_backward(
            q.into_primitive(),
            k.into_primitive(),
            v.into_primitive(),
            out.into_primitive(),
            lse.into_primitive(),
            grad.into_primitive(),
            heads,
            causal,
        );
        (
            Self::from_inner(dq),
            Self::from_inner(dk),
            Self::from_inner(dv),
        )
    }
}

const ROWS: CubeDim = CubeDim::new_1d(64);

fn dims3(t: &CubeTensor) -> (usize, usize, usize) {
    let shape = t.meta.shape();
    (shape[0], shape[1], shape[2])
}

/// What every attention kernel of `q`'s shape is launched with: its info words (batch, seq,
/// heads, the bits of the scale 1/√head_dim), its variant, and its workgroups (rows by 64, one
/// row of groups per batch·head).
fn launch_setup(
    q: &CubeTensor,
    heads: usize,
    causal: bool,
) -> ([u32; 4], Variant, (u32, u32, u32)) {
    let (b, n, hidden) = dims3(q);
    let head_dim = hidden / heads;
    let scale = 1.0 / (head_dim as f32).sqrt();
    (
        [b as u32, n as u32, heads as u32, scale.to_bits()],
        Variant::Attention {
            head_dim: head_dim as u32,
            causal,
        },
        (n.div_ceil(64) as u32, (b * heads) as u32, 1),
    )
}

impl AttentionBackend for CubeBackend {
    fn attention_forward(
        q: CubeTensor,
        k: CubeTensor,
        v: CubeTensor,
        heads: usize,
        causal: bool,
    ) -> (CubeTensor, CubeTensor) {
        let (q, k, v) = (f32_contiguous(q), f32_contiguous(k), f32_contiguous(v));
        let (b, n, hidden) = dims3(&q);
        let (words, kind, groups) = launch_setup(&q, heads, causal);
        let out = empty(&q, [b, n, hidden]);
        let lse = empty(&q, [2, b, heads, n]);
        let mut pass = Pass::default();
        pass.launch(
            shader!("attention_forward.wgsl", kind),
            ROWS,
            groups,
            &[&q.handle, &k.handle, &v.handle, &out.handle, &lse.handle],
            &words,
        );
        pass.run(&q);
        (out, lse)
    }

    fn attention_backward(
        q: CubeTensor,
        k: CubeTensor,
        v: CubeTensor,
        out: CubeTensor,
        lse: CubeTensor,
        grad: CubeTensor,
        heads: usize,
        causal: bool,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let (q, k, v) = (f32_contiguous(q), f32_contiguous(k), f32_contiguous(v));
        let (out, lse, grad) = (
            f32_contiguous(out),
            f32_contiguous(lse),
            f32_contiguous(grad),
        );
        let (b, n, hidden) = dims3(&q);
        let (words, kind, groups) = launch_setup(&q, heads, causal);
        // stats = [lse; D]: the query side writes D = rowsum(dO∘O) for the key side, into the
        // forward's buffer when nothing else holds it.
        let stats = if lse.can_mut() { lse } else { lse.copy() };
        let mut pass = Pass::default();
        let (dq, dk, dv) = (
            empty(&q, [b, n, hidden]),
            empty(&q, [b, n, hidden]),
            empty(&q, [b, n, hidden]),
        );
        pass.launch(
            shader!("attention_backward_q.wgsl", kind),
            ROWS,
            groups,
            &[
                &q.handle,
                &k.handle,
                &v.handle,
                &out.handle,
                &grad.handle,
                &stats.handle,
                &dq.handle,
            ],
            &words,
        );
        pass.launch(
            shader!("attention_backward_kv.wgsl", kind),
            ROWS,
            groups,
            &[
                &q.handle,
                &k.handle,
                &v.handle,
                &grad.handle,
                &stats.handle,
                &dk.handle,
                &dv.handle,
            ],
            &words,
        );
        pass.run(&q);
        (dq, dk, dv)
    }
}
