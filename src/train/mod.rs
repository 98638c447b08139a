//! Training shared by every method: the one loop (`engine`), a run's data (`data`), checkpoints, the optimizer, the
//! learning-rate schedule, gradient clipping, the loss scale, metrics and the step benchmark.

pub mod adamw;
pub mod adamw_gpu;
pub mod bench;
pub mod checkpoint;
pub mod clip_grad;
pub mod data;
pub mod engine;
pub mod grads_gpu;
pub mod loss_scale;
pub mod metrics;
pub mod results;
pub mod schedule;

pub use metrics::Metrics;
pub use results::{ProbeResults, RunResults, WisePoint};
