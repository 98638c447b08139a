//! Fine-tuning methods, each stating only what differs from the shared training loop. So far:
//! [`zeroshot`] (no training). Linear probe, FT, LP-FT, FLYP, the CE ablation and WiSE-FT arrive
//! with the methods issue.

pub mod zeroshot;
