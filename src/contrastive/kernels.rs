//! Launching the WGSL kernels of `shaders/` on burn's cubecl (wgpu) backend. Each launch passes
//! contiguous buffers in the order of the shader's `@binding`s, then a small u32 info buffer
//! ([`crate::wgsl`]).

use burn::backend::wgpu::{CubeBackend, CubeTensor, into_contiguous};
use burn::tensor::Shape;
use burn_cubecl::cubecl::prelude::CubeDim;

use super::extension::{ContrastiveBackend, pad};
pub use super::sources::{
    MASKED_LINE, MatmulBlock, Orientation, SHADERS, masking_source, matmul_source,
};
use crate::shader;
pub use crate::wgsl::poison_outputs;
use crate::wgsl::{Pass, Variant, empty, f32_contiguous};

fn dims2(t: &CubeTensor) -> (usize, usize) {
    let shape = t.meta.shape();
    (shape[0], shape[1])
}

const ROW: CubeDim = CubeDim::new_1d(64);

/// Workgroups of 64 invocations, one invocation per item, covering `items`.
fn groups_for(items: usize) -> (u32, u32, u32) {
    (items.div_ceil(64) as u32, 1, 1)
}

/// `x` `[rows, cols]` with its columns zero-padded to a multiple of 4 (the kernels read rows as
/// vec4); `x` itself when `cols` already is one.
fn pad_columns(x: CubeTensor) -> CubeTensor {
    use burn::backend::ops::FloatTensorOps;
    let (rows, cols) = dims2(&x);
    if cols % 4 == 0 {
        return x;
    }
    let zeros = CubeBackend::float_zeros(
        Shape::from([rows, cols.next_multiple_of(4) - cols]),
        &x.device,
        burn::tensor::FloatDType::F32,
    );
    into_contiguous(CubeBackend::float_cat(vec![x, zeros], 1))
}

/// The first `cols` columns of `x` `[rows, cols']`, contiguous; `x` itself when it has no more.
fn first_columns(x: CubeTensor, cols: usize) -> CubeTensor {
    use burn::backend::ops::FloatTensorOps;
    let (rows, have) = dims2(&x);
    if have == cols {
        return x;
    }
    let slices = [
        burn::tensor::Slice::from(0..rows),
        burn::tensor::Slice::from(0..cols),
    ];
    into_contiguous(CubeBackend::float_slice(x, &slices))
}

/// Normalise the rows of `x` `[rows, cols]` (cols a multiple of 4) into a zero-padded
/// `[pad(rows), pad(cols)]`, writing the inverse norms into `inv` from element `offset` on.
fn normalize(pass: &mut Pass, x: &CubeTensor, inv: &CubeTensor, offset: usize) -> CubeTensor {
    let (rows, cols) = dims2(x);
    let (rows_p, cols_p) = (pad(rows), pad(cols));
    let y = empty(x, [rows_p, cols_p]);
    pass.launch(
        shader!("normalize.wgsl"),
        ROW,
        groups_for(rows_p),
        &[&x.handle, &y.handle, &inv.handle],
        &[
            rows as u32,
            cols as u32,
            rows_p as u32,
            cols_p as u32,
            offset as u32,
        ],
    );
    y
}

/// `exp(scale)·op(A)·op(B)` on padded operands (all sizes multiples of 32): A stored `[mp, kp]`
/// (or `[kp, mp]`, transposed), B stored `[kp, np]` (or `[np, kp]`). Returns `[mp, np]`.
fn matmul(
    pass: &mut Pass,
    a: &CubeTensor,
    b: &CubeTensor,
    scale: &CubeTensor,
    (mp, np, kp): (usize, usize, usize),
    orientation: Orientation,
) -> CubeTensor {
    let block = MatmulBlock::for_product(a, mp, np);
    let c = empty(a, [mp, np]);
    let groups = (
        np.div_ceil(block.tile_cols() as usize) as u32,
        mp.div_ceil(block.tile_rows() as usize) as u32,
        1,
    );
    pass.launch(
        shader!("matmul.wgsl", Variant::Matmul(block, orientation)),
        CubeDim::new_2d(block.wx, block.wy),
        groups,
        &[&a.handle, &b.handle, &c.handle, &scale.handle],
        &[mp as u32, np as u32, kp as u32],
    );
    c
}

/// Both sides normalised (inverse norms into `inv` at the two offsets) and their scaled
/// similarities `exp(scale)·An·Bnᵀ`: (An `[pad(m), pad(d)]`, Bn `[pad(n), pad(d)]`, logits
/// `[pad(m), pad(n)]`).
fn similarity(
    pass: &mut Pass,
    (a, b): (&CubeTensor, &CubeTensor),
    inv: &CubeTensor,
    (offset_a, offset_b): (usize, usize),
    scale: &CubeTensor,
) -> (CubeTensor, CubeTensor, CubeTensor) {
    let a_n = normalize(pass, a, inv, offset_a);
    let b_n = normalize(pass, b, inv, offset_b);
    let (mp, dp) = dims2(&a_n);
    let np = dims2(&b_n).0;
    let logits = matmul(pass, &a_n, &b_n, scale, (mp, np, dp), Orientation::AB_T);
    (a_n, b_n, logits)
}

