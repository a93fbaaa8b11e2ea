//! Bad input: each case gets a clear finding, nothing panics, nothing is lost.

use std::io::Write;
use std::path::{Path, PathBuf};

use dataset::{collect, CharEstimate, Options, Report};

fn codes(r: &Report) -> Vec<&str> {
    r.findings.iter().map(|f| f.code.as_str()).collect()
}

fn write(p: &Path, body: &[u8]) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(p, body).unwrap();
}

const GOOD: &str = "{\"messages\":[{\"role\":\"user\",\"content\":\"When do you roast?\"},{\"role\":\"assistant\",\"content\":\"Tuesdays and Fridays, fresh from the drum.\"}]}\n";

#[test]
fn malformed_json_lines_are_reported_and_the_rest_kept() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("chats.jsonl");
    let mut body = String::new();
    for i in 0..50 {
        match i {
            10 => body.push_str("{\"messages\": [}\n"),
            20 => body.push_str("{'prompt': 'single quotes'}\n"),
            30 => body.push_str("{\"prompt\":\"x\",\"completion\":\"y\",}\n"),
            40 => body.push_str("\"just a string\"\n"),
            _ => body.push_str(&GOOD.replace("roast?", &format!("roast {i}?"))),
        }
    }
    write(&p, body.as_bytes());
    let (recs, rep) = collect(&[p], &Options::default(), &CharEstimate);
    assert_eq!(recs.len(), 46);
    let lines: Vec<u64> = rep.findings.iter().filter(|f| f.code == "invalid-json-line").map(|f| f.line.unwrap()).collect();
    assert_eq!(lines, [11, 21, 31]);
    let shape: Vec<u64> = rep.findings.iter().filter(|f| f.code == "unknown-record-shape").map(|f| f.line.unwrap()).collect();
    assert_eq!(shape, [41]);
    let quotes = rep.findings.iter().find(|f| f.line == Some(21)).unwrap();
    assert!(quotes.suggested_fix.as_deref().unwrap().contains("double quotes"));
}

#[test]
fn ragged_and_broken_csv() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.csv"), b"question,answer\nq1,a1\nq2\nq3,a3,extra,more\n\"q4 never closed,a4\nq5,a5\n");
    let (recs, rep) = collect(&[d.path().to_path_buf()], &Options::default(), &CharEstimate);
    // q1 and q3 are read; q2 lacks the answer; the unclosed quote swallows the rest as one field.
    assert!(recs.len() >= 2, "{recs:#?}");
    assert!(codes(&rep).contains(&"ragged-rows"));
    assert!(codes(&rep).contains(&"row-missing-fields"));
    let missing = rep.findings.iter().find(|f| f.code == "row-missing-fields").unwrap();
    assert_eq!(missing.line, Some(3));
}

#[test]
fn wrong_and_mixed_encodings() {
    let d = tempfile::tempdir().unwrap();
    // Windows-1252 CSV, a UTF-8 JSONL with one Latin-1 line, and mojibake (UTF-8 read as Latin-1 upstream).
    write(&d.path().join("cp1252.csv"), b"question,answer\nCaf\xe9 open?,\"Yes \x96 from seven, na\xefve friend.\"\n");
    let mut mixed = GOOD.as_bytes().to_vec();
    mixed.extend_from_slice(b"{\"prompt\":\"cr\xe8me?\",\"completion\":\"Oui, cr\xe8me fra\xeeche.\"}\n");
    write(&d.path().join("mixed.jsonl"), &mixed);
    write(&d.path().join("moji.jsonl"), "{\"prompt\":\"hours?\",\"completion\":\"The cafÃ© opens at seven, itâ€™s cosy.\"}\n".as_bytes());
    let (recs, rep) = collect(&[d.path().to_path_buf()], &Options::default(), &CharEstimate);
    assert_eq!(recs.len(), 4);
    let cp = recs.iter().find(|r| r.source.file.ends_with("cp1252.csv")).unwrap();
    assert_eq!(cp.messages[1].content, "Yes – from seven, naïve friend.");
    let m = recs.iter().find(|r| r.messages[0].content == "crème?").unwrap();
    assert_eq!(m.messages[1].content, "Oui, crème fraîche.");
    let bad: Vec<_> = rep.findings.iter().filter(|f| f.code == "invalid-utf8").collect();
    assert_eq!(bad.len(), 2, "{:#?}", rep.findings);
    assert!(codes(&rep).contains(&"mojibake"));
}

