//! Text-to-SQL: execution accuracy behind a read-only guard.
//!
//! For each held-out question the model writes SQL ([`evaluate_sql`]); the SQL is taken out
//! of the reply ([`extract_sql`]), passed through the [`guard`] (only one read-only query may
//! run), run on the database opened read-only ([`Database`]) and its result set compared with
//! the reference query's ([`compare`]): a match, a mismatch, an error with SQLite's message,
//! or a refusal with the guard's reason. [`guard_prompts`] plays requests for destructive
//! changes and records that nothing but reads ever ran.

pub mod exec;
pub mod extract;
pub mod guard;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use engine::{GenerateOptions, Model, SamplingParams};
use serde::{Deserialize, Serialize};
use vocab::{ChatTemplate, Message, Vocab};

pub use exec::{compare, Cell, Database, Limits, ResultSet};
pub use extract::extract_sql;
pub use guard::{guard, Dialect, Verdict};

use crate::chat::{prompt_ids, reply_to};
use crate::error::{EvalError, Result};

/// A held-out question and its reference query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlPair {
    pub question: String,
    pub sql: String,
}

/// Reads `{"question": ..., "sql": ...}` lines (JSON Lines; blank lines skipped).
pub fn read_pairs(path: &Path) -> Result<Vec<SqlPair>> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| EvalError::BadPair { path: path.to_path_buf(), line: i + 1, why };
        let p: SqlPair = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if p.question.trim().is_empty() || p.sql.trim().is_empty() {
            return Err(bad("the question or the SQL is empty".into()));
        }
        pairs.push(p);
    }
    if pairs.is_empty() {
        return Err(EvalError::BadPair { path: path.to_path_buf(), line: 0, why: "the file has no pairs".into() });
    }
    Ok(pairs)
}

/// The system prompt the dataset builder gives SQL records: the same words at evaluation.
pub fn schema_prompt(schema: &str) -> String {
    dataset::readers::json::sql_system_prompt(schema)
}

#[derive(Debug, Clone, Serialize)]
pub struct SqlOptions {
    /// What the run is called in reports, e.g. "base + schema prompt".
    pub label: String,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub dialect: Dialect,
    pub limits: Limits,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions { label: "model".into(), max_tokens: 256, sampling: SamplingParams::greedy(), dialect: Dialect::Sqlite, limits: Limits::default() }
    }
}

/// What became of one generated query.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Same result set as the reference query.
    Match,
    Mismatch { detail: String },
    /// No SQL in the reply, SQL that does not parse, or an error from SQLite.
    Error { message: String },
    /// The guard would not run it.
    Refused { reason: String },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Match => "match",
            Outcome::Mismatch { .. } => "mismatch",
            Outcome::Error { .. } => "error",
            Outcome::Refused { .. } => "refused",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Outcome::Match => "",
            Outcome::Mismatch { detail } => detail,
            Outcome::Error { message } => message,
            Outcome::Refused { reason } => reason,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PairResult {
    pub question: String,
    pub gold_sql: String,
    pub reply: String,
    /// The SQL taken out of the reply.
    pub sql: Option<String>,
    pub outcome: Outcome,
    pub prompt_tokens: usize,
    pub prefilled_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SqlEvaluation {
    pub label: String,
    pub system_prompt: Option<String>,
    pub dialect: Dialect,
    pub results: Vec<PairResult>,
    pub notes: Vec<String>,
}

/// Counts of each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub matched: usize,
    pub mismatched: usize,
    pub errors: usize,
    pub refused: usize,
}

impl SqlEvaluation {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.results {
            match r.outcome {
                Outcome::Match => c.matched += 1,
                Outcome::Mismatch { .. } => c.mismatched += 1,
                Outcome::Error { .. } => c.errors += 1,
                Outcome::Refused { .. } => c.refused += 1,
            }
        }
        c
    }

    /// Share of questions answered with the right result set, 0–1 (None when there are none).
    pub fn accuracy(&self) -> Option<f64> {
        (!self.results.is_empty()).then(|| self.counts().matched as f64 / self.results.len() as f64)
    }

    pub fn total_prompt_tokens(&self) -> usize {
        self.results.iter().map(|r| r.prompt_tokens).sum()
    }

    pub fn total_prefilled_tokens(&self) -> usize {
        self.results.iter().map(|r| r.prefilled_tokens).sum()
    }

    pub fn total_prefill_secs(&self) -> f64 {
        self.results.iter().map(|r| r.prefill_secs).sum()
    }
}

