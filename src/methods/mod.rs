//! Fine-tuning methods, each stating only what differs from the shared training loop. So far:
//! [`zeroshot`] (no training) and [`wise_ft`] (weight interpolation); FLYP and FT are in
//! [`crate::train::engine`]. The linear probe, LP-FT and the CE ablation arrive with the rest of
//! the methods issue.

pub mod linear_probe;
pub mod wise_ft;
pub mod zeroshot;