#[test]
fn empty_files_and_empty_folders() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("empty.jsonl"), b"");
    write(&d.path().join("blank.csv"), b"\n\n\n");
    std::fs::create_dir_all(d.path().join("nothing/here")).unwrap();
    let (recs, rep) = collect(&[d.path().to_path_buf()], &Options::default(), &CharEstimate);
    assert!(recs.is_empty());
    assert!(codes(&rep).contains(&"empty-file"));
    assert!(codes(&rep).contains(&"no-records"));
    assert_eq!(rep.files.len(), 2, "both files are listed");
}

#[cfg(unix)]
#[test]
fn symlink_loops_and_broken_links() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a/chats.jsonl"), GOOD.as_bytes());
    std::os::unix::fs::symlink(d.path(), d.path().join("a/loop")).unwrap();
    std::os::unix::fs::symlink(d.path().join("missing.txt"), d.path().join("a/dangling.txt")).unwrap();
    std::os::unix::fs::symlink(d.path().join("a/chats.jsonl"), d.path().join("a/alias.jsonl")).unwrap();
    let (recs, rep) = collect(&[d.path().to_path_buf()], &Options::default(), &CharEstimate);
    assert_eq!(recs.len(), 1, "the file is read once, not through the loop or the alias");
    assert!(codes(&rep).contains(&"symlink-loop"), "{:?}", codes(&rep));
    assert!(codes(&rep).contains(&"broken-link"), "{:?}", codes(&rep));
    assert!(codes(&rep).contains(&"same-file-twice"), "{:?}", codes(&rep));
}

#[cfg(unix)]
#[test]
fn unreadable_files_and_folders() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("secret.jsonl");
    write(&f, GOOD.as_bytes());
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
    let sub = d.path().join("locked");
    write(&sub.join("inside.jsonl"), GOOD.as_bytes());
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o000)).unwrap();
    let (recs, rep) = collect(&[d.path().to_path_buf()], &Options::default(), &CharEstimate);
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Root reads anything; anyone else gets findings. Either way nothing vanishes silently.
    let can_read = std::fs::File::open(&f).is_ok() && std::fs::read_dir(&sub).is_ok() && is_root();
    if can_read {
        assert_eq!(recs.len(), 2);
    } else {
        let unreadable = rep.findings.iter().filter(|x| x.code == "unreadable").count();
        assert_eq!(recs.len() + unreadable, 2, "{:#?}", rep.findings);
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

#[cfg(unix)]
#[test]
fn special_files_are_skipped_not_opened() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("pipe.jsonl");
    let ok = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        eprintln!("mkfifo not available; skipping");
        return;
    }
    // Opening a FIFO for reading would block forever: the walk must skip it.
    let (_, rep) = collect(&[d.path().to_path_buf()], &Options::default(), &CharEstimate);
    let f = rep.files.iter().find(|f| f.path.ends_with("pipe.jsonl")).unwrap();
    assert!(f.skipped.as_deref().unwrap().contains("not a regular file"));
}

