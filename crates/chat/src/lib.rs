//! Conversations with a model and its trained adapter, for the app's Chat screen (GUI-free,
//! so the tests drive it directly).
//!
//! Two sides answer the same messages: the **adapter** with no system prompt (the persona is in
//! the weights) and the **base model with the persona card as its system prompt**. Each keeps
//! its own history and KV cache; replies stream piece by piece and a stop flag ends them (the
//! partial reply is kept, marked stopped). Every reply records its token tax (prompt tokens,
//! prefilled tokens, prefill time), its speed and its persona adherence score (`eval`'s scorer,
//! learned once from the project's examples).
//!
//! Read in this order: `conversation.rs` (what is saved), `store.rs` (atomic files),
//! `models.rs` (the loaded model, the adapter switched on and off, one reply), `voice.rs` (the
//! adherence score), `session.rs` (the screen's state: [`ChatSession`]).

pub mod conversation;
pub mod error;
pub mod models;
pub mod session;
pub mod store;
pub mod voice;

pub use conversation::{Conversation, Ending, Score, Settings, Side, SideReply, Turn};
pub use error::{ChatError, Result};
pub use models::Models;
pub use session::{ChatSession, ChatView, Setup};
pub use store::{ConversationStore, Listing, Summary};
pub use voice::{Voice, VoiceStatus};
