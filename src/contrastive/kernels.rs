//! Launching the WGSL kernels of `shaders/` on burn's cubecl (wgpu) backend. Each launch passes
//! contiguous buffers in the order of the shader's `@binding`s, then a small u32 info buffer.

use burn::backend::wgpu::{
    CubeBackend, CubeTensor, KernelSource, SourceKernel, SourceTemplate, into_contiguous,
};
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::{DType, Shape};
use burn_cubecl::cubecl::prelude::{CubeCount, CubeDim, KernelId};
use burn_cubecl::cubecl::server::{Handle, KernelArguments};

use super::extension::{ContrastiveBackend, pad};

/// One hand-written shader: its file name (the cache key) and text.
struct Wgsl {
    name: &'static str,
    source: &'static str,
}

impl KernelSource for Wgsl {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(self.source)
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info(self.name)
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

macro_rules! shader {
    ($name:literal) => {
        Wgsl {
            name: $name,
            source: include_str!(concat!("../../shaders/", $name)),
        }
    };
}

/// Every shader of the core, for validation without a GPU.
pub const SHADERS: [(&str, &str); 9] = [
    (
        "normalize.wgsl",
        include_str!("../../shaders/normalize.wgsl"),
    ),
    ("matmul.wgsl", include_str!("../../shaders/matmul.wgsl")),
    ("lse_rows.wgsl", include_str!("../../shaders/lse_rows.wgsl")),
    ("lse_cols.wgsl", include_str!("../../shaders/lse_cols.wgsl")),
    ("loss.wgsl", include_str!("../../shaders/loss.wgsl")),
    (
        "softmax_grad.wgsl",
        include_str!("../../shaders/softmax_grad.wgsl"),
    ),
    (
        "reduce_sum.wgsl",
        include_str!("../../shaders/reduce_sum.wgsl"),
    ),
    (
        "normalize_backward.wgsl",
        include_str!("../../shaders/normalize_backward.wgsl"),
    ),
    (
        "softmax_rows.wgsl",
        include_str!("../../shaders/softmax_rows.wgsl"),
    ),
];

/// Launch `kernel` over `groups` workgroups with `buffers` bound in order, then `info`.
fn launch(
    reference: &CubeTensor,
    kernel: Wgsl,
    workgroup: CubeDim,
    groups: (u32, u32, u32),
    buffers: &[&Handle],
    info: &[u32],
) {
    let client = &reference.client;
    let info_bytes: Vec<u8> = info.iter().flat_map(|v| v.to_le_bytes()).collect();
    let info = client.create_from_slice(&info_bytes);
    let bindings = buffers
        .iter()
        .map(|h| (*h).clone().binding())
        .chain(std::iter::once(info.binding()))
        .collect();
    client.launch(
        Box::new(SourceKernel::new(kernel, workgroup)),
        CubeCount::Static(groups.0, groups.1, groups.2),
        KernelArguments::new().with_buffers(bindings),
    );
}

static POISON: AtomicBool = AtomicBool::new(false);

/// Tests: fill every kernel output with NaN before the kernel runs, so that an element a kernel
/// forgets to write cannot pass by holding a plausible old value.
pub fn poison_outputs(on: bool) {
    POISON.store(on, Ordering::SeqCst);
}

/// A new contiguous f32 tensor on `like`'s device. Its contents are whatever the kernel writes.
fn empty(like: &CubeTensor, shape: impl Into<Shape>) -> CubeTensor {
    let shape = shape.into();
    let elements = shape.num_elements().max(1);
    let handle = if POISON.load(Ordering::Relaxed) {
        let nan: Vec<u8> = std::iter::repeat_n(f32::NAN.to_le_bytes(), elements)
            .flatten()
            .collect();
        like.client.create_from_slice(&nan)
    } else {
        like.client.empty(elements * DType::F32.size())
    };
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        shape,
        handle,
        DType::F32,
    )
}

fn f32_contiguous(t: CubeTensor) -> CubeTensor {
    assert_eq!(
        t.dtype,
        DType::F32,
        "the contrastive kernels run in f32 (lavapipe has no f16)"
    );
    into_contiguous(t)
}

