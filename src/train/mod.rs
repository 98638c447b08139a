//! Training infrastructure shared by every method: metrics and the learning-rate schedule (the
//! training loop itself arrives with the methods issue).

pub mod adamw;
pub mod bench;
pub mod checkpoint;
pub mod clip_grad;
pub mod engine;
pub mod loss_scale;
pub mod metrics;
pub mod schedule;

pub use metrics::Metrics;
