//! What Residency can work with on this computer: the GGUF models other tools
//! (Ollama, LM Studio, the Hugging Face cache) or Residency itself already
//! downloaded, and the processor, memory and graphics cards; downloads from
//! the Hugging Face hub into its cache ([`download`]); and whether training a
//! model fits this computer and about how long it takes ([`fit`]).
//!
//! ```no_run
//! let catalog = catalog::scan(&catalog::default_locations());
//! for m in &catalog.models {
//!     println!("{} ({} bytes) from {}", m.name, m.size_bytes, m.source.label());
//! }
//! let hw = catalog::hardware::probe().unwrap();
//! println!("{} cores, {} bytes of memory", hw.logical_cores, hw.total_memory_bytes);
//! ```

pub mod download;
pub mod fit;
pub mod gguf;
pub mod hardware;
mod locations;
mod scan;

pub use gguf::{read_summary, GgufError, GgufSummary};
pub use locations::{default_locations, locations_for, Location, Source};
pub use scan::{scan, Catalog, LocationReport, ModelEntry};
