//! Downloads a GGUF model from the Hugging Face hub into the standard Hugging
//! Face cache (`…/huggingface/hub/models--owner--name/{blobs,snapshots,refs}`),
//! where [`crate::scan`] finds it like any model another tool downloaded.
//!
//! `hf-hub` supplies the hub's side: the repository's file list, a file's
//! metadata (etag, commit, size, following the hub's redirects) and the cache
//! layout. The bytes are streamed here with `ureq`, the client hf-hub itself
//! uses, so that a download reports progress, stops between chunks when asked,
//! and continues a partial file (`blobs/<etag>.part`, the name hf-hub uses too)
//! with an HTTP range request instead of starting over.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! let hub = catalog::download::Hub::from_env().unwrap();
//! let stop = AtomicBool::new(false);
//! let done = hub.download("bartowski/SmolLM2-135M-Instruct-GGUF", None, &stop, |p| {
//!     println!("{} of {} bytes", p.done, p.total);
//! }).unwrap();
//! println!("saved as {}", done.path.display());
//! ```

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use serde::Serialize;

use crate::locations::{default_locations, Source};

/// The public hub; `HF_ENDPOINT` overrides it (a mirror, or a test server).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Bytes read between two checks of the stop flag and two progress reports.
const CHUNK: usize = 256 * 1024;

/// Quantizations tried first when a repository holds several GGUF files and
/// none was named: 4-bit k-quants are the usual size/quality trade-off.
const PREFERRED: [&str; 6] = ["Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q8_0", "Q4_1"];

/// Small instruction-tuned models that train quickly on an ordinary computer,
/// offered on the Model screen. Each repository holds GGUF files.
pub const SUGGESTED: [(&str, &str); 3] = [
    ("bartowski/SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct-Q4_K_M.gguf"),
    ("Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf"),
    ("bartowski/SmolLM2-360M-Instruct-GGUF", "SmolLM2-360M-Instruct-Q4_K_M.gguf"),
];

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DownloadError {
    #[error("You are offline: Residency could not reach {host}. Copy a .gguf file into {cache} (or any folder, then add it on the Model screen), or try again when online.")]
    Offline { host: String, cache: String },
    #[error("\"{0}\" is not a Hugging Face repository name. It looks like owner/name, for example bartowski/SmolLM2-135M-Instruct-GGUF.")]
    BadRepo(String),
    #[error("\"{0}\" is not a GGUF file name. Pick a file that ends in .gguf from the repository's file list.")]
    BadFile(String),
    #[error("Hugging Face has no public repository named {0}. Check the spelling (owner/name) on huggingface.co.")]
    RepoNotFound(String),
    #[error("{0} is gated or private: accept its licence on huggingface.co and save your access token (huggingface-cli login), then try again.")]
    Gated(String),
    #[error("This repository has no GGUF file: {0}. Residency trains GGUF models; look for a repository whose name ends in -GGUF.")]
    NoGguf(String),
    #[error("{repo} has no file named {file}. Its GGUF files: {available}.")]
    FileNotFound { repo: String, file: String, available: String },
    #[error("The download was cancelled after {done} of {total} bytes. The part already downloaded is kept: start it again to continue.")]
    Cancelled { done: u64, total: u64 },
    #[error("The connection dropped after {done} of {total} bytes ({why}). The part already downloaded is kept: start it again to continue.")]
    Interrupted { done: u64, total: u64, why: String },
    #[error("Residency could not save the download in {path}: {why}. Check that the disk has free space.")]
    Disk { path: String, why: String },
    #[error("Hugging Face answered with an error ({0}). Try again in a few minutes.")]
    Server(String),
    #[error("No Hugging Face cache folder could be found (no home folder). Set HF_HOME to a folder Residency may write to.")]
    NoCache,
}

