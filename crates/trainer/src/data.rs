//! Chat records (JSON Lines, `{"messages": [{"role", "content"}, ...]}`) to
//! training examples: token ids from the model's chat template, and labels that
//! mark the assistant's tokens only (loss on what the model should say, not on
//! what it is told). Nothing is dropped silently: every skipped or cut record is
//! counted with its line.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};
use vocab::{ChatTemplate, Message, Vocab};

use crate::error::{Result, TrainError};

/// Label of a position that carries no loss (Hugging Face's convention).
pub const IGNORE: i64 = -100;

/// One tokenized record. `labels[t]` is `ids[t]` where the model is trained to
/// produce that token (from position `t - 1`), `IGNORE` elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub labels: Vec<i64>,
    /// 1-based line in the data file.
    pub line: usize,
}

impl Example {
    /// Tokens that carry loss (each predicts from the position before it).
    pub fn trained_tokens(&self) -> usize {
        self.labels.iter().skip(1).filter(|l| **l != IGNORE).count()
    }
}

/// What reading a data file found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DataReport {
    pub file: String,
    pub records: usize,
    pub used: usize,
    /// Lines cut to the sequence length (kept: the first `seq_len` tokens train).
    pub truncated: Vec<usize>,
    /// Skipped lines and why.
    pub skipped: Vec<Skipped>,
    pub tokens: usize,
    pub trained_tokens: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Skipped {
    pub line: usize,
    pub why: String,
}

impl DataReport {
    /// One line for the CLI and the log.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} record(s), {} used ({} tokens, {} trained)",
            self.file, self.records, self.used, self.tokens, self.trained_tokens
        );
        if !self.truncated.is_empty() {
            s.push_str(&format!("; {} cut to the sequence length (lines {})", self.truncated.len(), lines(&self.truncated)));
        }
        if !self.skipped.is_empty() {
            let l: Vec<usize> = self.skipped.iter().map(|s| s.line).collect();
            s.push_str(&format!("; {} skipped (lines {}; first: {})", self.skipped.len(), lines(&l), self.skipped[0].why));
        }
        s
    }
}

fn lines(l: &[usize]) -> String {
    let mut v: Vec<String> = l.iter().take(8).map(|n| n.to_string()).collect();
    if l.len() > 8 {
        v.push("...".into());
    }
    v.join(", ")
}

#[derive(Deserialize)]
struct Record {
    messages: Vec<Message>,
}

/// Reads and tokenizes a JSONL file of chat records.
pub fn load(path: &Path, vocab: &Vocab, template: &ChatTemplate, seq_len: usize) -> Result<(Vec<Example>, DataReport)> {
    let file = std::fs::File::open(path).map_err(|e| TrainError::Data(format!("cannot open {}: {e}", path.display())))?;
    let mut report = DataReport { file: path.display().to_string(), ..Default::default() };
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| TrainError::Data(format!("{} line {n}: cannot read ({e}); is it a text file?", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        report.records += 1;
        let rec: Record = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                report.skipped.push(Skipped { line: n, why: format!("not a chat record ({e}); expected {{\"messages\": [{{\"role\": ..., \"content\": ...}}]}}") });
                continue;
            }
        };
        match tokenize(&rec.messages, vocab, template) {
            Ok(mut ex) => {
                ex.line = n;
                let first_trained = ex.labels.iter().position(|l| *l != IGNORE).unwrap_or(ex.ids.len());
                if first_trained >= seq_len {
                    report.skipped.push(Skipped {
                        line: n,
                        why: format!(
                            "the assistant's reply starts after token {first_trained}, beyond the sequence length of {seq_len}: \
                             raise --seq-len above {first_trained} (a long system prompt, such as a database schema, counts)"
                        ),
                    });
                    continue;
                }
                if ex.ids.len() > seq_len {
                    ex.ids.truncate(seq_len);
                    ex.labels.truncate(seq_len);
                    report.truncated.push(n);
                }
                if ex.trained_tokens() == 0 {
                    report.skipped.push(Skipped { line: n, why: "no assistant text to learn from".into() });
                    continue;
                }
                report.used += 1;
                report.tokens += ex.ids.len();
                report.trained_tokens += ex.trained_tokens();
                out.push(ex);
            }
            Err(why) => report.skipped.push(Skipped { line: n, why }),
        }
    }
    Ok((out, report))
}

