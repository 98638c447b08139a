//! The methods a user picks by name (`flyp train --method`, `flyp compare`, the app's Method box):
//! which training loop of [`crate::train::engine`] runs, and whether a linear probe runs first.

use crate::error::{Error, Result};
use crate::train::engine::Method;

/// A method as users name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// No training: the prompt head of the pretrained model.
    ZeroShot,
    /// A logistic-regression head on frozen image features (L2 chosen on validation).
    LinearProbe,
    /// Standard fine-tuning from the zero-shot head.
    Finetune,
    /// The linear probe, then fine-tuning from its head (Kumar et al., 2022).
    LpFt,
    /// FLYP: the pretraining loss with class prompts as captions.
    Flyp { mask_collisions: bool },
    /// FLYP's ablation: both towers trained with cross-entropy.
    CeAblation,
}

impl Recipe {
    /// Every recipe, in the order tables list them.
    pub const ALL: [Recipe; 6] = [
        Recipe::ZeroShot,
        Recipe::LinearProbe,
        Recipe::Finetune,
        Recipe::LpFt,
        Recipe::Flyp {
            mask_collisions: false,
        },
        Recipe::CeAblation,
    ];

    /// `zeroshot`, `linear-probe` (`lp`), `finetune` (`ft`), `lp-ft`, `flyp`, `ce-ablation`.
    pub fn from_name(name: &str, mask_collisions: bool) -> Result<Self> {
        Ok(match name {
            "zeroshot" | "zero-shot" => Self::ZeroShot,
            "linear-probe" | "lp" => Self::LinearProbe,
            "finetune" | "ft" => Self::Finetune,
            "lp-ft" => Self::LpFt,
            "flyp" => Self::Flyp { mask_collisions },
            "ce-ablation" => Self::CeAblation,
            other => {
                return Err(Error::Invalid(format!(
                    "unknown method '{other}': use zeroshot, linear-probe, finetune, lp-ft, flyp \
                     or ce-ablation"
                )));
            }
        })
    }

    /// The name runs are recorded under (what [`Recipe::from_name`] reads).
    pub fn name(self) -> &'static str {
        match self {
            Self::ZeroShot => "zeroshot",
            Self::LinearProbe => "linear-probe",
            Self::Finetune => "finetune",
            Self::LpFt => "lp-ft",
            Self::Flyp { .. } => "flyp",
            Self::CeAblation => "ce-ablation",
        }
    }

    /// The training loop, if any.
    pub fn method(self) -> Option<Method> {
        match self {
            Self::ZeroShot | Self::LinearProbe => None,
            Self::Finetune | Self::LpFt => Some(Method::Finetune),
            Self::Flyp { mask_collisions } => Some(Method::Flyp { mask_collisions }),
            Self::CeAblation => Some(Method::CeAblation),
        }
    }

    /// A linear probe runs first (its head is the result, or where fine-tuning starts).
    pub fn probes_first(self) -> bool {
        matches!(self, Self::LinearProbe | Self::LpFt)
    }

    /// The bundled demo's OOD sets, folders of `assets/emoji-subset` (`flyp demo` and the app):
    /// the test emoji in Noto, and in three art styles the demo model never saw.
    pub const DEMO_OOD_SETS: [&'static str; 2] = ["noto", "unseen-styles"];

    /// The global gradient-norm clip of the method's reference recipe: WiSE-FT's FT code (which
    /// LP-FT's fine-tuning stage follows) clips at 1.0; FLYP's code and pretraining do not clip.
    /// `flyp compare`, `flyp demo` and the app use it unless told otherwise.
    pub fn default_clip_grad_norm(self) -> Option<f64> {
        matches!(self, Self::Finetune | Self::LpFt).then_some(1.0)
    }

    /// The learning rate the bundled demo runs the method at: chosen once on the demo's
    /// validation set from the grid 1e-5, 3e-5, 1e-4, 3e-4 (`flyp demo --lr-grid`; README, "How
    /// the demo is designed"). The app starts from it with the bundled data.
    pub fn demo_lr(self) -> f64 {
        // Validation top-1 % at 1e-5, 3e-5, 1e-4, 3e-4 (seed 0, 2026-12-06): FT 49.5, 57.6, 60.6,
        // 62.6; LP-FT 56.6, 59.6, 61.6, 60.6; FLYP 46.5, 46.5, 54.5, 56.6.
        match self {
            Self::Finetune => 3e-4,
            Self::LpFt => 1e-4,
            _ => 3e-4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for recipe in Recipe::ALL {
            assert_eq!(Recipe::from_name(recipe.name(), false).unwrap(), recipe);
        }
        assert_eq!(Recipe::from_name("lp", false).unwrap(), Recipe::LinearProbe);
        assert_eq!(
            Recipe::from_name("flyp", true).unwrap().method(),
            Some(Method::Flyp {
                mask_collisions: true
            })
        );
        assert!(Recipe::LpFt.probes_first() && Recipe::LpFt.method() == Some(Method::Finetune));
        let e = Recipe::from_name("sgd", false).unwrap_err().to_string();
        assert!(e.contains("'sgd'"), "{e}");
    }
}
