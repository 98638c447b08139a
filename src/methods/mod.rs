//! Fine-tuning methods, each stating only what differs from the shared training loop:
//! [`zeroshot`] (no training), [`linear_probe`], [`wise_ft`] (weight interpolation), the
//! classification [`head`] of the head-based methods; FLYP, FT and
//! the CE ablation are losses of [`crate::train::engine`]; [`recipe`] names them all.

pub mod head;
pub mod linear_probe;
pub mod recipe;
pub mod wise_ft;
pub mod zeroshot;