fn dims2(t: &CubeTensor) -> (usize, usize) {
    let shape = t.meta.shape();
    (shape[0], shape[1])
}

const ROW: CubeDim = CubeDim::new_1d(64);
const TILE: CubeDim = CubeDim::new_2d(8, 8);

/// Normalise the rows of `x` `[rows, cols]` into a zero-padded `[pad(rows), pad(cols)]`; returns
/// (y, its transpose `[pad(cols), pad(rows)]` or a dummy, inv_norm `[pad(rows)]`).
fn normalize(x: &CubeTensor, transposed: bool) -> (CubeTensor, CubeTensor, CubeTensor) {
    let (rows, cols) = dims2(x);
    let (rows_p, cols_p) = (pad(rows), pad(cols));
    let y = empty(x, [rows_p, cols_p]);
    let yt = if transposed {
        empty(x, [cols_p, rows_p])
    } else {
        empty(x, [1])
    };
    let inv = empty(x, [rows_p]);
    launch(
        x,
        shader!("normalize.wgsl"),
        ROW,
        (rows_p as u32, 1, 1),
        &[&x.handle, &y.handle, &yt.handle, &inv.handle],
        &[
            rows as u32,
            cols as u32,
            rows_p as u32,
            cols_p as u32,
            transposed as u32,
        ],
    );
    (y, yt, inv)
}

/// `exp(scale)·op(A)·B` on padded operands: B stored `[kp, np]`; A stored `[mp, kp]` or,
/// `a_transposed`, `[kp, mp]` (all multiples of 8). Returns `[mp, np]`.
fn matmul(
    a: &CubeTensor,
    b: &CubeTensor,
    scale: &CubeTensor,
    mp: usize,
    np: usize,
    kp: usize,
    a_transposed: bool,
) -> CubeTensor {
    let c = empty(a, [mp, np]);
    let groups = (np.div_ceil(64) as u32, mp.div_ceil(64) as u32, 1);
    launch(
        a,
        shader!("matmul.wgsl"),
        TILE,
        groups,
        &[&a.handle, &b.handle, &c.handle, &scale.handle],
        &[mp as u32, np as u32, kp as u32, a_transposed as u32],
    );
    c
}

impl ContrastiveBackend for CubeBackend {
    fn contrastive_forward(
        image: CubeTensor,
        text: CubeTensor,
        logit_scale: CubeTensor,
        labels: CubeTensor,
    ) -> (CubeTensor, CubeTensor, CubeTensor, CubeTensor, CubeTensor) {
        let (image, text) = (f32_contiguous(image), f32_contiguous(text));
        let (scale, labels) = (f32_contiguous(logit_scale), f32_contiguous(labels));
        let (b, d) = dims2(&image);
        let (bp, dp) = (pad(b), pad(d));
        let (image_n, _, inv_image) = normalize(&image, false); // [bp, dp], zero padding
        let (text_n, text_t, inv_text) = normalize(&text, true); // [bp, dp], [dp, bp]
        let logits = matmul(&image_n, &text_t, &scale, bp, bp, dp, false); // [bp, bp]
        let lse = empty(&image, [2, b]);
        let info = [b as u32, bp as u32];
        let n = b as u32;
        launch(
            &image,
            shader!("lse_rows.wgsl"),
            ROW,
            (n, 1, 1),
            &[&logits.handle, &labels.handle, &lse.handle],
            &info,
        );
        launch(
            &image,
            shader!("lse_cols.wgsl"),
            ROW,
            (n.div_ceil(64), 1, 1),
            &[&logits.handle, &labels.handle, &lse.handle],
            &info,
        );
        let loss = empty(&image, [1]);
        launch(
            &image,
            shader!("loss.wgsl"),
            ROW,
            (1, 1, 1),
            &[&logits.handle, &lse.handle, &loss.handle],
            &info,
        );
        let stats = pack_stats(&lse, &inv_image, &inv_text, b);
        (loss, logits, image_n, text_n, stats)
    }