/// Token ids of a conversation and labels on its assistant turns. Each assistant
/// turn's tokens are those between the rendering of the conversation before it
/// (with the generation prompt) and the rendering that includes it, which covers
/// the end-of-turn marker the template writes: the model learns to stop.
pub fn tokenize(messages: &[Message], vocab: &Vocab, template: &ChatTemplate) -> std::result::Result<Example, String> {
    if messages.is_empty() {
        return Err("the record has no messages".into());
    }
    if let Some(m) = messages.iter().find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant")) {
        return Err(format!("unknown role `{}` (expected system, user or assistant)", m.role));
    }
    if !messages.iter().any(|m| m.role == "assistant" && !m.content.trim().is_empty()) {
        return Err("the record has no assistant turn with text: there is nothing to learn from it".into());
    }
    let encode = |msgs: &[Message], gen: bool| -> std::result::Result<Vec<u32>, String> {
        let p = template.render_for_model(vocab, msgs, gen).map_err(|e| e.to_string())?;
        p.encode(vocab).map_err(|e| e.to_string())
    };
    let ids = encode(messages, false)?;
    let mut labels = vec![IGNORE; ids.len()];
    for (k, m) in messages.iter().enumerate() {
        if m.role != "assistant" || m.content.trim().is_empty() {
            continue;
        }
        let before = encode(&messages[..k], true)?;
        let through = encode(&messages[..=k], false)?;
        // Tokenization is not always prefix-stable at a boundary; take the
        // common prefix so that no prompt token is ever trained on.
        let mut start = common_prefix(&before, &through);
        if k == 0 && start < before.len() {
            // A reply with nothing before it (a document, a greeting): some templates
            // (SmolLM2's, Qwen's) add a default system turn only when the conversation is
            // not empty, so the empty conversation's generation prompt is not a prefix.
            // The reply starts after that prompt's header, wherever the template put it.
            let header = &before[start..];
            if let Some(p) = through[start..].windows(header.len()).position(|w| w == header) {
                start += p + header.len();
            }
        }
        let end = common_prefix(&through, &ids);
        for t in start..end {
            labels[t] = ids[t] as i64;
        }
    }
    Ok(Example { ids, labels, line: 0 })
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A batch: `ids` and `labels` `[rows, len]`, right-padded (padding carries no
/// loss, and with a causal mask no real token sees it).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub ids: Vec<Vec<u32>>,
    pub labels: Vec<Vec<i64>>,
}

impl Batch {
    pub fn of(examples: &[&Example], pad: u32) -> Batch {
        let len = examples.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(examples.len());
        let mut labels = Vec::with_capacity(examples.len());
        for e in examples {
            let mut i = e.ids.clone();
            let mut l = e.labels.clone();
            i.resize(len, pad);
            l.resize(len, IGNORE);
            ids.push(i);
            labels.push(l);
        }
        Batch { ids, labels }
    }

    pub fn tokens(&self) -> usize {
        self.ids.iter().map(|r| r.len()).sum()
    }
}

/// The order of batches in `epoch`: examples shuffled with a seed derived from
/// `(seed, epoch)`, then grouped by similar length (length bucketing: less
/// padding) within windows of 32 batches, and the batches shuffled again. A
/// pure function of its inputs, so a resumed run sees the same order.
pub fn epoch_batches(examples: &[Example], batch: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0xA076_1D64_78BD_642F));
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(&mut rng);
    let batch = batch.max(1);
    if batch > 1 {
        for window in order.chunks_mut(batch * 32) {
            window.sort_by_key(|&i| examples[i].ids.len());
        }
    }
    let mut batches: Vec<Vec<usize>> = order.chunks(batch).map(|c| c.to_vec()).collect();
    if batch > 1 {
        batches.shuffle(&mut rng);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(len: usize) -> Example {
        Example { ids: vec![1; len], labels: vec![1; len], line: 0 }
    }

    #[test]
    fn batches_cover_every_example_once_and_depend_only_on_seed_and_epoch() {
        let exs: Vec<Example> = (0..50).map(|i| ex(5 + i % 7)).collect();
        let b = epoch_batches(&exs, 4, 7, 0);
        let mut all: Vec<usize> = b.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        assert_eq!(b, epoch_batches(&exs, 4, 7, 0));
        assert_ne!(b, epoch_batches(&exs, 4, 7, 1));
        assert_ne!(b, epoch_batches(&exs, 4, 8, 0));
    }

    #[test]
    fn padding_carries_no_loss() {
        let a = Example { ids: vec![5, 6, 7], labels: vec![IGNORE, 6, 7], line: 1 };
        let b = Example { ids: vec![5], labels: vec![IGNORE], line: 2 };
        let batch = Batch::of(&[&a, &b], 0);
        assert_eq!(batch.ids[1], vec![5, 0, 0]);
        assert_eq!(batch.labels[1], vec![IGNORE, IGNORE, IGNORE]);
        assert_eq!(a.trained_tokens(), 2);
    }
}
