//! Getting images into the model: decoding and CLIP preprocessing.

pub mod transform;

pub use transform::{Preprocess, decode_image};
