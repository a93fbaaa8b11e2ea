//! The download against a local server that answers like the hub: the
//! repository listing (`/api/models/{repo}/revision/main`) and files with
//! range requests (`/{repo}/resolve/main/{file}`, etag, x-repo-commit,
//! Content-Range), as hf-hub expects them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::*;
use crate::gguf::test_files;
use crate::locations::Location;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

#[derive(Default)]
struct State {
    /// repo -> (file name -> bytes)
    repos: HashMap<String, Vec<(String, Vec<u8>)>>,
    /// Close the connection after this many body bytes of the next file request.
    cut_after: Option<usize>,
    /// The Range header of every file request, in order.
    ranges: Vec<String>,
}

struct FakeHub {
    endpoint: String,
    state: Arc<Mutex<State>>,
}

impl FakeHub {
    fn start(repos: &[(&str, Vec<(&str, Vec<u8>)>)]) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let mut state = State::default();
        for (repo, files) in repos {
            state.repos.insert(repo.to_string(), files.iter().map(|(f, b)| (f.to_string(), b.clone())).collect());
        }
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = shared.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        FakeHub { endpoint, state }
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let mut st = state.lock().unwrap();
    let reply = |conn: &mut TcpStream, status: &str, headers: &str, body: &[u8]| {
        let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n", body.len());
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(body);
    };
    if let Some(repo) = path.strip_prefix("/api/models/").and_then(|p| p.strip_suffix("/revision/main")) {
        match st.repos.get(repo) {
            Some(files) => {
                let siblings: Vec<String> = files.iter().map(|(f, _)| format!("{{\"rfilename\":\"{f}\"}}")).collect();
                let body = format!("{{\"sha\":\"{COMMIT}\",\"siblings\":[{}]}}", siblings.join(","));
                reply(&mut conn, "200 OK", "Content-Type: application/json\r\n", body.as_bytes());
            }
            None => reply(&mut conn, "404 Not Found", "", b"Repository not found"),
        }
        return;
    }
    let Some((repo, file)) = path.split_once("/resolve/main/") else {
        return reply(&mut conn, "404 Not Found", "", b"");
    };
    let repo = repo.trim_start_matches('/');
    let Some(bytes) = st.repos.get(repo).and_then(|fs| fs.iter().find(|(f, _)| f == file)).map(|(_, b)| b.clone()) else {
        return reply(&mut conn, "404 Not Found", "", b"Entry not found");
    };
    // bytes=a- or bytes=a-b
    let (a, b) = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().ok().unwrap_or(bytes.len() - 1)))
        .unwrap_or((0, bytes.len() - 1));
    let body = &bytes[a..=b.min(bytes.len() - 1)];
    let headers = format!(
        "ETag: \"etag-{}\"\r\nX-Repo-Commit: {COMMIT}\r\nContent-Range: bytes {a}-{}/{}\r\n",
        bytes.len(),
        a + body.len() - 1,
        bytes.len()
    );
    if body.len() > 1 {
        st.ranges.push(range.clone().unwrap_or_default());
    }
    let cut = if body.len() > 1 { st.cut_after.take() } else { None };
    match cut {
        Some(cut) => {
            let head = format!("HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n", body.len());
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body[..cut]);
            let _ = conn.flush();
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        None => reply(&mut conn, "206 Partial Content", &headers, body),
    }
}

/// A real (tiny) GGUF file's bytes, padded so it spans several chunks.
fn model_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    test_files::write(&path, &test_files::llama_meta("Downloaded Llama"), 40_000);
    let bytes = fs::read(&path).unwrap();
    assert!(bytes.len() > 3 * CHUNK, "the test file should span several chunks");
    bytes
}

const REPO: &str = "someone/Tiny-GGUF";
const FILE: &str = "tiny-Q4_K_M.gguf";

