//! Hot paths of the two towers on the Flex CPU backend, as burn backend extensions with
//! hand-written backward passes under autodiff. wgpu devices keep burn's ops (there they fuse).
//! QuickGELU, one extension for Flex and wgpu, is [`super::quick_gelu`]; its vectorised Flex
//! passes use the helpers here.
//!
//! - [`matmul`]: matrix products straight into gemm, strided operands read in place.
//! - [`attention`]: both products through [`matmul`], the scaled, masked softmax in one pass.
//! - [`layer_norm`]: LayerNorm, forward and backward, one pass over the rows each.

mod attention;
mod layer_norm;
mod matmul;

use std::mem::MaybeUninit;

use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

pub use attention::attention;
pub use layer_norm::layer_norm;
pub use matmul::{linear, matmul};

/// True when `x` is f32 on the Flex backend, with or without autodiff.
pub fn applies<const D: usize>(x: &Tensor<D>) -> bool {
    use crate::device::BackendKind;
    x.dtype() == DType::F32 && BackendKind::of(&x.device()) == Some(BackendKind::Flex)
}

/// Elements per rayon task: big enough to amortise the task, small enough to share out.
const CHUNK: usize = 1 << 14;

/// `x` laid out contiguously from offset 0 (copied only when it is not).
pub(crate) fn contiguous(x: FlexTensor) -> FlexTensor {
    if x.is_contiguous() && x.layout().start_offset() == 0 {
        x
    } else {
        x.to_contiguous()
    }
}

/// The f32 values a contiguous `x` holds (its buffer may be longer: a narrowed view).
pub(crate) fn f32s(x: &FlexTensor) -> &[f32] {
    &x.storage::<f32>()[..x.layout().num_elements()]
}

/// `a += b`, element by element.
#[inline]
fn add_assign(a: &mut [f32], b: &[f32]) {
    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
}

/// `x`'s values as tensor data, contiguous, in `x`'s own buffer when nothing else holds it (a copy
/// otherwise), ready to be rewritten in place through [`f32_values`].
pub(crate) fn owned_data(x: FlexTensor) -> TensorData {
    contiguous(x).into_data()
}

/// The f32 values of `data` (the passes here only see f32: [`applies`] checks it).
pub(crate) fn f32_values(data: &mut TensorData) -> &mut [f32] {
    let dtype = data.dtype();
    data.as_mut_slice::<f32>()
        .unwrap_or_else(|e| panic!("a Flex pass for f32 got {dtype:?}: {e:?}"))
}

/// `f` on each element of `x`, written over `x` when nothing else holds its buffer (autodiff keeps
/// inputs for the backward pass), else into a fresh vector: never a copy first.
pub(super) fn map_f32(x: FlexTensor, f: impl Fn(f32) -> f32 + Sync) -> FlexTensor {
    let mut x = contiguous(x);
    let n = x.layout().num_elements();
    if let Some(values) = x.try_storage_mut::<f32>() {
        values[..n].par_chunks_mut(CHUNK).for_each(|chunk| {
            chunk.iter_mut().for_each(|v| *v = f(*v));
        });
        return x;
    }
    let shape = x.layout().shape().clone();
    let input = f32s(&x);
    // SAFETY: each chunk's elements are all written, one per input element.
    unsafe {
        from_fn_f32(shape, CHUNK, |out, start| {
            let input = &input[start..start + out.len()];
            out.iter_mut().zip(input).for_each(|(o, v)| {
                o.write(f(*v));
            });
        })
    }
}

/// `f(a, b)` elementwise (same shapes), written over `a`'s buffer when nothing else holds it, else
/// into a fresh vector.
pub(super) fn zip_map_f32(
    a: FlexTensor,
    b: FlexTensor,
    f: impl Fn(f32, f32) -> f32 + Sync,
) -> FlexTensor {
    assert_eq!(
        a.layout().shape(),
        b.layout().shape(),
        "zip_map_f32: shapes differ"
    );
    let (mut a, b) = (contiguous(a), contiguous(b));
    let n = a.layout().num_elements();
    let others = f32s(&b);
    if let Some(values) = a.try_storage_mut::<f32>() {
        values[..n]
            .par_chunks_mut(CHUNK)
            .zip(others.par_chunks(CHUNK))
            .for_each(|(chunk, others)| {
                chunk
                    .iter_mut()
                    .zip(others)
                    .for_each(|(v, o)| *v = f(*v, *o));
            });
        return a;
    }
    let shape = a.layout().shape().clone();
    let input = f32s(&a);
    // SAFETY: each chunk's elements are all written, one per pair of input elements.
    unsafe {
        from_fn_f32(shape, CHUNK, |out, start| {
            let range = start..start + out.len();
            out.iter_mut()
                .zip(&input[range.clone()])
                .zip(&others[range])
                .for_each(|((o, v), w)| {
                    o.write(f(*v, *w));
                });
        })
    }
}

/// A new f32 tensor of `shape` whose every element `fill` writes: it gets each `chunk`-long piece
/// of the output (uninitialised; the last may be shorter) and the piece's first index, on rayon's
/// threads.
///
/// # Safety
/// `fill` writes every element of every piece it is given.
unsafe fn from_fn_f32(
    shape: Shape,
    chunk: usize,
    fill: impl Fn(&mut [MaybeUninit<f32>], usize) + Sync,
) -> FlexTensor {
    let n = shape.num_elements();
    let mut out: Vec<f32> = Vec::with_capacity(n);
    if n > 0 {
        out.spare_capacity_mut()[..n]
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, piece)| fill(piece, i * chunk));
    }
    // SAFETY: each chunk was handed out once and `fill` wrote all of it (the caller's promise).
    unsafe { out.set_len(n) };
    FlexTensor::from_data(TensorData::new(out, shape))
}

/// `e^x` to about 1 ulp, branch-free: `x = n·ln2 + r` with |r| ≤ ln2/2, a degree-7 Taylor
/// polynomial for `e^r` (truncation error below 1e-8), and `2^n` put into the exponent bits.
/// Inputs are clamped to [-87.3, 88.3], so the result stays a normal, finite f32; NaN stays NaN.
#[inline(always)]
pub(super) fn exp_f32(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for |n| < 2^8 (Cody–Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let shifted = x * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // The integer n sits in `shifted`'s low bits (two's complement, |n| ≤ 128).
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let scale = f32::from_bits((n_bits.wrapping_add(127) << 23) as u32);
    p * scale
}

/// Largest absolute difference between `ours` and `reference`, and `reference`'s largest
/// magnitude (the scale a relative tolerance applies to).
#[cfg(test)]
pub(crate) fn max_difference<const D: usize>(ours: Tensor<D>, reference: Tensor<D>) -> (f32, f32) {
    let scale = reference.clone().abs().max().into_scalar::<f32>();
    ((ours - reference).abs().max().into_scalar::<f32>(), scale)
}
