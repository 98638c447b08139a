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

/// One forward + backward pass of `implementation` in milliseconds, from a synced device to a
/// synced device, so that the work is really done.
fn time_pass(
    device: &Device,
    implementation: Implementation,
    (image, text, scale): (&Tensor<2>, &Tensor<2>, &Tensor<1>),
) -> Result<f64> {
    let sync = || device.sync().map_err(|e| Error::Device(format!("{e:?}")));
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
    Ok(elapsed.as_secs_f64() * 1e3)
}

/// Timed passes per round (see [`time_both`]).
pub const ROUND: usize = 3;

/// Medians of `iters` timed passes of each implementation on the same inputs: (plain, fused;
/// NaN when not `fused_allowed`). After `warmup` untimed passes of each, the two take turns in
/// rounds of up to [`ROUND`] timed passes, each round opened by one untimed pass. So both
/// columns sample the same minutes of a machine whose speed drifts (a CPU adapter shares the
/// host with everything else), and no timed pass directly follows the other implementation's.
fn time_both(
    device: &Device,
    b: usize,
    d: usize,
    warmup: usize,
    iters: usize,
    fused_allowed: bool,
) -> Result<(f64, f64)> {
    let device = device.clone().autodiff();
    let image = Tensor::<2>::random([b, d], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let text = Tensor::<2>::random([b, d], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let scale =
        Tensor::<1>::from_data(TensorData::new(vec![100f32.ln()], [1]), &device).require_grad();
    let inputs = (&image, &text, &scale);
    let mut implementations = vec![(Implementation::Reference, Vec::with_capacity(iters))];
    if fused_allowed {
        implementations.push((Implementation::Fused, Vec::with_capacity(iters)));
    }
    for (implementation, _) in &implementations {
        for _ in 0..warmup {
            time_pass(&device, *implementation, inputs)?;
        }
    }
    let mut done = 0;
    while done < iters {
        let n = ROUND.min(iters - done);
        for (implementation, times) in &mut implementations {
            time_pass(&device, *implementation, inputs)?;
            for _ in 0..n {
                times.push(time_pass(&device, *implementation, inputs)?);
            }
        }
        done += n;
    }
    let mut medians = implementations.into_iter().map(|(_, mut times)| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    });
    // Plain always runs; fused only where allowed.
    let plain = medians.next().unwrap_or(f64::NAN);
    Ok((plain, medians.next().unwrap_or(f64::NAN)))
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
            let (plain_ms, fused_ms) =
                time_both(&device.device, batch, dim, warmup, iters, fused_allowed)?;
            Ok(BenchRow {
                batch,
                dim,
                fused_ms,
                plain_ms,
            })
        })
        .collect()
}
