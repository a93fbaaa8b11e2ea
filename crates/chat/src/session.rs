//! The Chat screen's state without the window: the loaded model and adapter, the persona's
//! voice, the conversation being held and its folder. Everything it changes is saved before a
//! reply starts and again when it ends, so a failed or stopped reply never loses the message.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use dataset::Persona;
use serde::Serialize;

use crate::conversation::{Conversation, Settings, Side, Turn};
use crate::error::{ChatError, Result};
use crate::models::{Models, Request};
use crate::store::{now, ConversationStore, Listing};
use crate::voice::{Voice, VoiceStatus};

/// What the chat runs with. Changing one part reloads only that part.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// A .gguf file or a Hugging Face folder.
    pub model: PathBuf,
    /// A PEFT LoRA folder (a finished training run's adapter).
    pub adapter: Option<PathBuf>,
    /// The persona card: the Prompted side's system prompt and the rules scored.
    pub persona: Option<Persona>,
    /// The project's example folders and files: the voice the score learns.
    pub examples: Vec<PathBuf>,
    /// Where this project's conversations are saved.
    pub conversations: PathBuf,
}

/// Everything the Chat screen shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatView {
    pub model: String,
    pub model_name: String,
    pub adapter: Option<String>,
    pub persona_name: Option<String>,
    /// The sides that answer the next message, in order.
    pub sides: Vec<Side>,
    /// Tokens the persona prompt adds to every prompt of the Prompted side.
    pub system_prompt_tokens: usize,
    /// The model has no chat template of its own (a base model): replies may be poor.
    pub fallback_template: bool,
    pub voice: VoiceStatus,
    pub conversation: Conversation,
    pub listing: Listing,
}

pub struct ChatSession {
    models: Models,
    voice: Voice,
    persona: Option<Persona>,
    store: ConversationStore,
    conversation: Conversation,
}

impl ChatSession {
    /// Loads the model, learns the voice and reopens the most recent conversation. A bad
    /// adapter is an error here; [`ChatSession::configure`] keeps the chat open without it.
    pub fn open(setup: &Setup) -> Result<ChatSession> {
        let mut models = Models::load(&setup.model)?;
        models.set_adapter(setup.adapter.as_deref())?;
        let store = ConversationStore::new(&setup.conversations);
        let conversation = latest_or_new(&store)?;
        Ok(ChatSession { models, voice: Voice::learn(setup.persona.as_ref(), &setup.examples), persona: setup.persona.clone(), store, conversation })
    }

    /// Moves to `setup`, reloading only what changed. The model is loaded first; when the
    /// adapter then fails, the chat stays open without one and the error is returned.
    pub fn configure(&mut self, setup: &Setup) -> Result<()> {
        if self.models.path() != setup.model {
            self.models = Models::load(&setup.model)?;
        }
        if !self.voice.learned_from(setup.persona.as_ref(), &setup.examples) {
            self.voice = Voice::learn(setup.persona.as_ref(), &setup.examples);
        }
        self.persona = setup.persona.clone();
        if self.store.dir() != setup.conversations {
            self.store = ConversationStore::new(&setup.conversations);
            self.conversation = latest_or_new(&self.store)?;
        }
        self.models.set_adapter(setup.adapter.as_deref())
    }

    pub fn model_path(&self) -> &Path {
        self.models.path()
    }

    pub fn adapter(&self) -> Option<&Path> {
        self.models.adapter_dir()
    }

    pub fn conversation(&self) -> &Conversation {
        &self.conversation
    }

    /// The sides that answer the next message: the adapter (and beside it the prompted base
    /// model when side by side is on); without an adapter, the prompted base model alone.
    pub fn sides(&self) -> Vec<Side> {
        match (self.models.adapter_dir().is_some(), self.conversation.settings.side_by_side) {
            (true, true) => vec![Side::Adapter, Side::Prompted],
            (true, false) => vec![Side::Adapter],
            (false, _) => vec![Side::Prompted],
        }
    }

    fn system_prompt(&self) -> Option<String> {
        self.persona.as_ref().map(Persona::system_prompt)
    }

    pub fn view(&self) -> Result<ChatView> {
        let info = &self.models.model().info;
        Ok(ChatView {
            model: self.models.path().display().to_string(),
            model_name: info.name.clone(),
            adapter: self.adapter().map(|d| d.display().to_string()),
            persona_name: self.persona.as_ref().map(|p| p.name.clone()),
            sides: self.sides(),
            system_prompt_tokens: match self.system_prompt() {
                Some(s) => self.models.system_prompt_tokens(&s)?,
                None => 0,
            },
            fallback_template: self.models.model().template.is_fallback(),
            voice: self.voice.status(),
            conversation: self.conversation.clone(),
            listing: self.store.list()?,
        })
    }

    pub fn list(&self) -> Result<Listing> {
        self.store.list()
    }

    /// Starts an empty conversation with the same settings (saved with its first message).
    pub fn new_conversation(&mut self) -> &Conversation {
        self.conversation = self.store.create(self.conversation.settings.clone());
        &self.conversation
    }

    pub fn open_conversation(&mut self, id: &str) -> Result<&Conversation> {
        self.conversation = self.store.load(id)?;
        Ok(&self.conversation)
    }

    /// Changes the sampling settings (checked first; saved with the conversation).
    pub fn set_settings(&mut self, settings: Settings) -> Result<&Conversation> {
        settings.validate()?;
        self.conversation.settings = settings;
        if !self.conversation.turns.is_empty() {
            self.store.save(&mut self.conversation)?;
        }
        Ok(&self.conversation)
    }

    /// Sends `text`: every side in [`ChatSession::sides`] replies in turn, each streamed to
    /// `on_text(side, piece)` and scored when done. `stop` (cleared here first) ends the reply
    /// being written, keeping what arrived, and skips the sides after it. The message is saved
    /// before any reply starts; a failure is saved with it and returned.
    pub fn send(&mut self, text: &str, stop: &AtomicBool, mut on_text: impl FnMut(Side, &str)) -> Result<Turn> {
        let user = text.trim();
        if user.is_empty() {
            return Err(ChatError::EmptyMessage);
        }
        let settings = self.conversation.settings.clone();
        settings.validate()?;
        stop.store(false, Ordering::SeqCst);
        let system = self.system_prompt();
        let c = &mut self.conversation;
        c.title_from(user);
        c.system_prompt = system.clone();
        c.turns.push(Turn { user: user.to_string(), at: now(), replies: Vec::new(), error: None });
        self.store.save(c)?;
        let options = settings.generate_options();
        let last = self.conversation.turns.len() - 1;
        for side in self.sides() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let history = {
                let mut c = self.conversation.clone();
                c.turns.truncate(last);
                c.history(side)
            };
            let req = Request { side, system: if side == Side::Prompted { system.as_deref() } else { None }, history: &history, user, options: &options };
            match self.models.reply(&req, stop, |piece| on_text(side, piece)) {
                Ok(mut r) => {
                    r.adherence = self.voice.score(&r.text);
                    self.conversation.turns[last].replies.push(r);
                }
                Err(e) => {
                    self.conversation.turns[last].error = Some(e.to_string());
                    self.store.save(&mut self.conversation)?;
                    return Err(e);
                }
            }
        }
        self.store.save(&mut self.conversation)?;
        Ok(self.conversation.turns[last].clone())
    }
}

fn latest_or_new(store: &ConversationStore) -> Result<Conversation> {
    match store.list()?.conversations.first() {
        Some(s) => store.load(&s.id),
        None => Ok(store.create(Settings::default())),
    }
}
