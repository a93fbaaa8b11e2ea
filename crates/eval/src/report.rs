//! A self-contained HTML report (no scripts, no external files): per-turn adherence as an
//! inline SVG line chart, summary tables, the token tax of each side, SQL outcomes per
//! question, and what the guard did with destructive requests.

use std::fmt::Write;

use serde::Serialize;

use crate::drift::DriftRun;
use crate::holdout::{HoldoutSide, SideBySide};
use crate::sql::{GuardedReply, SqlEvaluation, Verdict};

/// Horizontal bars of each side's perplexity, labelled with the value.
fn perplexity_bars(sides: &[HoldoutSide]) -> String {
    let max = sides.iter().map(|s| s.perplexity).filter(|p| p.is_finite()).fold(0f64, f64::max);
    if max <= 0.0 {
        return String::new();
    }
    let (label_w, bar_w, row_h) = (200.0, 420.0, 30.0);
    let height = row_h * sides.len() as f64 + 10.0;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {height}\" width=\"{w}\" height=\"{height}\" role=\"img\" aria-label=\"perplexity by side\">\n",
        w = label_w + bar_w + 80.0
    );
    for (i, s) in sides.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        let len = if s.perplexity.is_finite() { bar_w * s.perplexity / max } else { bar_w };
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"13\">{}</text><rect x=\"{label_w}\" y=\"{}\" width=\"{len:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"13\">{:.2}</text>",
            label_w - 8.0,
            y + 18.0,
            esc(&s.label),
            y + 4.0,
            row_h - 10.0,
            COLORS[i % COLORS.len()],
            label_w + len + 6.0,
            y + 18.0,
            s.perplexity
        );
    }
    svg.push_str("</svg>\n");
    svg
}

const COLORS: &[&str] = &["#1d4ed8", "#c2410c", "#15803d", "#7e22ce"];

/// Everything one evaluation produced.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub title: String,
    /// Lines shown under the title: models, settings, caveats.
    pub notes: Vec<String>,
    pub drift: Vec<DriftRun>,
    pub sql: Vec<SqlEvaluation>,
    pub guard: Vec<GuardedReply>,
    /// Loss and perplexity of each side on held-out records.
    pub holdout: Vec<HoldoutSide>,
    /// Replies to held-out prompts, side by side.
    pub side_by_side: Vec<SideBySide>,
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "–".into())
}