impl ContrastiveBackend for CubeBackend {
    fn contrastive_forward(
        image: CubeTensor,
        text: CubeTensor,
        logit_scale: CubeTensor,
        labels: CubeTensor,
        masked: bool,
    ) -> (CubeTensor, CubeTensor, CubeTensor, CubeTensor, CubeTensor) {
        let image = pad_columns(f32_contiguous(image));
        let text = pad_columns(f32_contiguous(text));
        let (scale, labels) = (f32_contiguous(logit_scale), f32_contiguous(labels));
        let b = dims2(&image).0;
        let bp = pad(b);
        let mut pass = Pass::default();
        // stats = [lse_row; lse_col; inv_image; inv_text], each [bp].
        let stats = empty(&image, [4, bp]);
        // [bp, dp], [bp, dp] (zero padding), [bp, bp]
        let (image_n, text_n, logits) =
            similarity(&mut pass, (&image, &text), &stats, (2 * bp, 3 * bp), &scale);
        let info = [b as u32, bp as u32];
        pass.launch(
            shader!("lse_rows.wgsl", Variant::Masked(masked)),
            ROW,
            groups_for(bp),
            &[&logits.handle, &labels.handle, &stats.handle],
            &info,
        );
        pass.launch(
            shader!("lse_cols.wgsl", Variant::Masked(masked)),
            ROW,
            groups_for(bp / 4),
            &[&logits.handle, &labels.handle, &stats.handle],
            &info,
        );
        let loss = empty(&image, [1]);
        pass.launch(
            shader!("loss.wgsl"),
            ROW,
            (1, 1, 1),
            &[&logits.handle, &stats.handle, &loss.handle],
            &info,
        );
        pass.run(&image);
        (loss, logits, image_n, text_n, stats)
    }

    fn contrastive_backward(
        logits: CubeTensor,
        image_n: CubeTensor,
        text_n: CubeTensor,
        stats: CubeTensor,
        labels: CubeTensor,
        masked: bool,
        logit_scale: CubeTensor,
        grad: CubeTensor,
        dim: usize,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let logits = f32_contiguous(logits);
        let (image_n, text_n) = (f32_contiguous(image_n), f32_contiguous(text_n));
        let (stats, labels) = (f32_contiguous(stats), f32_contiguous(labels));
        let (scale, grad) = (f32_contiguous(logit_scale), f32_contiguous(grad));
        // stats = [lse_row; lse_col; inv_image; inv_text], each [bp]; features are [bp, dp].
        let b = labels.meta.shape()[0];
        let (bp, dp) = dims2(&image_n);
        let d = dim.next_multiple_of(4); // the width the forward normalised
        // G overwrites the logits (one B×B buffer); per-row Σ G∘L for d/d logit_scale.
        let g = if logits.can_mut() {
            logits
        } else {
            logits.copy()
        };
        let mut pass = Pass::default();
        let partial = empty(&g, [bp]);
        let info = [b as u32, bp as u32];
        pass.launch(
            shader!("softmax_grad.wgsl", Variant::Masked(masked)),
            ROW,
            groups_for(bp),
            &[
                &g.handle,
                &labels.handle,
                &stats.handle,
                &grad.handle,
                &partial.handle,
            ],
            &info,
        );
        let d_scale = empty(&g, [1]);
        pass.launch(
            shader!("reduce_sum.wgsl"),
            ROW,
            (1, 1, 1),
            &[&partial.handle, &d_scale.handle],
            &[bp as u32],
        );
        let sizes = (bp, dp, bp);
        let d_image_n = matmul(&mut pass, &g, &text_n, &scale, sizes, Orientation::AB); // s·G·Tn
        let d_text_n = matmul(&mut pass, &g, &image_n, &scale, sizes, Orientation::A_T_B); // s·Gᵀ·In
        let d_image = empty(&g, [b, d]);
        let d_text = empty(&g, [b, d]);
        for (y, dy, dx, offset) in [
            (&image_n, &d_image_n, &d_image, 2 * bp),
            (&text_n, &d_text_n, &d_text, 3 * bp),
        ] {
            pass.launch(
                shader!("normalize_backward.wgsl"),
                ROW,
                groups_for(b),
                &[&y.handle, &dy.handle, &stats.handle, &dx.handle],
                &[b as u32, d as u32, dp as u32, offset as u32],
            );
        }
        pass.run(&g);
        (
            first_columns(d_image, dim),
            first_columns(d_text, dim),
            d_scale,
        )
    }

    fn class_probabilities(
        image: CubeTensor,
        classes: CubeTensor,
        logit_scale: CubeTensor,
    ) -> CubeTensor {
        let image = pad_columns(f32_contiguous(image));
        let classes = pad_columns(f32_contiguous(classes));
        let scale = f32_contiguous(logit_scale);
        let (n, k) = (dims2(&image).0, dims2(&classes).0);
        let (np, kp) = (pad(n), pad(k));
        let mut pass = Pass::default();
        let inv = empty(&image, [np + kp]); // the inverse norms, not needed further
        let (_, _, logits) = similarity(&mut pass, (&image, &classes), &inv, (0, np), &scale); // [np, kp]
        let probs = empty(&image, [n, k]);
        pass.launch(
            shader!("softmax_rows.wgsl"),
            ROW,
            (n as u32, 1, 1),
            &[&logits.handle, &probs.handle],
            &[n as u32, k as u32, kp as u32],
        );
        pass.run(&image);
        probs
    }
}
