//! Timing the fused contrastive core against the plain-ops reference on one device
//! (`flyp bench contrastive`). A benchmark, not a test: it prints a table.

use std::time::{Duration, Instant};

use burn::prelude::*;
use burn::tensor::Distribution;

use super::{Implementation, contrastive_loss_with};
use crate::device::ComputeDevice;
use crate::error::{Error, Result};

/// One measured configuration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchRow {
    pub batch: usize,
    pub dim: usize,
    /// Median forward + backward time, milliseconds.
    pub fused_ms: f64,
    pub plain_ms: f64,
}

impl BenchRow {
    /// How many times faster the fused path is.
    pub fn speedup(&self) -> f64 {
        self.plain_ms / self.fused_ms
    }
}

/// Median of `iters` timed forward + backward passes (after `warmup` untimed ones), each ended by
/// a device sync so that the work is really done.
fn time_one(
    device: &Device,
    implementation: Implementation,
    b: usize,
    d: usize,
    warmup: usize,
    iters: usize,
) -> Result<f64> {
    let device = device.clone().autodiff();
    let image = Tensor::<2>::random([b, d], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let text = Tensor::<2>::random([b, d], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let scale =
        Tensor::<1>::from_data(TensorData::new(vec![100f32.ln()], [1]), &device).require_grad();
    let sync = || device.sync().map_err(|e| Error::Device(format!("{e:?}")));
    let mut times = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        sync()?;
        let start = Instant::now();
        let loss = contrastive_loss_with(
            implementation,
            image.clone(),
            text.clone(),
            scale.clone(),
            None,
        );
        let grads = loss.backward();
        // Keep the gradients alive until the sync so that none of the work is skipped.
        let kept = (image.grad(&grads), text.grad(&grads), scale.grad(&grads));
        sync()?;
        let elapsed: Duration = start.elapsed();
        drop(kept);
        if i >= warmup {
            times.push(elapsed.as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Fused vs plain ops for every `(batch, dim)`, forward + backward, on `device`.
pub fn run(
    device: &ComputeDevice,
    sizes: &[(usize, usize)],
    warmup: usize,
    iters: usize,
) -> Result<Vec<BenchRow>> {
    let fused_allowed = device.kind == crate::device::BackendKind::Wgpu;
    sizes
        .iter()
        .map(|&(batch, dim)| {
            let plain_ms = time_one(
                &device.device,
                Implementation::Reference,
                batch,
                dim,
                warmup,
                iters,
            )?;
            let fused_ms = if fused_allowed {
                time_one(
                    &device.device,
                    Implementation::Fused,
                    batch,
                    dim,
                    warmup,
                    iters,
                )?
            } else {
                f64::NAN
            };
            Ok(BenchRow {
                batch,
                dim,
                fused_ms,
                plain_ms,
            })
        })
        .collect()
}