/// How far a download has come, in bytes. `done` starts at the size of the
/// part kept from an earlier attempt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    /// Bytes that were already on disk when this attempt started.
    pub resumed_from: u64,
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Downloaded {
    pub repo: String,
    pub file: String,
    /// `snapshots/<commit>/<file>` in the cache (a link to the blob on Unix).
    pub path: PathBuf,
    pub size_bytes: u64,
    /// Bytes that came from a partial download kept from before.
    pub resumed_from: u64,
    /// True when the cache held the whole file already and nothing was fetched.
    pub already_there: bool,
}

/// The hub to download from and the cache to download into.
#[derive(Debug, Clone)]
pub struct Hub {
    endpoint: String,
    cache_dir: PathBuf,
    token: Option<String>,
}

impl Hub {
    /// The hub at `endpoint` (no trailing slash needed), into `cache_dir`
    /// (the `hub` folder of a Hugging Face cache). The access token saved by
    /// `huggingface-cli login` is read from the cache's parent, as hf-hub does.
    pub fn new(endpoint: &str, cache_dir: &Path) -> Hub {
        let token = Cache::new(cache_dir.to_path_buf()).token();
        Hub { endpoint: endpoint.trim_end_matches('/').to_string(), cache_dir: cache_dir.to_path_buf(), token }
    }