fn hub_with_model() -> (FakeHub, Vec<u8>) {
    let bytes = model_bytes();
    let hub = FakeHub::start(&[
        (REPO, vec![("README.md", b"# Tiny".to_vec()), ("tiny-Q8_0.gguf", vec![7; 10]), (FILE, bytes.clone())]),
        ("someone/no-gguf", vec![("model.safetensors", vec![1, 2, 3])]),
    ]);
    (hub, bytes)
}

#[test]
fn full_download_lands_in_the_hf_cache_and_the_scanner_finds_it() {
    let (server, bytes) = hub_with_model();
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(&server.endpoint, cache.path());
    let mut seen = Vec::new();
    let got = hub.download(REPO, None, &AtomicBool::new(false), |p| seen.push(p)).unwrap();

    assert_eq!(got.file, FILE, "the Q4_K_M file is preferred when none is named");
    assert_eq!(got.size_bytes, bytes.len() as u64);
    assert_eq!((got.resumed_from, got.already_there), (0, false));
    assert_eq!(fs::read(&got.path).unwrap(), bytes);
    assert_eq!(got.path, cache.path().join("models--someone--Tiny-GGUF/snapshots").join(COMMIT).join(FILE));
    let refs = fs::read_to_string(cache.path().join("models--someone--Tiny-GGUF/refs/main")).unwrap();
    assert_eq!(refs, COMMIT);
    // Progress rises to the total, never past it.
    assert!(seen.len() > 3, "progress after every chunk: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0].done <= w[1].done));
    assert_eq!(seen.last().unwrap().done, bytes.len() as u64);
    assert!(seen.iter().all(|p| p.total == bytes.len() as u64));

    let found = crate::scan(&[Location::new(Source::HuggingFace, cache.path())]);
    assert_eq!(found.models.len(), 1, "{:?}", found.models);
    let summary = found.models[0].gguf.as_ref().expect("the header is read");
    assert_eq!(summary.general_name.as_deref(), Some("Downloaded Llama"));

    // A second request finds the file there and fetches nothing.
    let again = hub.download(REPO, Some(FILE), &AtomicBool::new(false), |_| {}).unwrap();
    assert!(again.already_there);
    assert_eq!(server.state.lock().unwrap().ranges, vec!["bytes=0-".to_string()]);
}

#[test]
fn a_dropped_connection_keeps_the_part_and_the_next_attempt_continues_from_it() {
    let (server, bytes) = hub_with_model();
    let cut = CHUNK + 1000;
    server.state.lock().unwrap().cut_after = Some(cut);
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(&server.endpoint, cache.path());

    let err = hub.download(REPO, Some(FILE), &AtomicBool::new(false), |_| {}).unwrap_err();
    match &err {
        DownloadError::Interrupted { done, total, .. } => {
            assert_eq!(*done, cut as u64);
            assert_eq!(*total, bytes.len() as u64);
        }
        other => panic!("expected an interrupted download, got {other:?}"),
    }
    assert!(err.to_string().contains("start it again to continue"), "{err}");
    assert_eq!(partial_bytes(cache.path(), REPO), cut as u64);

    let mut first = None;
    let got = hub
        .download(REPO, Some(FILE), &AtomicBool::new(false), |p| {
            first.get_or_insert(p);
        })
        .unwrap();
    assert_eq!(got.resumed_from, cut as u64);
    assert_eq!(first.unwrap().done, cut as u64, "progress starts at the kept part");
    assert_eq!(fs::read(&got.path).unwrap(), bytes, "the resumed file is byte for byte the original");
    assert_eq!(server.state.lock().unwrap().ranges, vec!["bytes=0-".to_string(), format!("bytes={cut}-")]);
    assert_eq!(partial_bytes(cache.path(), REPO), 0, "the part became the blob");
}

#[test]
fn cancel_stops_between_chunks_and_resume_finishes_the_same_file() {
    let (server, bytes) = hub_with_model();
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(&server.endpoint, cache.path());
    let stop = AtomicBool::new(false);
    let err = hub
        .download(REPO, Some(FILE), &stop, |p| {
            if p.done >= CHUNK as u64 {
                stop.store(true, Ordering::Relaxed);
            }
        })
        .unwrap_err();
    let DownloadError::Cancelled { done, total } = err else { panic!("expected cancelled, got {err:?}") };
    assert_eq!(total, bytes.len() as u64);
    assert!(done >= CHUNK as u64 && done < total, "{done} of {total}");
    assert_eq!(partial_bytes(cache.path(), REPO), done);

    let got = hub.download(REPO, Some(FILE), &AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(got.resumed_from, done);
    assert_eq!(fs::read(&got.path).unwrap(), bytes);
}

#[test]
fn offline_says_so_and_names_the_folder_to_copy_into() {
    // A port nobody listens on: the connection is refused, as when offline.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(&format!("http://127.0.0.1:{port}"), cache.path());
    let err = hub.download(REPO, None, &AtomicBool::new(false), |_| {}).unwrap_err();
    assert!(matches!(err, DownloadError::Offline { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("You are offline: Residency could not reach 127.0.0.1:"), "{msg}");
    assert!(msg.contains(&cache.path().display().to_string()), "{msg}");
}

#[test]
fn missing_repository_file_or_gguf_are_told_apart() {
    let (server, _) = hub_with_model();
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(&server.endpoint, cache.path());
    let stop = AtomicBool::new(false);

    let err = hub.download("someone/nothing-here", None, &stop, |_| {}).unwrap_err();
    assert_eq!(err, DownloadError::RepoNotFound("someone/nothing-here".into()));

    let err = hub.download("someone/no-gguf", None, &stop, |_| {}).unwrap_err();
    assert_eq!(err, DownloadError::NoGguf("someone/no-gguf".into()));
    assert!(err.to_string().starts_with("This repository has no GGUF file: someone/no-gguf."));

    let err = hub.download(REPO, Some("tiny-Q2_K.gguf"), &stop, |_| {}).unwrap_err();
    assert_eq!(
        err,
        DownloadError::FileNotFound {
            repo: REPO.into(),
            file: "tiny-Q2_K.gguf".into(),
            available: "tiny-Q8_0.gguf, tiny-Q4_K_M.gguf".into()
        }
    );
    assert_eq!(hub.gguf_files(REPO).unwrap(), vec!["tiny-Q8_0.gguf", FILE]);
    assert!(fs::read_dir(cache.path()).map(|d| d.count()).unwrap_or(0) <= 1, "nothing downloaded");
}

#[test]
fn names_that_are_not_a_repo_or_a_gguf_file_are_refused_before_any_request() {
    let hub = Hub::new("http://127.0.0.1:9", Path::new("/nonexistent"));
    let stop = AtomicBool::new(false);
    for bad in ["", "noslash", "a/b/c", "../x", "a/..", "owner/na me", "/x"] {
        let err = hub.download(bad, None, &stop, |_| {}).unwrap_err();
        assert_eq!(err, DownloadError::BadRepo(bad.into()));
    }
    for bad in ["model.bin", "../x.gguf", "/abs.gguf", "a//b.gguf", ""] {
        let err = hub.download(REPO, Some(bad), &stop, |_| {}).unwrap_err();
        assert_eq!(err, DownloadError::BadFile(bad.into()));
    }
}

#[test]
fn choosing_a_file_prefers_whole_4_bit_files() {
    let files = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let pick = |v: &[&str]| choose("o/r", &files(v), None).unwrap();
    assert_eq!(pick(&["m-Q8_0.gguf", "m-Q4_K_M.gguf", "m-f16.gguf"]), "m-Q4_K_M.gguf");
    assert_eq!(pick(&["m-f16.gguf"]), "m-f16.gguf");
    assert_eq!(pick(&["m-Q4_K_M-00001-of-00002.gguf", "m-Q8_0.gguf"]), "m-Q8_0.gguf");
    assert_eq!(pick(&["qwen2.5-0.5b-instruct-q4_k_m.gguf", "qwen2.5-0.5b-instruct-fp16.gguf"]), "qwen2.5-0.5b-instruct-q4_k_m.gguf");
}
