//! The model kept loaded while the Chat screen is used: loaded once, with the adapter's layers
//! kept aside so that one copy of the weights serves both sides (the adapter's layers switched
//! on for the Adapter side, off for the Prompted side). Each side has its own KV cache, so the
//! conversation so far is not computed again for every reply.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use engine::{generate, Device, GenerateOptions, KvCache, Model};
use qlora::LoraAdapter;
use vocab::Message;

use crate::conversation::{Ending, Side, SideReply};
use crate::error::{ChatError, Result};

struct Adapter {
    dir: PathBuf,
    /// Each linear layer's adapter, in `Model::linears` order.
    layers: Vec<Option<LoraAdapter>>,
}

pub struct Models {
    path: PathBuf,
    model: Model,
    adapter: Option<Adapter>,
    /// Whether the adapter's layers are on the model now (None: unknown, set them).
    adapter_on: Option<bool>,
    caches: HashMap<Side, KvCache>,
}

/// What a reply needs besides the model.
pub struct Request<'a> {
    pub side: Side,
    pub system: Option<&'a str>,
    /// The side's earlier exchanges (see `Conversation::history`).
    pub history: &'a [Message],
    pub user: &'a str,
    pub options: &'a GenerateOptions,
}

impl Models {
    /// Loads the model (a GGUF file or a Hugging Face folder) on the CPU.
    pub fn load(path: &Path) -> Result<Models> {
        let model = Model::load(path, &Device::Cpu).map_err(ChatError::Model)?;
        Ok(Models { path: path.to_path_buf(), model, adapter: None, adapter_on: None, caches: HashMap::new() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn adapter_dir(&self) -> Option<&Path> {
        self.adapter.as_ref().map(|a| a.dir.as_path())
    }

    /// Loads the adapter in `dir` (None: none). On an error the chat goes on without one.
    pub fn set_adapter(&mut self, dir: Option<&Path>) -> Result<()> {
        if self.adapter_dir() == dir {
            return Ok(());
        }
        self.adapter = None;
        self.adapter_on = None;
        self.caches.remove(&Side::Adapter);
        let Some(dir) = dir else { return Ok(()) };
        let loaded = self.model.load_adapter(dir);
        // A failed load can leave some layers adapted: the next reply sets every layer again.
        loaded.map_err(|e| ChatError::Adapter { path: dir.to_path_buf(), why: e.to_string() })?;
        let layers = self.model.linears().iter().map(|l| l.adapter.clone()).collect();
        self.adapter = Some(Adapter { dir: dir.to_path_buf(), layers });
        self.adapter_on = Some(true);
        Ok(())
    }

    /// Puts the adapter's layers on the model (or takes them off).
    fn switch(&mut self, on: bool) -> Result<()> {
        if self.adapter_on == Some(on) {
            return Ok(());
        }
        match (&self.adapter, on) {
            (Some(a), true) => {
                for (l, ad) in self.model.linears_mut().into_iter().zip(&a.layers) {
                    l.adapter = ad.clone();
                }
            }
            (None, true) => return Err(ChatError::NoAdapter),
            (_, false) => {
                for l in self.model.linears_mut() {
                    l.adapter = None;
                }
            }
        }
        self.adapter_on = Some(on);
        Ok(())
    }

    /// The token ids of `messages` with the assistant's turn opened.
    pub fn prompt_ids(&self, messages: &[Message]) -> Result<Vec<u32>> {
        eval::chat::prompt_ids(&self.model.vocab, &self.model.template, messages).map_err(|e| ChatError::Generate(e.to_string()))
    }

    /// Tokens a system prompt adds to every prompt: the prompt with it minus the prompt without
    /// it (SmolLM2's template has a short default system prompt of its own, which it replaces).
    pub fn system_prompt_tokens(&self, system: &str) -> Result<usize> {
        let probe = [Message::user("hi")];
        let with = [Message::system(system), Message::user("hi")];
        Ok(self.prompt_ids(&with)?.len().saturating_sub(self.prompt_ids(&probe)?.len()))
    }

    /// Generates `req.side`'s reply, streaming it to `on_text`. The oldest exchanges are left
    /// out of the prompt when the whole conversation no longer fits the context.
    pub fn reply(&mut self, req: &Request, stop: &AtomicBool, on_text: impl FnMut(&str)) -> Result<SideReply> {
        self.switch(req.side == Side::Adapter)?;
        let budget = self.model.config().context_length.saturating_sub(req.options.max_tokens);
        let system: Vec<Message> = req.system.map(Message::system).into_iter().collect();
        let mut history = req.history;
        let mut dropped = 0;
        let ids = loop {
            let messages: Vec<Message> = system.iter().chain(history).cloned().chain([Message::user(req.user)]).collect();
            let ids = self.prompt_ids(&messages)?;
            if ids.len() <= budget {
                break ids;
            }
            if history.len() < 2 {
                return Err(ChatError::MessageTooLong { tokens: ids.len(), budget });
            }
            history = &history[2..];
            dropped += 1;
        };
        let cache = self.caches.entry(req.side).or_insert_with(|| self.model.new_cache());
        let g = generate(&self.model, cache, &ids, req.options, stop, on_text).map_err(|e| {
            // The cache may hold part of a failed step: start the next reply afresh.
            cache.clear();
            ChatError::Generate(e.to_string())
        })?;
        Ok(SideReply {
            side: req.side,
            ending: Ending::from(&g.stop_reason),
            prompt_tokens: g.prompt_tokens,
            prefilled_tokens: g.prefilled_tokens,
            prefill_secs: g.prefill_secs,
            generated_tokens: g.tokens.len(),
            decode_secs: g.decode_secs,
            tokens_per_sec: if g.decode_secs > 0.0 { g.tokens.len() as f64 / g.decode_secs } else { 0.0 },
            text: g.text,
            adherence: None,
            dropped_exchanges: dropped,
            adapter: match req.side {
                Side::Adapter => self.adapter_dir().map(|d| d.display().to_string()),
                Side::Prompted => None,
            },
        })
    }
}