    /// The hub named by `HF_ENDPOINT` (default huggingface.co) and the cache the
    /// scanner reads (`HF_HUB_CACHE`, `HF_HOME/hub`, or `~/.cache/huggingface/hub`).
    pub fn from_env() -> Result<Hub, DownloadError> {
        let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty());
        let cache = default_locations()
            .into_iter()
            .find(|l| l.source == Source::HuggingFace)
            .map(|l| l.path)
            .ok_or(DownloadError::NoCache)?;
        Ok(Hub::new(endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT), &cache))
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    fn offline(&self) -> DownloadError {
        let host = self.endpoint.split("://").nth(1).unwrap_or(&self.endpoint).split('/').next().unwrap_or_default();
        DownloadError::Offline { host: host.to_string(), cache: self.cache_dir.display().to_string() }
    }

    fn api(&self) -> Result<hf_hub::api::sync::Api, DownloadError> {
        ApiBuilder::from_cache(Cache::new(self.cache_dir.clone()))
            .with_endpoint(self.endpoint.clone())
            .with_token(self.token.clone())
            .with_progress(false)
            .with_retries(0)
            .build()
            .map_err(|e| self.api_error(e, "", None))
    }

    /// The GGUF files of `repo`, in the hub's order.
    pub fn gguf_files(&self, repo: &str) -> Result<Vec<String>, DownloadError> {
        check_repo(repo)?;
        let info = self.api()?.model(repo.to_string()).info().map_err(|e| self.api_error(e, repo, None))?;
        Ok(info.siblings.into_iter().map(|s| s.rfilename).filter(|f| is_gguf(f)).collect())
    }

    /// Downloads `file` of `repo` (or, when `file` is None, the repository's
    /// GGUF file, preferring a 4-bit one) into the cache. Reports progress
    /// after every chunk; stops with [`DownloadError::Cancelled`] soon after
    /// `stop` is raised, keeping the part for the next attempt to continue.
    pub fn download(
        &self,
        repo: &str,
        file: Option<&str>,
        stop: &AtomicBool,
        mut progress: impl FnMut(Progress),
    ) -> Result<Downloaded, DownloadError> {
        check_repo(repo)?;
        if let Some(f) = file {
            check_file(f)?;
        }
        let files = self.gguf_files(repo)?;
        let file = choose(repo, &files, file)?;

        let api = self.api()?;
        let url = api.model(repo.to_string()).url(&file);
        let meta = api.metadata(&url).map_err(|e| self.api_error(e, repo, Some(&file)))?;
        let total = meta.size() as u64;
        let cached = Cache::new(self.cache_dir.clone()).repo(Repo::new(repo.to_string(), RepoType::Model));
        let blob = cached.blob_path(meta.etag());
        let mut part = blob.clone();
        part.set_extension("part");
        if let Some(dir) = blob.parent() {
            fs::create_dir_all(dir).map_err(|e| disk(dir, e))?;
        }

        let already_there = fs::metadata(&blob).map(|m| m.len() == total).unwrap_or(false);
        let mut resumed_from = 0;
        if !already_there {
            resumed_from = self.fetch(&url, &part, total, stop, &mut progress)?;
            fs::rename(&part, &blob).map_err(|e| disk(&blob, e))?;
        }
        progress(Progress { done: total, total, resumed_from });

        let mut pointer = cached.pointer_path(meta.commit_hash());
        pointer.push(&file);
        if let Some(dir) = pointer.parent() {
            fs::create_dir_all(dir).map_err(|e| disk(dir, e))?;
        }
        link(&blob, &pointer)?;
        cached.create_ref(meta.commit_hash()).map_err(|e| disk(&self.cache_dir, e))?;
        Ok(Downloaded { repo: repo.to_string(), file, path: pointer, size_bytes: total, resumed_from, already_there })
    }

    /// Streams `url` into `part` from where it stops now to `total` bytes.
    /// Returns how many bytes were there before.
    fn fetch(
        &self,
        url: &str,
        part: &Path,
        total: u64,
        stop: &AtomicBool,
        progress: &mut impl FnMut(Progress),
    ) -> Result<u64, DownloadError> {
        let mut start = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if start > total {
            // Not a prefix of this file (it changed on the hub): start over.
            start = 0;
        }
        if stop.load(Ordering::Relaxed) {
            return Err(DownloadError::Cancelled { done: start, total });
        }
        let mut request = ureq::get(url).header("Range", &format!("bytes={start}-"));
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(e) => return Err(self.ureq_error(e, "", None)),
        };
        // A server that ignores the range sends the whole file again.
        if response.status().as_u16() != 206 {
            start = 0;
        }
        let out = OpenOptions::new().create(true).write(true).truncate(false).open(part).map_err(|e| disk(part, e))?;
        out.set_len(start).map_err(|e| disk(part, e))?;
        let mut out = OpenOptions::new().append(true).open(part).map_err(|e| disk(part, e))?;

        let resumed_from = start;
        let mut done = start;
        progress(Progress { done, total, resumed_from });
        let mut body = response.into_body().into_reader();
        let mut buf = vec![0u8; CHUNK];
        while done < total {
            if stop.load(Ordering::Relaxed) {
                out.flush().map_err(|e| disk(part, e))?;
                return Err(DownloadError::Cancelled { done, total });
            }
            let n = match read_chunk(&mut body, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    out.flush().map_err(|e| disk(part, e))?;
                    return Err(DownloadError::Interrupted { done, total, why: e.to_string() });
                }
            };
            out.write_all(&buf[..n]).map_err(|e| disk(part, e))?;
            done += n as u64;
            progress(Progress { done, total, resumed_from });
        }
        out.sync_all().map_err(|e| disk(part, e))?;
        if done != total {
            return Err(DownloadError::Interrupted { done, total, why: "the server sent fewer bytes than announced".into() });
        }
        Ok(resumed_from)
    }

    fn api_error(&self, e: ApiError, repo: &str, file: Option<&str>) -> DownloadError {
        match e {
            ApiError::RequestError(e) => self.ureq_error(*e, repo, file),
            ApiError::TooManyRetries(e) => self.api_error(*e, repo, file),
            ApiError::IoError(e) => disk(&self.cache_dir, e),
            other => DownloadError::Server(other.to_string()),
        }
    }

    fn ureq_error(&self, e: ureq::Error, repo: &str, file: Option<&str>) -> DownloadError {
        match e {
            ureq::Error::StatusCode(404) => match file {
                Some(f) => DownloadError::FileNotFound { repo: repo.into(), file: f.into(), available: "see the repository page".into() },
                None => DownloadError::RepoNotFound(repo.into()),
            },
            ureq::Error::StatusCode(401 | 403) => DownloadError::Gated(repo.into()),
            ureq::Error::StatusCode(code) => DownloadError::Server(format!("HTTP {code}")),
            ureq::Error::Io(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(_)
            | ureq::Error::Tls(_)
            | ureq::Error::ConnectProxyFailed(_) => self.offline(),
            other => DownloadError::Server(other.to_string()),
        }
    }
}

