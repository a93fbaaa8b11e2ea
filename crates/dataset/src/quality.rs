//! The quality checks: run record by record as records stream past (bounded memory: a signature
//! and a few numbers a record), with dataset-wide findings at the end.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::finding::{Finding, Severity};
use crate::minhash;
use crate::options::{Options, TokenCounter};
use crate::persona::Persona;
use crate::pii;
use crate::record::{Kind, Record, Role};

/// What the checks concluded about one record (the builder applies the accepted fixes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub tokens: usize,
    pub duplicate_of: Option<usize>,
    pub near_duplicate_of: Option<usize>,
    pub too_long: bool,
    pub empty_reply: bool,
    pub personal_data: usize,
    pub mojibake: bool,
    pub forbidden: bool,
}

/// Dataset-wide numbers.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    pub records: usize,
    pub by_kind: BTreeMap<String, usize>,
    pub tokens: TokenStats,
    pub exact_duplicates: usize,
    pub near_duplicates: usize,
    pub too_long: usize,
    pub empty_replies: usize,
    pub short_replies: usize,
    pub invalid_json_replies: usize,
    pub with_personal_data: usize,
    pub with_mojibake: usize,
    pub with_forbidden_output: usize,
    pub languages: BTreeMap<String, usize>,
    pub user_turns: usize,
    pub assistant_turns: usize,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TokenStats {
    pub min: usize,
    pub mean: f64,
    pub p50: usize,
    pub p95: usize,
    pub max: usize,
    pub total: u64,
}

struct Loc {
    file: u32,
    line: Option<u64>,
}

/// Reply features whose mix across a dataset should be consistent.
const FEATURES: [(&str, &str); 5] = [
    ("greeting", "open with a greeting"),
    ("signoff", "end with a sign-off"),
    ("markdown", "use Markdown lists or headings"),
    ("emoji", "use emoji"),
    ("json", "are JSON"),
];

pub struct Analyzer<'a> {
    opts: &'a Options,
    counter: &'a dyn TokenCounter,
    persona: Option<&'a Persona>,
    files: Vec<String>,
    file_ids: HashMap<String, u32>,
    locs: Vec<Loc>,
    tokens: Vec<u32>,
    exact: HashMap<u64, usize>,
    near: minhash::Index,
    features: [(usize, Vec<usize>, Vec<usize>); 5],
    feature_base: usize,
    langs: HashMap<&'static str, Vec<usize>>,
    pub findings: Vec<Finding>,
    pub stats: Stats,
}