    fn contrastive_backward(
        logits: CubeTensor,
        image_n: CubeTensor,
        text_n: CubeTensor,
        stats: CubeTensor,
        labels: CubeTensor,
        logit_scale: CubeTensor,
        grad: CubeTensor,
        dim: usize,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let logits = f32_contiguous(logits);
        let (image_n, text_n) = (f32_contiguous(image_n), f32_contiguous(text_n));
        let (stats, labels) = (f32_contiguous(stats), f32_contiguous(labels));
        let (scale, grad) = (f32_contiguous(logit_scale), f32_contiguous(grad));
        // stats = [lse_row; lse_col; inv_image; inv_text], each [b]; features are padded [bp, dp].
        let (b, d) = (dims2(&stats).1, dim);
        let (bp, dp) = dims2(&image_n);
        let n = b as u32;
        // G overwrites the logits (one B×B buffer); per-row Σ G∘L for d/d logit_scale.
        let g = if logits.can_mut() {
            logits
        } else {
            logits.copy()
        };
        let partial = empty(&g, [b]);
        launch(
            &g,
            shader!("softmax_grad.wgsl"),
            ROW,
            (n, 1, 1),
            &[
                &g.handle,
                &labels.handle,
                &stats.handle,
                &grad.handle,
                &partial.handle,
            ],
            &[n, bp as u32],
        );
        let d_scale = empty(&g, [1]);
        launch(
            &g,
            shader!("reduce_sum.wgsl"),
            ROW,
            (1, 1, 1),
            &[&partial.handle, &d_scale.handle],
            &[n],
        );
        let d_image_n = matmul(&g, &text_n, &scale, bp, dp, bp, false); // s·G·Tn
        let d_text_n = matmul(&g, &image_n, &scale, bp, dp, bp, true); // s·Gᵀ·In
        let d_image = empty(&g, [b, d]);
        let d_text = empty(&g, [b, d]);
        // The inverse norms sit in rows 2 and 3 of stats: passed as the whole buffer plus an
        // element offset (binding offsets must be 32-byte aligned; row offsets are not).
        let inv = &stats.handle;
        for (y, dy, dx, offset) in [
            (&image_n, &d_image_n, &d_image, 2 * n),
            (&text_n, &d_text_n, &d_text, 3 * n),
        ] {
            launch(
                &g,
                shader!("normalize_backward.wgsl"),
                ROW,
                (n, 1, 1),
                &[&y.handle, &dy.handle, inv, &dx.handle],
                &[n, d as u32, dp as u32, offset],
            );
        }
        (d_image, d_text, d_scale)
    }

    fn class_probabilities(
        image: CubeTensor,
        classes: CubeTensor,
        logit_scale: CubeTensor,
    ) -> CubeTensor {
        let (image, classes) = (f32_contiguous(image), f32_contiguous(classes));
        let scale = f32_contiguous(logit_scale);
        let (n, d) = dims2(&image);
        let (k, _) = dims2(&classes);
        let (np, kp, dp) = (pad(n), pad(k), pad(d));
        let (image_n, _, _) = normalize(&image, false); // [np, dp]
        let (_, classes_t, _) = normalize(&classes, true); // [dp, kp]
        let logits = matmul(&image_n, &classes_t, &scale, np, kp, dp, false); // [np, kp]
        let probs = empty(&image, [n, k]);
        launch(
            &image,
            shader!("softmax_rows.wgsl"),
            ROW,
            (n as u32, 1, 1),
            &[&logits.handle, &probs.handle],
            &[n as u32, k as u32, kp as u32],
        );
        probs
    }
}

/// Pack `[2, b]` LSEs and the first `b` of two padded inverse-norm vectors into one `[4, b]`.
fn pack_stats(
    lse: &CubeTensor,
    inv_image: &CubeTensor,
    inv_text: &CubeTensor,
    b: usize,
) -> CubeTensor {
    use burn::backend::ops::FloatTensorOps;
    let first_b = |t: &CubeTensor| {
        let t = CubeBackend::float_slice(t.clone(), &[burn::tensor::Slice::from(0..b)]);
        CubeBackend::float_reshape(t, Shape::from([1, b]))
    };
    let parts = vec![lse.clone(), first_b(inv_image), first_b(inv_text)];
    into_contiguous(CubeBackend::float_cat(parts, 0))
}