impl Report {
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            esc(&self.title),
            STYLE,
            esc(&self.title)
        );
        if !self.notes.is_empty() {
            h.push_str("<ul class=\"notes\">\n");
            for n in &self.notes {
                let _ = writeln!(h, "<li>{}</li>", esc(n));
            }
            h.push_str("</ul>\n");
        }
        if !self.holdout.is_empty() {
            self.holdout_section(&mut h);
        }
        if !self.side_by_side.is_empty() {
            self.side_by_side_section(&mut h);
        }
        if !self.drift.is_empty() {
            self.drift_section(&mut h);
        }
        self.token_tax(&mut h);
        if !self.sql.is_empty() {
            self.sql_section(&mut h);
        }
        if !self.guard.is_empty() {
            self.guard_section(&mut h);
        }
        h.push_str("</body>\n</html>\n");
        h
    }

    fn holdout_section(&self, h: &mut String) {
        h.push_str("<h2>Held-out records</h2>\n<p>How likely each side finds the persona's own held-out replies: mean loss per assistant token (nats) and perplexity. Lower is closer to the voice. Every side is scored on the same assistant tokens.</p>\n");
        h.push_str("<table>\n<tr><th>side</th><th>records</th><th>assistant tokens</th><th>loss</th><th>perplexity</th><th>prompt tokens per record</th></tr>\n");
        for s in &self.holdout {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.2}</td><td>{:.0}</td></tr>",
                esc(&s.label),
                s.records,
                s.tokens,
                s.loss,
                s.perplexity,
                s.mean_prompt_tokens
            );
        }
        h.push_str("</table>\n");
        h.push_str(&perplexity_bars(&self.holdout));
    }

    fn side_by_side_section(&self, h: &mut String) {
        h.push_str("<h2>Replies side by side</h2>\n<table>\n<tr><th>prompt</th>");
        let labels: Vec<&str> = self.side_by_side.first().map(|s| s.replies.iter().map(|(l, _)| l.as_str()).collect()).unwrap_or_default();
        for l in &labels {
            let _ = write!(h, "<th>{}</th>", esc(l));
        }
        h.push_str("</tr>\n");
        for s in &self.side_by_side {
            let _ = write!(h, "<tr><td>{}</td>", esc(&s.prompt));
            for (_, r) in &s.replies {
                let _ = write!(h, "<td><pre>{}</pre></td>", esc(r));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }

    fn drift_section(&self, h: &mut String) {
        h.push_str("<h2>Persona drift</h2>\n<table>\n<tr><th>side</th><th>turns</th><th>mean adherence, all turns</th><th>mean adherence, turns 20–30</th><th>persona rules passed</th></tr>\n");
        for r in &self.drift {
            let (pass, total) = r.turns.iter().filter_map(|t| t.adherence.rules.as_ref()).map(|c| c.tally()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            let rules = if total > 0 { format!("{pass} of {total}") } else { "–".into() };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.label),
                r.turns.len(),
                fmt_opt(r.mean_score(1..=usize::MAX), 1),
                fmt_opt(r.mean_score(20..=30), 1),
                rules
            );
        }
        h.push_str("</table>\n");
        for r in &self.drift {
            for n in &r.notes {
                let _ = writeln!(h, "<p class=\"note\">{}: {}</p>", esc(&r.label), esc(n));
            }
        }
        h.push_str(&chart(&self.drift));
        h.push_str("<h3>Turn by turn</h3>\n<table>\n<tr><th>turn</th><th>user</th>");
        for r in &self.drift {
            let _ = write!(h, "<th>{}</th>", esc(&r.label));
        }
        h.push_str("</tr>\n");
        let n = self.drift.iter().map(|r| r.turns.len()).max().unwrap_or(0);
        for i in 0..n {
            let user = self.drift.iter().find_map(|r| r.turns.get(i)).map(|t| t.user.as_str()).unwrap_or("");
            let _ = write!(h, "<tr><td>{}</td><td>{}</td>", i + 1, esc(user));
            for r in &self.drift {
                match r.turns.get(i) {
                    Some(t) => {
                        let _ = write!(
                            h,
                            "<td><details><summary>{:.0}</summary><pre>{}</pre></details></td>",
                            t.adherence.score,
                            esc(&t.reply)
                        );
                    }
                    None => h.push_str("<td>–</td>"),
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }

    fn token_tax(&self, h: &mut String) {
        if self.drift.is_empty() && self.sql.is_empty() {
            return;
        }
        h.push_str("<h2>Token tax</h2>\n<p>What each side spends on its prompts: every token of the system prompt is paid again on every turn. Prefilled tokens are those computed; the rest were reused from the previous turn's cache.</p>\n");
        h.push_str("<table>\n<tr><th>evaluation</th><th>side</th><th>system prompt tokens</th><th>prompts</th><th>prompt tokens, total</th><th>prompt tokens, mean</th><th>prefilled tokens</th><th>prefill time (s)</th></tr>\n");
        let mut row = |kind: &str, label: &str, sys: String, n: usize, total: usize, pre: usize, secs: f64| {
            let mean = if n > 0 { format!("{:.0}", total as f64 / n as f64) } else { "–".into() };
            let _ = writeln!(h, "<tr><td>{kind}</td><td>{}</td><td>{sys}</td><td>{n}</td><td>{total}</td><td>{mean}</td><td>{pre}</td><td>{secs:.2}</td></tr>", esc(label));
        };
        for r in &self.drift {
            row("drift", &r.label, r.system_prompt_tokens.to_string(), r.turns.len(), r.total_prompt_tokens(), r.total_prefilled_tokens(), r.total_prefill_secs());
        }
        for e in &self.sql {
            let sys = if e.system_prompt.is_some() { "yes".to_string() } else { "0".to_string() };
            row("sql", &e.label, sys, e.results.len(), e.total_prompt_tokens(), e.total_prefilled_tokens(), e.total_prefill_secs());
        }
        h.push_str("</table>\n");
    }

    fn sql_section(&self, h: &mut String) {
        h.push_str("<h2>Text to SQL: execution accuracy</h2>\n<table>\n<tr><th>side</th><th>questions</th><th>execution accuracy</th><th>match</th><th>mismatch</th><th>error</th><th>refused</th></tr>\n");
        for e in &self.sql {
            let c = e.counts();
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.label),
                e.results.len(),
                e.accuracy().map(|a| format!("{:.1}%", 100.0 * a)).unwrap_or_else(|| "–".into()),
                c.matched,
                c.mismatched,
                c.errors,
                c.refused
            );
        }
        h.push_str("</table>\n");
        for e in &self.sql {
            for n in &e.notes {
                let _ = writeln!(h, "<p class=\"note\">{}: {}</p>", esc(&e.label), esc(n));
            }
        }
        h.push_str("<h3>Question by question</h3>\n<table>\n<tr><th>#</th><th>question</th>");
        for e in &self.sql {
            let _ = write!(h, "<th>{}</th>", esc(&e.label));
        }
        h.push_str("</tr>\n");
        let n = self.sql.iter().map(|e| e.results.len()).max().unwrap_or(0);
        for i in 0..n {
            let q = self.sql.iter().find_map(|e| e.results.get(i)).map(|r| r.question.as_str()).unwrap_or("");
            let _ = write!(h, "<tr><td>{}</td><td>{}</td>", i + 1, esc(q));
            for e in &self.sql {
                match e.results.get(i) {
                    Some(r) => {
                        let _ = write!(
                            h,
                            "<td class=\"{}\"><details><summary>{}</summary><p>{}</p><pre>{}</pre></details></td>",
                            r.outcome.name(),
                            r.outcome.name(),
                            esc(r.outcome.detail()),
                            esc(r.sql.as_deref().unwrap_or(&r.reply))
                        );
                    }
                    None => h.push_str("<td>–</td>"),
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }

    fn guard_section(&self, h: &mut String) {
        let executed_writes = self.guard.iter().filter(|g| g.executed && !g.verdict.is_allowed()).count();
        let refused = self.guard.iter().filter(|g| matches!(g.verdict, Verdict::Refused { .. })).count();
        let _ = writeln!(
            h,
            "<h2>Destructive requests</h2>\n<p>{} requests; {} replies refused by the guard; {} refused statements executed. Only read-only queries ever run, on a database opened read-only.</p>",
            self.guard.len(),
            refused,
            executed_writes
        );
        h.push_str("<table>\n<tr><th>side</th><th>request</th><th>SQL in the reply</th><th>guard</th><th>ran</th></tr>\n");
        for g in &self.guard {
            let verdict = match &g.verdict {
                Verdict::Allowed => "allowed (read-only)".to_string(),
                Verdict::Refused { reason } => format!("refused: {reason}"),
                Verdict::NotSql { message } => format!("not run: {message}"),
            };
            let ran = if g.executed { format!("yes ({})", g.result.as_deref().unwrap_or("")) } else { "no".into() };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td><pre>{}</pre></td><td>{}</td><td>{}</td></tr>",
                esc(&g.label),
                esc(&g.prompt),
                esc(g.sql.as_deref().unwrap_or("(none)")),
                esc(&verdict),
                esc(&ran)
            );
        }
        h.push_str("</table>\n");
    }
}

/// The per-turn adherence of every run as an SVG line chart, turns 20–30 shaded.
fn chart(runs: &[DriftRun]) -> String {
    let (w, hgt, left, right, top, bottom) = (760.0, 320.0, 48.0, 16.0, 16.0, 40.0);
    let pw = w - left - right;
    let ph = hgt - top - bottom;
    let n = runs.iter().map(|r| r.turns.iter().map(|t| t.turn).max().unwrap_or(0)).max().unwrap_or(0).max(2);
    let x = |turn: usize| left + (turn as f64 - 1.0) / (n as f64 - 1.0) * pw;
    let y = |score: f64| top + (1.0 - score.clamp(0.0, 100.0) / 100.0) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {}\" width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"Adherence score per turn\">",
        hgt + 24.0,
        hgt + 24.0
    );
    if n >= 20 {
        let (x0, x1) = (x(20), x(n.min(30)));
        let _ = writeln!(s, "<rect x=\"{x0:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{ph}\" fill=\"#f1f5f9\"/>", (x1 - x0).max(1.0));
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#64748b\">turns 20–30</text>", (x0 + x1) / 2.0, top + 12.0);
    }
    for v in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let _ = writeln!(s, "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#cbd5e1\" stroke-width=\"1\"/>", left + pw, y(v), y(v));
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#334155\">{v:.0}</text>", left - 6.0, y(v) + 4.0);
    }
    let step = if n > 20 { 5 } else { 1 };
    for t in (1..=n).filter(|t| *t == 1 || t % step == 0) {
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#334155\">{t}</text>", x(t), top + ph + 16.0);
    }
    let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" fill=\"#334155\">turn</text>", left + pw / 2.0, top + ph + 32.0);
    for (i, r) in runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = r.turns.iter().map(|t| format!("{:.1},{:.1}", x(t.turn), y(t.adherence.score))).collect();
        let _ = writeln!(s, "<g class=\"series\" data-label=\"{}\">", esc(&r.label));
        let _ = writeln!(s, "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>", pts.join(" "));
        for t in &r.turns {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{}: turn {}, score {:.0}</title></circle>",
                x(t.turn),
                y(t.adherence.score),
                esc(&r.label),
                t.turn,
                t.adherence.score
            );
        }
        s.push_str("</g>\n");
        let ly = hgt + 12.0;
        let lx = left + i as f64 * 260.0;
        let _ = writeln!(s, "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"14\" height=\"4\" fill=\"{color}\"/>", ly - 4.0);
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{ly:.1}\" font-size=\"12\" fill=\"#0f172a\">{}</text>", lx + 20.0, esc(&r.label));
    }
    s.push_str("</svg>\n");
    s
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#0f172a}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #cbd5e1;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f1f5f9}pre{white-space:pre-wrap;margin:0;max-width:480px}.note{color:#92400e}\
td.match{background:#dcfce7}td.mismatch{background:#fef9c3}td.error{background:#fee2e2}td.refused{background:#e0e7ff}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adherence::Adherence;
    use crate::drift::DriftTurn;
    use crate::sql::{Outcome, PairResult};
    use engine::StopReason;

    /// Every opened tag is closed in order (void elements excepted); returns the problem.
    fn balanced(html: &str) -> Result<usize, String> {
        const VOID: &[&str] = &["meta", "br", "hr", "img", "input", "link", "!doctype"];
        let mut stack: Vec<String> = Vec::new();
        let mut count = 0;
        let mut rest = html;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').ok_or("a tag is not closed with >")? + open;
            let tag = &rest[open + 1..close];
            rest = &rest[close + 1..];
            if tag.ends_with('/') {
                count += 1;
                continue;
            }
            let name: String = tag.trim_start_matches('/').chars().take_while(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
            if VOID.contains(&name.as_str()) {
                continue;
            }
            if tag.starts_with('/') {
                match stack.pop() {
                    Some(top) if top == name => count += 1,
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                stack.push(name);
            }
        }
        if stack.is_empty() {
            Ok(count)
        } else {
            Err(format!("left open: {stack:?}"))
        }
    }

    fn run(label: &str, scores: &[f64]) -> DriftRun {
        DriftRun {
            label: label.into(),
            system_prompt: None,
            system_prompt_tokens: 0,
            turns: scores
                .iter()
                .enumerate()
                .map(|(i, &s)| DriftTurn {
                    turn: i + 1,
                    user: format!("question <{i}> & more"),
                    reply: "Hi friend, </td> <script>alert(1)</script>".into(),
                    adherence: Adherence { score: s, rules: None },
                    prompt_tokens: 100 + i,
                    prefilled_tokens: 10,
                    generated_tokens: 5,
                    prefill_secs: 0.1,
                    decode_secs: 0.2,
                    stop_reason: StopReason::Eos,
                    dropped_exchanges: 0,
                })
                .collect(),
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn html_has_both_series_and_is_well_formed() {
        let base: Vec<f64> = (0..30).map(|i| 90.0 - 2.0 * i as f64).collect();
        let tuned: Vec<f64> = (0..30).map(|i| 80.0 + (i % 3) as f64).collect();
        let report = Report {
            title: "Drift & SQL <demo>".into(),
            notes: vec!["SmolLM2".into()],
            drift: vec![run("base + persona prompt", &base), run("adapter, no system prompt", &tuned)],
            sql: vec![SqlEvaluation {
                label: "base".into(),
                system_prompt: Some("schema".into()),
                dialect: crate::sql::Dialect::Sqlite,
                results: vec![PairResult {
                    question: "How many?".into(),
                    gold_sql: "SELECT 1".into(),
                    reply: "SELECT 2".into(),
                    sql: Some("SELECT 2 < 3".into()),
                    outcome: Outcome::Mismatch { detail: "expected (1), got (2)".into() },
                    prompt_tokens: 500,
                    prefilled_tokens: 500,
                    generated_tokens: 4,
                    prefill_secs: 1.0,
                    decode_secs: 0.1,
                }],
                notes: vec![],
            }],
            guard: vec![GuardedReply {
                label: "base".into(),
                prompt: "Drop the customers table.".into(),
                reply: "DROP TABLE X_77_User_Ref;".into(),
                sql: Some("DROP TABLE X_77_User_Ref;".into()),
                verdict: Verdict::Refused { reason: "DROP TABLE changes the database".into() },
                executed: false,
                result: None,
            }],
            holdout: vec![
                HoldoutSide { label: "base".into(), system_prompt: None, records: 21, tokens: 1216, loss: 4.16, perplexity: 4.16f64.exp(), mean_prompt_tokens: 40.0 },
                HoldoutSide { label: "adapter".into(), system_prompt: None, records: 21, tokens: 1216, loss: 2.4, perplexity: 2.4f64.exp(), mean_prompt_tokens: 40.0 },
            ],
            side_by_side: vec![SideBySide { prompt: "Decaf?".into(), replies: vec![("base".into(), "Sure <b>".into()), ("adapter".into(), "Hi friend".into())] }],
        };
        let html = report.to_html();
        assert!(html.contains("<td>4.1600</td><td>64.07</td>"), "{html}");
        let bars = html.split("aria-label=\"perplexity by side\"").nth(1).and_then(|s| s.split("</svg>").next()).expect("a perplexity chart");
        assert_eq!(bars.matches("<rect").count(), 2, "one perplexity bar per side");
        assert!(html.contains("Sure &lt;b&gt;"));
        let closed = balanced(&html).unwrap_or_else(|e| panic!("{e}\n{html}"));
        assert!(closed > 100, "{closed}");
        assert_eq!(html.matches("<polyline").count(), 2);
        assert_eq!(html.matches("<circle").count(), 60);
        assert!(html.contains("data-label=\"base + persona prompt\"") && html.contains("data-label=\"adapter, no system prompt\""));
        // The first series falls from 90 to 32: its last point is low on the chart.
        assert!(html.contains("turn 30, score 32"));
        assert!(!html.contains("<script>"), "replies must be escaped");
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("turns 20–30"));
        assert!(html.contains("0 refused statements executed"));
        assert!(html.contains("<td>mismatch") || html.contains("class=\"mismatch\""));
        // Mean over turns 20-30 of the falling series: 90 - 2*(19..=29) averages 42.
        assert!(html.contains("<td>42.0</td>"), "{html}");
    }

    #[test]
    fn the_checker_catches_broken_html() {
        assert!(balanced("<p><b>x</p></b>").is_err());
        assert!(balanced("<div>").is_err());
        assert_eq!(balanced("<p>a<br>b</p>"), Ok(1));
    }
}
