//! Watching a folder: additions, edits, deletions and renames update records and report quickly.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataset::{watch, CharEstimate, Change, Options, WatchEvent};

const LINE: &str = "{\"prompt\":\"When do you roast?\",\"completion\":\"Tuesdays and Fridays.\"}\n";

/// Waits for the next `Updated` event, collecting the changes announced before it.
fn next_update(rx: &mpsc::Receiver<WatchEvent>) -> (Vec<Change>, usize, Duration) {
    let start = Instant::now();
    let mut changes = Vec::new();
    loop {
        let left = Duration::from_secs(10).saturating_sub(start.elapsed());
        match rx.recv_timeout(left).expect("an update within 10 s") {
            WatchEvent::Changed(c) => changes.extend(c),
            WatchEvent::Updated { snapshot, .. } => return (changes, snapshot.records.len(), start.elapsed()),
            WatchEvent::Error(e) => panic!("watch error: {e}"),
        }
    }
}

#[test]
fn additions_edits_renames_and_deletions() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    std::fs::write(root.join("a.jsonl"), LINE).unwrap();
    let (tx, rx) = mpsc::channel();
    let w = watch(&root, Options::default(), Arc::new(CharEstimate), None, Duration::from_millis(200), move |ev| {
        let _ = tx.send(ev);
    })
    .unwrap();
    assert_eq!(w.snapshot().records.len(), 1);

    // Addition.
    let t = Instant::now();
    std::fs::write(root.join("b.jsonl"), LINE.repeat(2)).unwrap();
    let (changes, n, _) = next_update(&rx);
    let latency = t.elapsed();
    assert!(changes.iter().any(|c| matches!(c, Change::Added(p) | Change::Modified(p) if p.ends_with("b.jsonl"))), "{changes:?}");
    assert_eq!(n, 3);
    assert!(latency < Duration::from_secs(1), "updated in {latency:?}");
    assert_eq!(w.snapshot().records.len(), 3);

    // Edit.
    std::fs::write(root.join("a.jsonl"), LINE.repeat(4)).unwrap();
    let (changes, n, _) = next_update(&rx);
    assert!(changes.iter().any(|c| matches!(c, Change::Modified(p) | Change::Added(p) if p.ends_with("a.jsonl"))), "{changes:?}");
    assert_eq!(n, 6);

    // Rename: the records follow the file.
    std::fs::rename(root.join("b.jsonl"), root.join("c.jsonl")).unwrap();
    let (changes, n, _) = next_update(&rx);
    assert!(
        changes.iter().any(|c| matches!(c, Change::Renamed { from, to } if from.ends_with("b.jsonl") && to.ends_with("c.jsonl")))
            || changes.iter().any(|c| matches!(c, Change::Added(p) if p.ends_with("c.jsonl"))),
        "{changes:?}"
    );
    assert_eq!(n, 6);
    assert!(w.snapshot().records.iter().any(|r| r.source.file.ends_with("c.jsonl")));
    assert!(w.snapshot().report.files.iter().all(|f| !f.path.ends_with("b.jsonl")));

    // Deletion.
    std::fs::remove_file(root.join("a.jsonl")).unwrap();
    let (changes, n, _) = next_update(&rx);
    assert!(changes.iter().any(|c| matches!(c, Change::Removed(p) if p.ends_with("a.jsonl"))), "{changes:?}");
    assert_eq!(n, 2);
}

#[test]
fn a_burst_of_writes_is_debounced_into_few_updates() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    let (tx, rx) = mpsc::channel();
    let _w = watch(&root, Options::default(), Arc::new(CharEstimate), None, Duration::from_millis(300), move |ev| {
        let _ = tx.send(ev);
    })
    .unwrap();
    for i in 0..50 {
        std::fs::write(root.join(format!("f{i}.jsonl")), LINE).unwrap();
    }
    let mut updates = 0;
    let mut last = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if let Ok(WatchEvent::Updated { snapshot, .. }) = rx.recv_timeout(Duration::from_millis(100)) {
            updates += 1;
            last = snapshot.records.len();
        }
    }
    assert_eq!(last, 50);
    assert!(updates <= 5, "{updates} updates for one burst");
}
