//! CLIP's byte-level BPE through the `tokenizers` crate, with the same ids as transformers'
//! `CLIPTokenizer`: NFC, whitespace runs collapsed, lower-cased, `<|startoftext|>` … `<|endoftext|>`,
//! truncated to the context length with `<|endoftext|>` kept last.
//!
//! A model directory's `tokenizer.json` wins; otherwise the bundled one (OpenAI's MIT-licensed BPE,
//! see `assets/clip-tokenizer/README.md`) is used.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};

/// The bundled `tokenizer.json` (OpenAI CLIP BPE, 49408 tokens).
const BUNDLED: &[u8] = include_bytes!("../assets/clip-tokenizer/tokenizer.json");

/// CLIP's text context length.
pub const CONTEXT_LENGTH: usize = 77;

/// A CLIP tokenizer with truncation set.
#[derive(Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    context_length: usize,
    /// Where it came from, for messages: a path or "bundled".
    pub source: String,
}

impl ClipTokenizer {
    /// The bundled OpenAI vocabulary.
    pub fn bundled(context_length: usize) -> Result<Self> {
        let inner = Tokenizer::from_bytes(BUNDLED)
            .map_err(|e| Error::Tokenizer(format!("bundled tokenizer.json: {e}")))?;
        Self::with_truncation(inner, context_length, "bundled OpenAI CLIP BPE".into())
    }

    /// `dir/tokenizer.json` when present, else the bundled vocabulary.
    pub fn for_model_dir(dir: &Path, context_length: usize) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Self::bundled(context_length);
        }
        let inner = Tokenizer::from_file(&path)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        Self::with_truncation(inner, context_length, path.display().to_string())
    }

    fn with_truncation(
        mut inner: Tokenizer,
        context_length: usize,
        source: String,
    ) -> Result<Self> {
        // CLIP's tokenizer.json sets neither: truncate here (special tokens are counted, so
        // <|endoftext|> stays last); padding is done by the caller.
        inner
            .with_truncation(Some(TruncationParams {
                max_length: context_length,
                strategy: TruncationStrategy::LongestFirst,
                direction: TruncationDirection::Right,
                stride: 0,
            }))
            .map_err(|e| Error::Tokenizer(format!("{source}: {e}")))?;
        inner.with_padding(None);
        Ok(Self {
            inner,
            context_length,
            source,
        })
    }

    /// Token ids of one text, `<|startoftext|>` first and `<|endoftext|>` last.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(format!("cannot encode {text:?}: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of many texts.
    pub fn encode_all<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        texts.iter().map(|t| self.encode(t.as_ref())).collect()
    }

    /// Write the tokenizer as `tokenizer.json` (without the truncation set here, as HF ships it).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut plain = self.inner.clone();
        plain
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        let json = plain
            .to_string(false)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        crate::model::weights::write_atomic(path, json.as_bytes())
    }

    /// How many ids it can produce (its vocabulary with the special tokens).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Refuse a model whose token embedding has fewer rows than this tokenizer has ids (an id
    /// past the end would index outside the table).
    pub fn check_fits(&self, vocab_size: usize, model: &Path) -> Result<()> {
        if self.vocab_size() > vocab_size {
            return Err(Error::Tokenizer(format!(
                "{} produces {} token ids but the model {} has text_config.vocab_size {vocab_size}; \
                 put the model's own tokenizer.json beside its config.json",
                self.source,
                self.vocab_size(),
                model.display()
            )));
        }
        Ok(())
    }

    /// The context length sequences are truncated to.
    pub fn context_length(&self) -> usize {
        self.context_length
    }
}