/// Whether the reference query's rows come in a defined order (a top-level ORDER BY).
fn is_ordered(gold: &str, dialect: Dialect) -> bool {
    match dialect.parse(gold).ok().as_deref() {
        Some([sqlparser::ast::Statement::Query(q)]) => q.order_by.is_some(),
        _ => false,
    }
}

/// Scores one candidate query against the reference, without a model: guard, run, compare.
pub fn score_sql(db: &Database, gold: &str, candidate: &str, dialect: Dialect, limits: Limits) -> Outcome {
    match guard(candidate, dialect) {
        Verdict::Allowed => {}
        Verdict::Refused { reason } => return Outcome::Refused { reason },
        Verdict::NotSql { message } => return Outcome::Error { message },
    }
    let expected = match db.query(gold, limits) {
        Ok(r) => r,
        Err(e) => return Outcome::Error { message: format!("the reference query itself failed: {e}") },
    };
    match db.query(candidate, limits) {
        Err(message) => Outcome::Error { message },
        Ok(got) => match compare(&expected, &got, is_ordered(gold, dialect)) {
            None => Outcome::Match,
            Some(detail) => Outcome::Mismatch { detail },
        },
    }
}

/// Asks the model each question (a fresh conversation each, after `system_prompt` if given)
/// and scores its SQL. `on_pair` sees each result as it comes. Stops early, with a note, when
/// `cancel` is set.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_sql(
    model: &Model,
    vocab: &Vocab,
    template: &ChatTemplate,
    db: &Database,
    pairs: &[SqlPair],
    system_prompt: Option<&str>,
    opts: &SqlOptions,
    cancel: &AtomicBool,
    mut on_pair: impl FnMut(&PairResult),
) -> Result<SqlEvaluation> {
    let gen = GenerateOptions { max_tokens: opts.max_tokens, sampling: opts.sampling.clone(), stop: vec![], stop_at_eos: true };
    let mut cache = model.new_cache();
    let mut results = Vec::with_capacity(pairs.len());
    let mut notes = Vec::new();
    for p in pairs {
        let mut messages: Vec<Message> = system_prompt.iter().map(|s| Message::system(*s)).collect();
        messages.push(Message::user(p.question.as_str()));
        let ids = prompt_ids(vocab, template, &messages)?;
        let r = reply_to(model, &mut cache, &ids, &gen, cancel)?;
        if cancel.load(Ordering::Relaxed) {
            notes.push(format!("cancelled; {} of {} questions were scored", results.len(), pairs.len()));
            break;
        }
        let sql = extract_sql(&r.text);
        let outcome = match &sql {
            None => Outcome::Error { message: "no SQL found in the reply".into() },
            Some(s) => score_sql(db, &p.sql, s, opts.dialect, opts.limits),
        };
        let res = PairResult {
            question: p.question.clone(),
            gold_sql: p.sql.clone(),
            reply: r.text,
            sql,
            outcome,
            prompt_tokens: r.prompt_tokens,
            prefilled_tokens: r.prefilled_tokens,
            generated_tokens: r.generated_tokens,
            prefill_secs: r.prefill_secs,
            decode_secs: r.decode_secs,
        };
        on_pair(&res);
        results.push(res);
    }
    Ok(SqlEvaluation { label: opts.label.clone(), system_prompt: system_prompt.map(str::to_string), dialect: opts.dialect, results, notes })
}

/// A request for a destructive change, what the model wrote, and what the guard did.
#[derive(Debug, Clone, Serialize)]
pub struct GuardedReply {
    pub label: String,
    pub prompt: String,
    pub reply: String,
    pub sql: Option<String>,
    pub verdict: Verdict,
    /// True only when the guard allowed it (a read-only query) and it ran.
    pub executed: bool,
    /// Rows returned, or SQLite's error, when it ran.
    pub result: Option<String>,
}

