//! Prompt templates: how a class name becomes a caption ("a photo of a {}.").

use std::path::Path;

use crate::error::{Error, Result};

const OPENAI_IMAGENET: &str = include_str!("../../assets/templates/openai_imagenet.txt");
const EMOJI: &str = include_str!("../../assets/templates/emoji.txt");

/// A list of templates, each with one `{}` for the class name.
#[derive(Debug, Clone, PartialEq)]
pub struct Templates(pub Vec<String>);

impl Templates {
    /// OpenAI's 80 ImageNet templates (see `assets/templates/README.md`).
    pub fn openai() -> Self {
        Self::lines(OPENAI_IMAGENET)
    }

    /// The demo's three emoji templates ("an emoji of {}.", "a {} emoji.", "{}").
    pub fn emoji() -> Self {
        Self::lines(EMOJI)
    }

    fn lines(text: &str) -> Self {
        Self(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
        )
    }

    /// The one-template default: "a photo of a {}.".
    pub fn simple() -> Self {
        Self(vec!["a photo of a {}.".to_string()])
    }

    /// `openai`, `simple`, `emoji`, or a file of templates (one per line, each with `{}`).
    pub fn named(spec: &str) -> Result<Self> {
        match spec {
            "openai" | "openai-imagenet" => Ok(Self::openai()),
            "simple" | "photo" => Ok(Self::simple()),
            "emoji" => Ok(Self::emoji()),
            path => Self::from_file(Path::new(path)),
        }
    }

    /// Templates from a file: one per line, `#` comments and blank lines skipped.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut templates = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.matches("{}").count() != 1 {
                return Err(Error::Invalid(format!(
                    "{} line {}: a template needs exactly one {{}} for the class name: {line:?}",
                    path.display(),
                    n + 1
                )));
            }
            templates.push(line.to_string());
        }
        if templates.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: no templates in it",
                path.display()
            )));
        }
        Ok(Self(templates))
    }

    /// Every template filled with `class`.
    pub fn fill(&self, class: &str) -> Vec<String> {
        self.0.iter().map(|t| t.replacen("{}", class, 1)).collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openai_list_has_80_templates_with_one_slot_each() {
        let t = Templates::openai();
        assert_eq!(t.len(), 80);
        assert!(t.0.iter().all(|x| x.matches("{}").count() == 1));
        assert_eq!(t.fill("cat")[0], "a bad photo of a cat.");
        assert_eq!(
            Templates::simple().fill("sea lion"),
            vec!["a photo of a sea lion."]
        );
    }
}
