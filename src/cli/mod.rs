//! Subcommands of `flyp` that have their own file.

pub mod demo;
pub mod pretrain;
