//! Hot paths of the two towers on the Flex CPU backend, as burn backend extensions with
//! hand-written backward passes under autodiff. wgpu devices keep burn's ops (there they fuse).
//!
//! - [`quick_gelu`]: QuickGELU in one vectorised pass over both cores.
//! - [`matmul`]: matrix products straight into gemm, strided operands read in place.
//! - [`attention`]: both products through [`matmul`], the scaled, masked softmax in one pass.

mod attention;
mod matmul;
mod quick_gelu;

use burn::backend::DispatchDevice;
use burn::prelude::*;
use burn::tensor::DType;

pub use attention::attention;
pub use matmul::{linear, matmul};
pub use quick_gelu::quick_gelu;

/// True when `x` is f32 on the Flex backend, with or without autodiff.
pub fn applies<const D: usize>(x: &Tensor<D>) -> bool {
    fn is_flex(device: &DispatchDevice) -> bool {
        match device {
            DispatchDevice::Flex(_) => true,
            DispatchDevice::Autodiff(inner) => is_flex(inner),
            _ => false,
        }
    }
    x.dtype() == DType::F32 && is_flex(x.device().as_dispatch())
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
