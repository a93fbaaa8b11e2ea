//! Residency's model engine: loads GGUF files and Hugging Face folders of the
//! `llama`, `qwen2`, `qwen3` and `gemma3` families and runs them.
//!
//! Read in this order:
//! - `source.rs`: what a path is (GGUF, Hugging Face folder, refused pickle).
//! - `config.rs`: the model's shape from GGUF metadata or `config.json`.
//! - `weights.rs`: tensors by Hugging Face name, quantized or f32; `Linear`.
//! - `layers.rs`: RMS norm, rotary embeddings, masks, attention, KV cache.
//! - `llama.rs`, `gemma3.rs`: the two model families, top to bottom.
//! - `model.rs`: `Model::load` ties network, tokenizer and chat template together.
//! - `sampling.rs`, `generate.rs`: choosing tokens and the generation loop.
//! - `adapter.rs`: LoRA adapters in PEFT's format (attach, save, load).
//! - `export.rs`: writing a model as a Hugging Face folder (f32 safetensors),
//!   with adapters merged in.
//!
//! Training uses the same model files: `Model::load_with(path,
//! WeightMode::Frozen(quant), ..)` gives linear layers with a backward pass to
//! their input, `forward_train` runs a batch with differentiable ops (see
//! `layers::Pass`), and the trainer crate does the rest.

pub mod adapter;
pub mod config;
pub mod error;
pub mod export;
pub mod files;
pub mod gemma3;
pub mod generate;
pub mod layers;
pub mod llama;
pub mod model;
pub mod sampling;
pub mod source;
pub mod weights;

pub use config::{Arch, Config};
pub use error::{EngineError, Result};
pub use generate::{generate, GenerateOptions, Generation, StopReason};
pub use layers::{KvCache, Pass};
pub use model::{Model, ModelInfo, Network};
pub use sampling::{SamplingParams, Sampler};
pub use source::ModelSource;
pub use weights::{BaseQuant, Linear, LinearBase, WeightMode};
pub use candle_core::Device;