/// Reads up to a whole buffer (a socket gives a few kilobytes at a time).
fn read_chunk(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Hand over what came before the failure: the next call reports it.
            Err(_) if filled > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn disk(path: &Path, e: std::io::Error) -> DownloadError {
    DownloadError::Disk { path: path.display().to_string(), why: e.to_string() }
}

fn is_gguf(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".gguf")
}

/// `owner/name`: letters, digits, `-`, `_`, `.`; no `..` (it becomes a path).
fn check_repo(repo: &str) -> Result<(), DownloadError> {
    let ok_part = |p: &str| {
        !p.is_empty() && p != "." && !p.contains("..") && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if ok_part(owner) && ok_part(name) => Ok(()),
        _ => Err(DownloadError::BadRepo(repo.to_string())),
    }
}

/// A file inside the repository (folders allowed), ending in `.gguf`.
fn check_file(file: &str) -> Result<(), DownloadError> {
    let bad = file.is_empty()
        || file.starts_with('/')
        || file.contains('\\')
        || file.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        || !is_gguf(file);
    if bad {
        Err(DownloadError::BadFile(file.to_string()))
    } else {
        Ok(())
    }
}

/// The file to fetch: the one asked for (it must be in the list), else the
/// only GGUF file, else the first in [`PREFERRED`] order, else the first.
fn choose(repo: &str, files: &[String], wanted: Option<&str>) -> Result<String, DownloadError> {
    if files.is_empty() {
        return Err(DownloadError::NoGguf(repo.to_string()));
    }
    if let Some(w) = wanted {
        return files.iter().find(|f| f.as_str() == w).cloned().ok_or_else(|| DownloadError::FileNotFound {
            repo: repo.to_string(),
            file: w.to_string(),
            available: files.join(", "),
        });
    }
    // Split models (…-00001-of-00003.gguf) cannot be loaded from one file.
    let whole: Vec<&String> = files.iter().filter(|f| !f.contains("-of-0")).collect();
    let pool = if whole.is_empty() { files.iter().collect() } else { whole };
    for q in PREFERRED {
        if let Some(f) = pool.iter().find(|f| f.to_ascii_uppercase().contains(q)) {
            return Ok((*f).clone());
        }
    }
    Ok(pool[0].clone())
}

/// Puts the snapshot entry in place: a relative link to the blob on Unix (as
/// hf-hub and huggingface_hub do), a copy elsewhere.
fn link(blob: &Path, pointer: &Path) -> Result<(), DownloadError> {
    if pointer.exists() {
        return Ok(());
    }
    let _ = fs::remove_file(pointer); // a dangling link left by a deleted blob
    #[cfg(unix)]
    {
        let depth = pointer.strip_prefix(blob.parent().and_then(Path::parent).unwrap_or(blob)).map(|p| p.components().count()).unwrap_or(0);
        let mut rel = PathBuf::new();
        for _ in 1..depth {
            rel.push("..");
        }
        rel.push("blobs");
        rel.push(blob.file_name().unwrap_or_default());
        std::os::unix::fs::symlink(&rel, pointer).map_err(|e| disk(pointer, e))
    }
    #[cfg(not(unix))]
    {
        fs::copy(blob, pointer).map(|_| ()).map_err(|e| disk(pointer, e))
    }
}

/// Size of a partial download of `file` kept in the cache from an earlier
/// attempt, if any (the screen offers "Resume" for it). Needs no network:
/// it looks for any `.part` blob of the repository.
pub fn partial_bytes(cache_dir: &Path, repo: &str) -> u64 {
    if check_repo(repo).is_err() {
        return 0;
    }
    let blobs = cache_dir.join(format!("models--{}", repo.replace('/', "--"))).join("blobs");
    let Ok(entries) = fs::read_dir(blobs) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests;