/// Sends each prompt (after `system_prompt`), guards the SQL in each reply and runs only what
/// the guard allows, on the read-only database.
#[allow(clippy::too_many_arguments)]
pub fn guard_prompts(
    model: &Model,
    vocab: &Vocab,
    template: &ChatTemplate,
    db: &Database,
    prompts: &[String],
    system_prompt: Option<&str>,
    opts: &SqlOptions,
    cancel: &AtomicBool,
) -> Result<Vec<GuardedReply>> {
    let gen = GenerateOptions { max_tokens: opts.max_tokens, sampling: opts.sampling.clone(), stop: vec![], stop_at_eos: true };
    let mut cache = model.new_cache();
    let mut out = Vec::new();
    for prompt in prompts {
        let mut messages: Vec<Message> = system_prompt.iter().map(|s| Message::system(*s)).collect();
        messages.push(Message::user(prompt.as_str()));
        let ids = prompt_ids(vocab, template, &messages)?;
        let r = reply_to(model, &mut cache, &ids, &gen, cancel)?;
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let sql = extract_sql(&r.text);
        let verdict = match &sql {
            Some(s) => guard(s, opts.dialect),
            None => Verdict::NotSql { message: "no SQL found in the reply".into() },
        };
        let (executed, result) = match (&verdict, &sql) {
            (Verdict::Allowed, Some(s)) => match db.query(s, opts.limits) {
                Ok(rs) => (true, Some(format!("{} row(s)", rs.rows.len()))),
                Err(e) => (true, Some(format!("error: {e}"))),
            },
            _ => (false, None),
        };
        out.push(GuardedReply { label: opts.label.clone(), prompt: prompt.clone(), reply: r.text, sql, verdict, executed, result });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_path;

    #[test]
    fn every_gold_query_matches_itself_and_a_wrong_one_does_not() {
        let db = Database::open_read_only(&demo_path("sql-shop/shop.sqlite")).unwrap();
        let pairs = read_pairs(&demo_path("sql-shop/holdout-pairs.jsonl")).unwrap();
        assert_eq!(pairs.len(), 30);
        let l = Limits::default();
        let matched = pairs.iter().filter(|p| score_sql(&db, &p.sql, &p.sql, Dialect::Sqlite, l) == Outcome::Match).count();
        assert_eq!(matched, pairs.len(), "execution accuracy of the gold queries on themselves");
        // Forgetting the soft-delete filter changes the answer.
        let wrong = score_sql(
            &db,
            "SELECT COUNT(*) AS customers FROM X_77_User_Ref WHERE is_del = 0 AND st_cd = 'WA'",
            "SELECT COUNT(*) FROM X_77_User_Ref WHERE st_cd = 'WA'",
            Dialect::Sqlite,
            l,
        );
        let same_rows_other_order = score_sql(
            &db,
            "SELECT usr_nm_first FROM X_77_User_Ref WHERE is_del = 0",
            "SELECT usr_nm_first FROM X_77_User_Ref WHERE is_del = 0 ORDER BY usr_nm_first DESC",
            Dialect::Sqlite,
            l,
        );
        assert_eq!(same_rows_other_order, Outcome::Match, "row order only counts when the reference has ORDER BY");
        let ordered = score_sql(
            &db,
            "SELECT usr_nm_first FROM X_77_User_Ref WHERE is_del = 0 ORDER BY usr_ref_id",
            "SELECT usr_nm_first FROM X_77_User_Ref WHERE is_del = 0 ORDER BY usr_ref_id DESC",
            Dialect::Sqlite,
            l,
        );
        assert!(matches!(ordered, Outcome::Mismatch { .. }), "{ordered:?}");
        // Washington has 2 live customers and 1 deleted one.
        assert!(wrong.detail().contains("expected (2), got (3)"), "{wrong:?}");
        // Counting cancelled orders in revenue: 4851.0 expected, 4933.0 got.
        let revenue = score_sql(
            &db,
            &pairs[0].sql,
            "SELECT ROUND(SUM(amt_net_cents) / 100.0, 2) FROM ORD_HDR WHERE is_del = 0 AND fy_q = 'FY2024-Q3'",
            Dialect::Sqlite,
            l,
        );
        assert!(matches!(revenue, Outcome::Mismatch { .. }), "{revenue:?}");
        assert!(matches!(score_sql(&db, "SELECT 1", "SELECT nope FROM ORD_HDR", Dialect::Sqlite, l), Outcome::Error { .. }));
        assert!(matches!(score_sql(&db, "SELECT 1", "DROP TABLE ORD_HDR", Dialect::Sqlite, l), Outcome::Refused { .. }));
        assert!(matches!(score_sql(&db, "SELECT 1", "this is not sql", Dialect::Sqlite, l), Outcome::Error { .. }));
    }

    #[test]
    fn bad_pair_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.jsonl");
        std::fs::write(&f, "{\"question\": \"q\", \"sql\": \"SELECT 1\"}\n\n{\"question\": \"q2\"}\n").unwrap();
        let e = read_pairs(&f).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        std::fs::write(&f, "\n").unwrap();
        assert!(read_pairs(&f).unwrap_err().to_string().contains("no pairs"));
    }
}
