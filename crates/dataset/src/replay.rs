//! Replay mix: general conversation mixed in against catastrophic forgetting, from the chatterbot
//! corpus or any folder the readers understand.

use std::path::PathBuf;

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::finding::Finding;
use crate::options::{CharEstimate, Options};
use crate::record::{Kind, Message, Record, Role};

/// Reads replay conversations from files or folders; they are marked `replay`.
pub fn load(paths: &[PathBuf], opts: &Options) -> (Vec<Record>, Vec<Finding>) {
    let mut records = Vec::new();
    let scan = crate::collect::run(paths, opts, &CharEstimate, None, &[], &mut |_, r, _| records.push(r));
    let mut findings: Vec<Finding> = scan
        .report
        .findings
        .into_iter()
        .filter(|f| f.severity == crate::finding::Severity::Error)
        .map(|mut f| {
            f.message = format!("replay data: {}", f.message);
            f
        })
        .collect();
    let before = records.len();
    records.retain(|r| r.messages.iter().any(|m| m.role == Role::Assistant && !m.content.trim().is_empty()));
    if records.len() < before {
        findings.push(Finding::info("replay-unusable", format!("{} replay record(s) without an answer were left out", before - records.len())));
    }
    for r in &mut records {
        r.kind = Kind::Replay;
        r.group = format!("replay:{}", r.group);
    }
    (records, findings)
}

/// Picks enough replay records, seeded, for them to be `share` of the training set.
pub fn pick(mut pool: Vec<Record>, train_records: usize, share: f64, seed: u64) -> (Vec<Record>, Option<Finding>) {
    if share <= 0.0 || pool.is_empty() {
        return (Vec::new(), None);
    }
    let share = share.min(0.9);
    let want = ((train_records as f64) * share / (1.0 - share)).round() as usize;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    pool.shuffle(&mut rng);
    let note = (want > pool.len()).then(|| {
        Finding::warning("replay-short", format!("a {:.0}% replay share needs {want} general conversations, but only {} were found; all were used", share * 100.0, pool.len()))
            .fix("add more general conversation to the replay folder, or lower --replay-share")
    });
    pool.truncate(want);
    (pool, note)
}

/// Replay records carry no persona rules; the system turn (if any) is the caller's choice.
pub fn with_system(mut r: Record, system: Option<&str>) -> Record {
    r.messages.retain(|m| m.role != Role::System);
    if let Some(s) = system {
        r.messages.insert(0, Message::system(s));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Source;

    fn r(i: usize) -> Record {
        Record { messages: vec![Message::user("hi"), Message::assistant(format!("hello {i}"))], source: Source { file: "x".into(), line: None }, group: format!("g{i}"), kind: Kind::Replay }
    }

    #[test]
    fn picks_the_share_seeded() {
        let pool: Vec<Record> = (0..100).map(r).collect();
        let (a, note) = pick(pool.clone(), 90, 0.1, 1);
        assert_eq!(a.len(), 10);
        assert!(note.is_none());
        let (b, _) = pick(pool.clone(), 90, 0.1, 1);
        assert_eq!(a, b);
        let (c, _) = pick(pool.clone(), 90, 0.1, 2);
        assert_ne!(a, c);
        let (d, note) = pick(pool, 9000, 0.5, 1);
        assert_eq!(d.len(), 100);
        assert!(note.is_some());
    }
}
