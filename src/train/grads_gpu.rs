//! The sum of squares of every gradient on wgpu in a few launches (multi-tensor, as PyTorch's
//! `foreach` norm in `clip_grad_norm_`), for global-norm clipping and the loss scale's finite
//! check.
//!
//! Written with burn's ops, the global norm is a square-and-sum per gradient and an add per
//! gradient into the total, then a multiplication per gradient: clipping was 249 of a tiny FT
//! step's 513 launches on llvmpipe (BENCHMARKS.md). Here the sum ([`sum_squares`], which
//! [`super::clip_grad`] calls with the f32 gradients on wgpu) is one fusion operation: a kernel (`shaders/sum_squares.wgsl`)
//! that takes as many gradients per launch as the adapter has storage bindings for (one each, read
//! only), each workgroup writing the sum of its share, then one launch adding the shares
//! (`shaders/reduce_sum.wgsl`). The factor that clipping and unscaling compute from it is applied
//! inside the multi-tensor AdamW ([`super::adamw_gpu::step`]), not by a multiplication per
//! gradient.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use burn::backend::Cube;
use burn::backend::tensor::FloatTensor;
use burn::backend::wgpu::CubeTensor;
use burn::prelude::*;
use burn::tensor::DType;
use burn_cubecl::cubecl::prelude::CubeDim;

use crate::shader;
use crate::wgsl::{Pass, Variant, empty, grid, owner_source, register_fused};

/// Off: the sum is burn's ops, one gradient at a time (for `flyp bench step`'s before/after
/// comparison).
static MULTI_TENSOR: AtomicBool = AtomicBool::new(true);

/// Turn the multi-tensor sum on (the default) or off for this process.
pub fn set_multi_tensor(on: bool) {
    MULTI_TENSOR.store(on, Ordering::Relaxed);
}

/// True when the multi-tensor sum (and the factor folded into AdamW) is on.
pub(crate) fn multi_tensor() -> bool {
    MULTI_TENSOR.load(Ordering::Relaxed)
}

/// `g` as the fusion tensor the multi-tensor sum takes, when it is f32 on wgpu.
pub(crate) fn batchable<const D: usize>(g: &Tensor<D>) -> Option<FloatTensor<Cube>> {
    (g.dtype() == DType::F32 && crate::model::gpu::on_cube(g)).then(|| {
        g.clone()
            .try_into_primitive::<Cube>()
            .expect("on_cube: a wgpu tensor")
    })
}

/// Register one fusion operation summing the squares of `tensors` (f32, wgpu) into a `[1]` tensor.
pub(crate) fn sum_squares(tensors: Vec<FloatTensor<Cube>>) -> Tensor<1> {
    let outputs = vec![([1].into(), DType::F32)];
    let total = register_fused("flyp_sum_squares", tensors, outputs, |tensors| {
        vec![launch(tensors)]
    })
    .pop()
    .expect("one output was registered");
    Tensor::from_primitive::<Cube>(total)
}

/// Elements per workgroup: the shader's `@workgroup_size` (256) times its `SPAN` (32).
const WORKGROUP: usize = 256 * 32;
/// Info words before the per-tensor blocks of two.
const HEADER: usize = 8;
/// The most tensors per launch, whatever the adapter allows: the shader scans them linearly.
static MOST_PER_LAUNCH: AtomicUsize = AtomicUsize::new(64);

/// Tests: fewer tensors per launch, so that a few gradients take several launches.
#[doc(hidden)]
pub fn set_most_per_launch(n: usize) {
    MOST_PER_LAUNCH.store(n.clamp(1, 64), Ordering::Relaxed);
}
/// Workgroups per row of the dispatch: WebGPU's limit per dimension.
const PER_ROW: usize = 65535;

/// The sum of squares of `tensors`, in groups of as many as the adapter's storage bindings allow
/// (one is the partial sums, one the info), then one launch adding every group's partial sums.
fn launch(tensors: &[CubeTensor]) -> CubeTensor {
    let reference = &tensors[0];
    let bindings = reference.client.properties().hardware.max_bindings as usize;
    let most = MOST_PER_LAUNCH.load(Ordering::Relaxed);
    let per_launch = bindings.saturating_sub(2).clamp(1, most);
    let groups_of = |t: &CubeTensor| t.meta.shape().num_elements().div_ceil(WORKGROUP).max(1);
    let all_groups: usize = tensors.iter().map(groups_of).sum();
    let partials = empty(reference, [all_groups]);
    let total = empty(reference, [1]);
    let mut pass = Pass::default();
    let mut base = 0usize;
    for group in tensors.chunks(per_launch) {
        let mut info = vec![0u32; HEADER];
        info[0] = group.len() as u32;
        info[2] = base as u32;
        let mut workgroups = 0usize;
        for t in group {
            info.extend([workgroups as u32, t.meta.shape().num_elements() as u32]);
            workgroups += groups_of(t);
        }
        info[1] = workgroups as u32;
        let mut buffers: Vec<_> = group.iter().map(|t| &t.handle).collect();
        buffers.push(&partials.handle);
        pass.launch(
            shader!(
                "sum_squares.wgsl",
                Variant::SumSquares {
                    tensors: group.len() as u32
                }
            ),
            CubeDim::new_1d(256),
            grid(workgroups, PER_ROW),
            &buffers,
            &info,
        );
        base += workgroups;
    }
    pass.launch(
        shader!("reduce_sum.wgsl"),
        CubeDim::new_1d(64),
        (1, 1, 1),
        &[&partials.handle, &total.handle],
        &[all_groups as u32],
    );
    pass.run(reference);
    total
}

/// The sum-of-squares shader for a group of `tensors` tensors: its bindings and one `case` each.
pub fn sum_squares_source(text: &str, tensors: u32) -> String {
    const BINDINGS: &str = "//@bindings";
    const CASES: &str = "//@cases";
    const OWNER: &str = "//@owner";
    debug_assert!(text.contains(BINDINGS) && text.contains(CASES) && text.contains(OWNER));
    let n = tensors as usize;
    let mut bindings = String::new();
    let mut cases = String::new();
    for i in 0..n {
        bindings.push_str(&format!(
            "@group(0) @binding({i}) var<storage, read_write> g_{i}: array<f32>;\n"
        ));
        cases.push_str(&format!(
            "case {i}u: {{\n\
             \x20           for (var j = 0u; j < SPAN; j++) {{\n\
             \x20               let e = start + j * 256u;\n\
             \x20               if (e >= n) {{ break; }}\n\
             \x20               let v = g_{i}[e];\n\
             \x20               sum += v * v;\n\
             \x20           }}\n\
             \x20       }}\n        "
        ));
    }
    bindings.push_str(&format!(
        "@group(0) @binding({n}) var<storage, read_write> partials: array<f32>;\n\
         @group(0) @binding({}) var<storage, read_write> info: array<u32>;",
        n + 1
    ));
    text.replace(BINDINGS, &bindings)
        .replace(OWNER, &owner_source(2))
        .replace(CASES, &cases)
}
