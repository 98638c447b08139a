//! The causal text tower (transformers `modeling_clip.py`: `CLIPTextEmbeddings`,
//! `CLIPTextTransformer`).

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Initializer, LayerNorm};
use burn::prelude::*;

use super::config::TextConfig;
use super::encoder::{Encoder, EncoderDims, final_norm, layer_norm};

/// Token and learned position embeddings (`CLIPTextEmbeddings`).
#[derive(Module, Debug)]
pub struct TextEmbeddings {
    pub token_embedding: Embedding,
    pub position_embedding: Embedding,
}

/// The whole text tower up to the pooled, normalised end-of-text token (`CLIPTextTransformer`).
#[derive(Module, Debug)]
pub struct TextTransformer {
    pub embeddings: TextEmbeddings,
    pub encoder: Encoder,
    pub final_layer_norm: LayerNorm,
    /// The final norm's ε (burn keeps LayerNorm's own private).
    #[module(skip)]
    pub layer_norm_eps: f64,
}

impl TextTransformer {
    pub fn new(config: &TextConfig, device: &Device) -> Self {
        let dims = EncoderDims::from(config);
        Self {
            embeddings: TextEmbeddings {
                token_embedding: EmbeddingConfig::new(config.vocab_size, config.hidden_size)
                    .with_initializer(normal(0.02))
                    .init(device),
                position_embedding: EmbeddingConfig::new(
                    config.max_position_embeddings,
                    config.hidden_size,
                )
                .with_initializer(normal(0.01))
                .init(device),
            },
            encoder: Encoder::new(&dims, device),
            final_layer_norm: layer_norm(config.hidden_size, config.layer_norm_eps, device),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// Runs only as many positions as the longest sequence: attention is causal, so the
    /// end-of-text token's output never sees the padding after it.
    ///
    /// # Shapes
    /// - ids: `[batch, seq]` with `seq ≤ max_position_embeddings`; `pool_at[i] < seq`
    /// - returns pooled `[batch, hidden]`
    pub fn forward(&self, ids: Tensor<2, Int>, pool_at: &[usize]) -> Tensor<2> {
        let [batch, seq] = ids.dims();
        let device = ids.device();
        let tokens = self.embeddings.token_embedding.forward(ids); // [b, n, d]
        let hidden = tokens.dims()[2];
        let positions = self
            .embeddings
            .position_embedding
            .weight
            .val()
            .slice([0..seq, 0..hidden]);
        let x = tokens + positions.unsqueeze::<3>();
        let x = self.encoder.forward(x, true); // [b, n, d]
        let rows: Vec<i64> = pool_at
            .iter()
            .enumerate()
            .map(|(i, &p)| (i * seq + p) as i64)
            .collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [batch]), &device);
        // LayerNorm acts on each position alone: normalising only the pooled rows is the same.
        let pooled = x.reshape([batch * seq, hidden]).select(0, rows);
        final_norm(&self.final_layer_norm, pooled, self.layer_norm_eps)
    }
}

/// N(0, std²), CLIP's initialisation of embeddings.
fn normal(std: f64) -> Initializer {
    Initializer::Normal { mean: 0.0, std }
}