impl<'a> Analyzer<'a> {
    pub fn new(opts: &'a Options, counter: &'a dyn TokenCounter, persona: Option<&'a Persona>) -> Self {
        Analyzer {
            opts,
            counter,
            persona,
            files: Vec::new(),
            file_ids: HashMap::new(),
            locs: Vec::new(),
            tokens: Vec::new(),
            exact: HashMap::new(),
            near: minhash::Index::default(),
            features: Default::default(),
            feature_base: 0,
            langs: HashMap::new(),
            findings: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn loc_text(&self, i: usize) -> String {
        let l = &self.locs[i];
        match l.line {
            Some(n) => format!("{} line {n}", self.files[l.file as usize]),
            None => format!("{} (record {})", self.files[l.file as usize], i + 1),
        }
    }

    fn push(&mut self, idx: usize, r: &Record, f: Finding) {
        self.findings.push(f.in_file(r.source.file.clone()).at_line(r.source.line).for_record(idx));
    }

    /// Checks one record. `idx` must count up from 0.
    pub fn observe(&mut self, idx: usize, r: &Record) -> Verdict {
        let mut v = Verdict::default();
        let fid = match self.file_ids.get(&r.source.file) {
            Some(&f) => f,
            None => {
                let f = self.files.len() as u32;
                self.files.push(r.source.file.clone());
                self.file_ids.insert(r.source.file.clone(), f);
                f
            }
        };
        self.locs.push(Loc { file: fid, line: r.source.line });
        self.stats.records += 1;
        *self.stats.by_kind.entry(r.kind.as_str().to_string()).or_default() += 1;

        // Length under the chosen tokenizer and template.
        v.tokens = self.counter.count(&r.messages);
        self.tokens.push(v.tokens.min(u32::MAX as usize) as u32);
        if v.tokens > self.opts.seq_len {
            v.too_long = true;
            self.stats.too_long += 1;
            let est = if self.counter.is_estimate() { " (estimated)" } else { "" };
            self.push(idx, r, Finding::warning("too-long", format!("{} tokens{est}, over the sequence length of {}; it is kept (training cuts it at the limit) unless you drop it", v.tokens, self.opts.seq_len)).fix("split the conversation, raise the sequence length, or build with --drop-too-long"));
        }

        // Duplicates, on what the record says (a shared system prompt or schema is context and
        // would make every record look alike).
        let text: String = r.messages.iter().filter(|m| m.role != Role::System).map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n\n");
        let words = minhash::words(&text);
        let key = minhash::exact_key_of(&words);
        if let Some(&first) = self.exact.get(&key) {
            v.duplicate_of = Some(first);
            self.stats.exact_duplicates += 1;
            let m = format!("same text as {}", self.loc_text(first));
            self.push(idx, r, Finding::warning("exact-duplicate", m).fix("build with --drop-duplicates to keep only the first copy"));
        } else {
            self.exact.insert(key, idx);
            if words.len() >= 8 {
                if let Some(sig) = minhash::signature_of(&words) {
                    if let Some((other, sim)) = self.near.add(idx, sig, self.opts.near_duplicate_threshold) {
                        v.near_duplicate_of = Some(other);
                        self.stats.near_duplicates += 1;
                        let m = format!("{:.0}% similar to {}", sim * 100.0, self.loc_text(other));
                        self.push(idx, r, Finding::info("near-duplicate", m).fix("build with --drop-duplicates to keep only the first of near-identical records"));
                    }
                }
            }
        }

        // Replies: empty, short, JSON, formatting, persona.
        let replies: Vec<&str> = r.replies().map(|m| m.content.as_str()).collect();
        if matches!(r.kind, Kind::Chat | Kind::Sql) && replies.is_empty() {
            v.empty_reply = true;
            self.stats.empty_replies += 1;
            self.push(idx, r, Finding::error("no-reply", "the record has no assistant turn, so there is nothing to learn from it").fix("add the answer, or drop the record"));
        }
        for reply in &replies {
            let t = reply.trim();
            if t.is_empty() {
                if !v.empty_reply {
                    self.stats.empty_replies += 1;
                }
                v.empty_reply = true;
                self.push(idx, r, Finding::error("empty-reply", "an assistant reply is empty; training on it teaches the model to say nothing").fix("write the answer, or drop the record (build drops empty replies)"));
            } else if t.chars().count() < self.opts.min_reply_chars || (r.kind != Kind::Sql && t.split_whitespace().count() < 2 && t.chars().count() < 12) {
                self.stats.short_replies += 1;
                self.push(idx, r, Finding::warning("short-reply", format!("very short reply: \"{t}\"")).fix("give a fuller answer, or drop the record if it is not typical"));
            }
            if let Some(json) = json_candidate(t) {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(json) {
                    self.stats.invalid_json_replies += 1;
                    let fix = crate::readers::json::json_fix_hint(json);
                    self.push(idx, r, Finding::error("invalid-json-reply", format!("the reply looks like JSON but does not parse ({e})")).fix(fix));
                }
            }
        }
        if r.kind == Kind::Chat {
            if let Some(last) = replies.last() {
                let feats = reply_features(last, self.persona);
                for (k, on) in feats.iter().enumerate() {
                    let (count, yes, no) = &mut self.features[k];
                    if *on {
                        *count += 1;
                        if yes.len() < 5 {
                            yes.push(idx);
                        }
                    } else if no.len() < 5 {
                        no.push(idx);
                    }
                }
                self.feature_base += 1;
            }
            self.check_roles(idx, r);
        }
        if let Some(p) = self.persona {
            let hits: Vec<String> = replies.iter().flat_map(|t| p.forbidden_in(t)).map(str::to_string).collect();
            if !hits.is_empty() {
                v.forbidden = true;
                self.stats.with_forbidden_output += 1;
                self.push(idx, r, Finding::warning("forbidden-output", format!("the reply contains what the persona forbids: \"{}\"", hits.join("\", \""))).fix("rewrite the reply; build drops records with forbidden output unless you keep them"));
            }
        }

        // Text encoding damage and personal data, in every turn.
        let mut moji = false;
        let mut fffd = false;
        let mut pii_kinds: BTreeMap<pii::PiiKind, usize> = BTreeMap::new();
        for m in &r.messages {
            moji |= crate::text::has_mojibake(&m.content);
            fffd |= m.content.contains('\u{FFFD}');
            for (_, k) in pii::find(&m.content) {
                *pii_kinds.entry(k).or_default() += 1;
            }
        }
        if moji {
            v.mojibake = true;
            self.stats.with_mojibake += 1;
            self.push(idx, r, Finding::warning("mojibake", "garbled characters (like \"cafÃ©\" for \"café\"): the text was decoded with the wrong charset somewhere").fix("build with --fix-text to repair it, or re-export the source as UTF-8"));
        }
        if fffd {
            self.push(idx, r, Finding::warning("replacement-characters", "the text contains � (characters lost in an earlier conversion)").fix("re-export the source as UTF-8"));
        }
        if !pii_kinds.is_empty() {
            v.personal_data = pii_kinds.values().sum();
            self.stats.with_personal_data += 1;
            let what: Vec<String> = pii_kinds.iter().map(|(k, n)| format!("{n} {}", if *n > 1 { k.plural() } else { k.label() })).collect();
            self.push(idx, r, Finding::warning("personal-data", format!("contains {}", what.join(", "))).fix("build with --redact to replace them with [EMAIL], [PHONE], [CARD], [IBAN]"));
        }

        // Language of the replies (only long enough texts give a reliable answer), and a reply in
        // another language than the question it answers.
        let reply_text: String = if r.kind == Kind::Sql { String::new() } else { replies.join("\n") };
        if let Some(lang) = reliable_language(&reply_text) {
            self.langs.entry(lang.eng_name()).or_default().push(idx);
            let user_text: String = r.messages.iter().filter(|m| m.role == Role::User).map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n");
            if let Some(ul) = reliable_language(&user_text) {
                if ul != lang {
                    self.push(idx, r, Finding::warning("language-mismatch", format!("the question is in {} but the reply is in {}", ul.eng_name(), lang.eng_name())).fix("answer in the customer's language, or drop the record"));
                }
            }
        }
        v
    }

    fn check_roles(&mut self, idx: usize, r: &Record) {
        let turns: Vec<Role> = r.messages.iter().map(|m| m.role).filter(|&x| x != Role::System).collect();
        self.stats.user_turns += turns.iter().filter(|&&x| x == Role::User).count();
        self.stats.assistant_turns += turns.iter().filter(|&&x| x == Role::Assistant).count();
        if turns.first() == Some(&Role::Assistant) {
            self.push(idx, r, Finding::info("starts-with-assistant", "the conversation opens with the assistant, before any question"));
        }
        if turns.last() == Some(&Role::User) && turns.contains(&Role::Assistant) {
            self.push(idx, r, Finding::warning("ends-with-user", "the last turn is the user's; it teaches nothing").fix("add the reply or remove the last turn"));
        }
        if turns.windows(2).any(|w| w[0] == w[1]) {
            self.push(idx, r, Finding::info("repeated-role", "two turns in a row by the same speaker").fix("merge them, or check the speaker column"));
        }
    }

    /// Dataset-wide findings and the final numbers.
    pub fn finish(mut self) -> (Vec<Finding>, Stats) {
        let n = self.feature_base;
        if n >= 10 {
            for (k, (name, what)) in FEATURES.iter().enumerate() {
                let (yes, yes_ex, no_ex) = &self.features[k];
                let no = n - yes;
                let (minority, examples, most_do) = if *yes * 2 >= n { (no, no_ex, true) } else { (*yes, yes_ex, false) };
                if minority == 0 || minority * 4 > n {
                    continue;
                }
                let ex: Vec<String> = examples.iter().map(|&i| self.loc_text(i)).collect();
                let (sev, msg) = if most_do {
                    (Severity::Warning, format!("most replies {what} ({} of {n}), but {minority} do not: {}", n - minority, ex.join("; ")))
                } else {
                    (Severity::Info, format!("{minority} of {n} replies {what}, the rest do not: {}", ex.join("; ")))
                };
                self.findings.push(Finding::new("inconsistent-formatting", sev, msg).fix(format!("make the replies consistent ({name}): edit the odd ones out or drop them")));
            }
        }
        let (u, a) = (self.stats.user_turns, self.stats.assistant_turns);
        if u + a >= 10 && (a * 2 < u || u * 2 < a) {
            self.findings.push(Finding::warning("role-imbalance", format!("{u} user turns for {a} assistant turns: many questions have no answer, or the roles are mixed up")).fix("check the role mapping (--columns) and the speaker names"));
        }
        let total: usize = self.langs.values().map(Vec::len).sum();
        if let Some((&top, top_ids)) = self.langs.iter().max_by_key(|(k, v)| (v.len(), std::cmp::Reverse(**k))) {
            let others: Vec<(&&str, &Vec<usize>)> = {
                let mut o: Vec<_> = self.langs.iter().filter(|(k, _)| **k != top).collect();
                o.sort_by_key(|(k, v)| (std::cmp::Reverse(v.len()), **k));
                o
            };
            let minority: usize = others.iter().map(|(_, v)| v.len()).sum();
            if minority >= 1 && minority * 2 < total {
                let parts: Vec<String> = others
                    .iter()
                    .take(4)
                    .map(|(k, v)| format!("{} in {k} ({})", v.len(), v.iter().take(3).map(|&i| self.loc_text(i)).collect::<Vec<_>>().join("; ")))
                    .collect();
                self.findings.push(
                    Finding::warning("mixed-languages", format!("most replies are in {top} ({}), but {}", top_ids.len(), parts.join(", ")))
                        .fix("keep one language per model unless it should answer in several; drop or translate the others"),
                );
                // Each odd one out also gets its own finding at its line (the first 100 a language).
                let mut each = Vec::new();
                for (lang, ids) in &others {
                    for &i in ids.iter().take(100) {
                        let l = &self.locs[i];
                        let mut f = Finding::warning("other-language", format!("this reply is in {lang}, most are in {top}"))
                            .in_file(self.files[l.file as usize].clone())
                            .at_line(l.line)
                            .for_record(i);
                        f.suggested_fix = Some("translate it or drop it, unless the model should answer in several languages".into());
                        each.push(f);
                    }
                }
                self.findings.extend(each);
            }
        }
        self.stats.languages = self.langs.iter().map(|(k, v)| (k.to_string(), v.len())).collect();
        if self.stats.with_personal_data > 0 {
            self.findings.push(Finding::warning("personal-data-summary", format!("{} record(s) contain personal data (emails, phone numbers, card numbers, IBANs)", self.stats.with_personal_data)).fix("build with --redact; your source files stay as they are"));
        }
        let mut t: Vec<u32> = self.tokens.clone();
        t.sort_unstable();
        if !t.is_empty() {
            let total: u64 = t.iter().map(|&x| x as u64).sum();
            let pct = |p: f64| t[((t.len() - 1) as f64 * p).round() as usize] as usize;
            self.stats.tokens = TokenStats { min: t[0] as usize, mean: total as f64 / t.len() as f64, p50: pct(0.5), p95: pct(0.95), max: t[t.len() - 1] as usize, total };
        }
        (self.findings, self.stats)
    }
}

/// The language of a text when it is long enough for the guess to be reliable.
fn reliable_language(text: &str) -> Option<whatlang::Lang> {
    // A few hundred characters identify a language; more only costs time.
    let end = text.char_indices().nth(300).map(|(i, _)| i).unwrap_or(text.len());
    let text = &text[..end];
    if text.chars().count() < 30 {
        return None;
    }
    // Fast path: plain-ASCII text with several English function words is English. Most business
    // data is, and the full trigram comparison costs most of the inspection time.
    if text.is_ascii() {
        let lower = text.to_ascii_lowercase();
        let hits = [" the ", " and ", " you ", " to ", " is ", " for ", " of ", " it ", " we ", " your "].iter().filter(|w| lower.contains(*w)).count();
        if hits >= 3 {
            return Some(whatlang::Lang::Eng);
        }
    }
    whatlang::detect(text).filter(|i| i.is_reliable()).map(|i| i.lang())
}

/// The part of a reply that claims to be JSON: a fenced ```json block, or the whole reply when it
/// starts with `{` or `[` and ends with the matching bracket.
fn json_candidate(t: &str) -> Option<&str> {
    if let Some(start) = t.find("```json") {
        let rest = &t[start + 7..];
        let end = rest.find("```")?;
        return Some(rest[..end].trim());
    }
    let ok = (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']') && t.len() > 2 && t[1..].trim_start().starts_with(['{', '[', '"']));
    ok.then_some(t)
}

fn reply_features(t: &str, persona: Option<&Persona>) -> [bool; 5] {
    let t = t.trim();
    let first = t.lines().next().unwrap_or("").trim().to_lowercase();
    let greeting = match persona.and_then(|p| p.greeting.as_deref()) {
        Some(g) => t.to_lowercase().starts_with(&g.to_lowercase()),
        None => ["hi", "hello", "hey", "dear", "good morning", "good afternoon", "good evening", "greetings", "bonjour", "hola", "hallo"]
            .iter()
            .any(|g| first.starts_with(g) && first[g.len()..].starts_with([' ', ',', '!', '.'])),
    };
    let tail: String = t.lines().rev().take(3).collect::<Vec<_>>().join("\n").to_lowercase();
    let signoff = match persona.and_then(|p| p.signoff.as_deref()) {
        Some(s) => s.lines().next().is_some_and(|l| tail.contains(&l.trim().to_lowercase())),
        None => ["regards", "cheers", "thanks,", "thank you,", "best,", "sincerely", "warmly", "all the best", "talk soon"].iter().any(|s| tail.contains(s)),
    };
    let markdown = t.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("- ") || l.starts_with("* ") || l.starts_with("# ") || l.starts_with("## ") || l.starts_with("1. ")
    }) || t.contains("**");
    let emoji = t.chars().any(|c| matches!(c as u32, 0x1F300..=0x1FAFF | 0x2600..=0x27BF));
    let json = json_candidate(t).is_some();
    [greeting, signoff, markdown, emoji, json]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::CharEstimate;
    use crate::record::{Message, Source};

    fn rec(file: &str, line: u64, user: &str, reply: &str) -> Record {
        Record { messages: vec![Message::user(user), Message::assistant(reply)], source: Source { file: file.into(), line: Some(line) }, group: format!("{file}#{line}"), kind: Kind::Chat }
    }

    fn codes(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|x| x.code.as_str()).collect()
    }

    #[test]
    fn per_record_checks() {
        let opts = Options { seq_len: 80, ..Options::default() };
        let mut a = Analyzer::new(&opts, &CharEstimate, None);
        let long = "word ".repeat(100);
        let rs = [
            rec("a.csv", 2, "When do you roast?", "We roast on Tuesdays and Fridays on Rosie, our old drum roaster, and every bag ships the same afternoon so it reaches you within three days of roasting. Stay toasty, Maggie"),
            rec("a.csv", 3, "When do you roast?", "We roast on Tuesdays and Fridays on Rosie, our old drum roaster, and every bag ships the same afternoon so it reaches you within three days of roasting. Stay toasty, Maggie"),
            rec("a.csv", 4, "When do you roast?", "We roast on Tuesdays and Fridays on Rosie, our old drum roaster, and every bag ships the same afternoon so it reaches you within two days of roasting. Stay toasty, Maggie"),
            rec("a.csv", 5, "ok?", ""),
            rec("a.csv", 6, "json?", r#"{"grind": "fine",}"#),
            rec("a.csv", 7, "card?", "Your card 4111 1111 1111 1111 was charged; mail me at sam@roast.example"),
            rec("a.csv", 8, "tell me", &long),
            rec("a.csv", 9, "cafe?", "The cafÃ© opens at nine."),
        ];
        let v: Vec<Verdict> = rs.iter().enumerate().map(|(i, r)| a.observe(i, r)).collect();
        assert_eq!(v[1].duplicate_of, Some(0));
        assert_eq!(v[2].near_duplicate_of, Some(0));
        assert!(v[3].empty_reply);
        assert_eq!(v[5].personal_data, 2);
        assert!(v[6].too_long);
        assert!(v[7].mojibake);
        let (f, s) = a.finish();
        let c = codes(&f);
        for code in ["exact-duplicate", "near-duplicate", "empty-reply", "invalid-json-reply", "personal-data", "too-long", "mojibake"] {
            assert!(c.contains(&code), "{code} missing from {c:?}");
        }
        let dup = f.iter().find(|x| x.code == "exact-duplicate").unwrap();
        assert_eq!((dup.file.as_deref(), dup.line, dup.record), (Some("a.csv"), Some(3), Some(1)));
        assert!(dup.message.contains("a.csv line 2"));
        let json = f.iter().find(|x| x.code == "invalid-json-reply").unwrap();
        assert!(json.suggested_fix.as_deref().unwrap().contains("trailing comma"));
        assert_eq!(s.records, 8);
        assert_eq!(s.exact_duplicates, 1);
        assert!(s.tokens.max > 80);
    }

    #[test]
    fn dataset_wide_checks() {
        let opts = Options::default();
        let mut a = Analyzer::new(&opts, &CharEstimate, None);
        let mut i = 0;
        for k in 0..18 {
            a.observe(i, &rec("b.jsonl", k + 1, "Question about shipping times please", &format!("Hi Ana, your order {k} ships on the Tuesday roast after payment clears. Best, Sam")));
            i += 1;
        }
        for k in 0..2 {
            a.observe(i, &rec("b.jsonl", 30 + k, "Pregunta", &format!("Tu pedido número {k} sale el martes después del tostado, cuando se confirme el pago. Saludos")));
            i += 1;
        }
        let (f, _) = a.finish();
        let c = codes(&f);
        assert!(c.contains(&"inconsistent-formatting"), "{c:?}");
        assert!(c.contains(&"mixed-languages"), "{c:?}");
        let ml = f.iter().find(|x| x.code == "mixed-languages").unwrap();
        assert!(ml.message.contains("Spanish") && ml.message.contains("b.jsonl line 30"), "{}", ml.message);
    }

    #[test]
    fn role_imbalance_and_order() {
        let opts = Options::default();
        let mut a = Analyzer::new(&opts, &CharEstimate, None);
        for i in 0..10 {
            let r = Record { messages: vec![Message::user("a"), Message::user("b"), Message::user("c"), Message::assistant("fine then, thanks")], source: Source { file: "c".into(), line: Some(i) }, group: "g".into(), kind: Kind::Chat };
            a.observe(i as usize, &r);
        }
        let (f, _) = a.finish();
        assert!(codes(&f).contains(&"role-imbalance"));
        assert!(codes(&f).contains(&"repeated-role"));
    }

    #[test]
    fn persona_forbidden_output() {
        let p = Persona { name: "M".into(), forbidden: vec!["valued customer".into()], ..Default::default() };
        let opts = Options::default();
        let mut a = Analyzer::new(&opts, &CharEstimate, Some(&p));
        let v = a.observe(0, &rec("d", 1, "hi", "Thank you, valued customer, for your order."));
        assert!(v.forbidden);
    }
}