#[test]
fn files_of_several_gigabytes_stream_in_bounded_memory() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("huge.jsonl");
    {
        let mut f = std::fs::File::create(&p).unwrap();
        for _ in 0..200 {
            f.write_all(GOOD.as_bytes()).unwrap();
        }
        // A sparse 3 GiB stretch without a line break, then more good lines.
        let len = f.metadata().unwrap().len();
        f.set_len(len + (3u64 << 30)).unwrap();
        use std::io::Seek;
        f.seek(std::io::SeekFrom::End(0)).unwrap();
        f.write_all(b"\n").unwrap();
        f.write_all(GOOD.as_bytes()).unwrap();
    }
    let before = peak_rss_kib();
    let (recs, rep) = collect(std::slice::from_ref(&p), &Options::default(), &CharEstimate);
    let after = peak_rss_kib();
    assert_eq!(recs.len(), 201);
    let long = rep.findings.iter().find(|f| f.code == "line-too-long").expect("the 3 GiB line is reported");
    assert_eq!(long.line, Some(201));
    if let (Some(a), Some(b)) = (before, after) {
        assert!(b.saturating_sub(a) < 256 * 1024, "peak memory grew by {} KiB", b - a);
    }
    // A whole-file format of several GB is refused with a finding, not read into memory.
    let j = d.path().join("huge.json");
    {
        let f = std::fs::File::create(&j).unwrap();
        // Text at the start (so it is recognised as JSON), then a sparse stretch.
        let mut head = b"[{\"text\": \"x\"},".to_vec();
        head.extend(std::iter::repeat_n(b' ', 9000));
        std::io::Write::write_all(&mut &f, &head).unwrap();
        f.set_len(3u64 << 30).unwrap();
    }
    let (_, rep) = collect(&[j], &Options::default(), &CharEstimate);
    let big = rep.findings.iter().find(|f| f.code == "file-too-large").expect("too large");
    assert!(big.message.contains("JSON Lines"), "{}", big.message);
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn deep_nesting() {
    let d = tempfile::tempdir().unwrap();
    let mut p: PathBuf = d.path().to_path_buf();
    for i in 0..200 {
        p.push(format!("d{i}"));
    }
    write(&p.join("deep.jsonl"), GOOD.as_bytes());
    let (recs, rep) = collect(&[d.path().to_path_buf()], &Options::default(), &CharEstimate);
    assert_eq!(recs.len(), 1, "{:#?}", rep.findings);
}

#[test]
fn a_folder_of_many_files_and_the_file_limit() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..3000 {
        write(&d.path().join(format!("s{}/f{i}.txt", i % 30)), format!("Note {i}: the roast went well today.").as_bytes());
    }
    let opts = Options { max_files: 1000, ..Options::default() };
    let (recs, rep) = collect(&[d.path().to_path_buf()], &opts, &CharEstimate);
    assert_eq!(recs.len(), 1000);
    let f = rep.findings.iter().find(|f| f.code == "too-many-files").expect("the limit is reported");
    assert!(f.message.contains("1000"));
    let (recs, _) = collect(&[d.path().to_path_buf()], &Options::default(), &CharEstimate);
    assert_eq!(recs.len(), 3000);
}

#[test]
fn missing_paths_are_reported() {
    let (recs, rep) = collect(&[PathBuf::from("/definitely/not/here")], &Options::default(), &CharEstimate);
    assert!(recs.is_empty());
    assert!(codes(&rep).contains(&"not-found"));
}

#[test]
fn residencyignore_lists_files_that_are_not_training_data() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("chats.jsonl"), GOOD.as_bytes());
    write(&d.path().join("holdout-pairs.jsonl"), GOOD.as_bytes());
    write(&d.path().join("sub/eval/prompts.txt"), b"What is the best roast?");
    write(&d.path().join(".residencyignore"), b"# evaluation data\nholdout-*.jsonl\nsub/eval/*\n");
    let (recs, rep) = collect(&[d.path().to_path_buf()], &Options::default(), &CharEstimate);
    assert_eq!(recs.len(), 1);
    let skipped: Vec<_> = rep.files.iter().filter(|f| f.skipped.as_deref().is_some_and(|s| s.contains(".residencyignore"))).collect();
    assert_eq!(skipped.len(), 2, "{:#?}", rep.files);
}
