//! The methods, one file each, and the one table that lists them.
//!
//! A [`Method`] is what a user picks by name (`flyp train --method`, `flyp compare --methods`, the
//! app's Method box): its name, what it trains, whether a linear probe runs first, whether WiSE-FT
//! applies, its reference defaults. Methods that train weights hand the training loop
//! ([`crate::train::engine`]) an [`Objective`]: the loss of one batch, and whether a
//! classification head trains. The loop knows no method by name.
//!
//! Adding a method is one file here (a unit struct implementing [`Method`], and an [`Objective`]
//! if it trains) and one line in `register!` below; ARCHITECTURE.md walks through it.

pub mod head;
pub mod pretrain;
pub mod recipe;
pub mod wise_ft;

use std::sync::Arc;

use crate::error::{Error, Result};
pub use crate::train::engine::{Objective, StepBatch};

/// Declares each method's module and lists its type in [`ALL`]: one line per method.
macro_rules! register {
    ($($module:ident::$method:ident),* $(,)?) => {
        $(pub mod $module;)*
        /// Every method users can pick, in the order tables list them.
        pub const ALL: &[&dyn Method] = &[$(&$module::$method),*];
    };
}

register! {
    zeroshot::ZeroShot,
    linear_probe::LinearProbe,
    finetune::Finetune,
    lp_ft::LpFt,
    flyp::Flyp,
    ce_ablation::CeAblation,
}

/// The bundled demo's OOD sets, folders of `assets/emoji-subset` (`flyp demo` and the app): the
/// test emoji in Noto, and in three art styles the demo model never saw.
pub const DEMO_OOD_SETS: [&str; 2] = ["noto", "unseen-styles"];

/// Options a method may read when it builds its objective (flags of `flyp train`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// FLYP: drop same-class off-diagonal pairs from the softmax denominators.
    pub mask_collisions: bool,
}

/// A method as users name it. Everything the CLI, the app, the demo and the report ask of a
/// method is asked here.
pub trait Method: Sync + Send + 'static {
    /// The name runs are recorded under and `--method` reads (lower case, dashes).
    fn name(&self) -> &'static str;
    /// Other names `--method` accepts.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// The app's label.
    fn label(&self) -> &'static str;
    /// One sentence: what trains, with which loss, from which head (`--help`, the app's tooltip).
    fn about(&self) -> &'static str;
    /// The training loop's objective, or `None` for a method that trains no weights.
    fn objective(&self, options: Options) -> Option<Arc<dyn Objective>>;
    /// A linear probe runs first: its head is the result (no objective) or where training starts.
    fn probes_first(&self) -> bool {
        false
    }
    /// Whether the method trains weights (and so has a WiSE-FT curve in `flyp compare`).
    fn trains(&self) -> bool {
        self.objective(Options::default()).is_some()
    }
    /// Whether the method fits anything to the data (weights, or a linear probe's head): what a
    /// run folder can hold. Zero-shot fits nothing.
    fn fits(&self) -> bool {
        self.trains() || self.probes_first()
    }
    /// The global gradient-norm clip of the method's reference recipe, used by `flyp compare`,
    /// `flyp demo` and the app unless told otherwise.
    fn reference_clip_grad_norm(&self) -> Option<f64> {
        None
    }
    /// The factor `flyp compare` applies to its --lr for this method (LP-FT's smaller rate).
    fn compare_lr_scale(&self, lp_ft_lr_scale: f64) -> f64 {
        let _ = lp_ft_lr_scale;
        1.0
    }
    /// The learning rate the bundled demo and the app's demo defaults use.
    fn demo_lr(&self) -> f64 {
        3e-4
    }
    /// Run by `flyp compare` when no --methods are given.
    fn compared_by_default(&self) -> bool {
        true
    }
    /// Offered in the app's Method box.
    fn in_app(&self) -> bool {
        true
    }
    /// The method's colour in the report's figures (an index into the palette).
    fn colour(&self) -> usize;
}

impl PartialEq for dyn Method {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl std::fmt::Debug for dyn Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The method called `name` (or one of its aliases).
pub fn by_name(name: &str) -> Result<&'static dyn Method> {
    ALL.iter()
        .copied()
        .find(|m| m.name() == name || m.aliases().contains(&name))
        .ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|m| m.name()).collect();
            Error::Invalid(format!(
                "unknown method '{name}': use one of {}",
                names.join(", ")
            ))
        })
}

/// The methods the app offers, in table order.
pub fn in_app() -> Vec<&'static dyn Method> {
    ALL.iter().copied().filter(|m| m.in_app()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for method in ALL {
            assert_eq!(by_name(method.name()).unwrap(), *method);
            for alias in method.aliases() {
                assert_eq!(by_name(alias).unwrap(), *method);
            }
        }
        assert_eq!(by_name("lp").unwrap().name(), "linear-probe");
        assert!(by_name("lp-ft").unwrap().probes_first() && by_name("lp-ft").unwrap().trains());
        assert!(!by_name("zeroshot").unwrap().trains());
        let e = by_name("sgd").unwrap_err().to_string();
        assert!(e.contains("'sgd'") && e.contains("flyp"), "{e}");
        let mut names: Vec<&str> = ALL.iter().map(|m| m.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "two methods share a name");
    }
}
