//! Persona files (TOML): name, description, voice and style rules, do and don't lists and
//! forbidden outputs. The builder keeps the persona as the system turn or bakes it in.

use std::path::Path;

use serde::Serialize;
use toml::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Persona {
    pub name: String,
    pub description: String,
    pub voice: Option<String>,
    pub greeting: Option<String>,
    pub signoff: Option<String>,
    pub style: Vec<String>,
    pub dos: Vec<String>,
    pub donts: Vec<String>,
    /// Phrases the assistant must never output; replies containing one are flagged.
    pub forbidden: Vec<String>,
    /// Phrases typical of the voice (used to measure how on-voice the replies are).
    pub markers: Vec<String>,
    /// The owner's email addresses (their replies are the assistant side).
    pub addresses: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PersonaError {
    #[error("could not read the persona file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the persona file {path} is not valid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("the persona file {path} needs a `{field}`")]
    Missing { path: String, field: &'static str },
    #[error("in the persona file {path}, `{field}` should be {expected}")]
    Type { path: String, field: String, expected: &'static str },
}

/// How the persona reaches the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersonaMode {
    /// Every record starts with the persona as its system turn (use the same system prompt in chat).
    #[default]
    System,
    /// No system prompt: the records alone teach the voice, so it lives in the weights.
    Bake,
}

impl Persona {
    pub fn load(path: &Path) -> Result<Persona, PersonaError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PersonaError::Io { path: p.clone(), source })?;
        Self::parse(&text, &p)
    }

    /// Parses persona TOML. Lists may sit at the top level or under a `[rules]` table.
    pub fn parse(text: &str, path: &str) -> Result<Persona, PersonaError> {
        let v: toml::Table = text.parse().map_err(|e: toml::de::Error| PersonaError::Toml { path: path.into(), message: e.to_string() })?;
        let rules = v.get("rules").and_then(Value::as_table);
        fn get<'t>(v: &'t toml::Table, rules: Option<&'t toml::Table>, keys: &[&'static str]) -> Option<(&'static str, &'t Value)> {
            keys.iter().find_map(|&k| v.get(k).map(|x| (k, x)).or_else(|| rules.and_then(|r| r.get(k)).map(|x| (k, x))))
        }
        let get = |keys: &[&'static str]| get(&v, rules, keys);
        let string = |keys: &[&'static str]| -> Result<Option<String>, PersonaError> {
            match get(keys) {
                None => Ok(None),
                Some((_, Value::String(s))) => Ok(Some(s.trim().to_string())),
                Some((_, Value::Array(a))) => Ok(Some(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))),
                Some((k, _)) => Err(PersonaError::Type { path: path.into(), field: k.into(), expected: "text" }),
            }
        };
        let list = |keys: &[&'static str]| -> Result<Vec<String>, PersonaError> {
            match get(keys) {
                None => Ok(Vec::new()),
                Some((_, Value::String(s))) => Ok(vec![s.trim().to_string()]),
                Some((k, Value::Array(a))) => a
                    .iter()
                    .map(|x| x.as_str().map(|s| s.trim().to_string()).ok_or_else(|| PersonaError::Type { path: path.into(), field: k.into(), expected: "a list of texts" }))
                    .collect(),
                Some((k, _)) => Err(PersonaError::Type { path: path.into(), field: k.into(), expected: "a list of texts" }),
            }
        };
        let name = string(&["name"])?.filter(|s| !s.is_empty()).ok_or(PersonaError::Missing { path: path.into(), field: "name" })?;
        let description = string(&["description", "about"])?.unwrap_or_default();
        Ok(Persona {
            name,
            description,
            voice: string(&["voice", "tone"])?,
            greeting: string(&["greeting"])?,
            signoff: string(&["signoff", "sign_off", "signature"])?,
            style: list(&["style", "style_rules", "rules_of_style"])?,
            dos: list(&["do", "dos"])?,
            donts: list(&["dont", "donts", "don't", "do_not"])?,
            forbidden: list(&["forbidden", "forbidden_outputs", "never_say"])?,
            markers: list(&["markers", "phrases"])?,
            addresses: list(&["email", "emails", "addresses"])?,
        })
    }

    /// The persona as a system prompt.
    pub fn system_prompt(&self) -> String {
        let mut s = format!("You are {}.", self.name);
        if !self.description.is_empty() {
            s.push_str(&format!("\n\n{}", self.description.trim()));
        }
        if let Some(v) = &self.voice {
            s.push_str(&format!("\n\nVoice: {}", v.trim()));
        }
        let mut rules: Vec<String> = self.style.clone();
        if let Some(g) = &self.greeting {
            rules.push(format!("Greeting: {g}"));
        }
        if let Some(g) = &self.signoff {
            rules.push(format!("Sign-off: {}", g.replace('\n', " / ")));
        }
        for (title, items) in [("Style", &rules), ("Do", &self.dos), ("Don't", &self.donts)] {
            if !items.is_empty() {
                s.push_str(&format!("\n\n{title}:"));
                for i in items {
                    s.push_str(&format!("\n- {i}"));
                }
            }
        }
        if !self.forbidden.is_empty() {
            s.push_str("\n\nNever write: ");
            s.push_str(&self.forbidden.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", "));
        }
        s
    }

    /// Forbidden phrases found in a reply (case-insensitive).
    pub fn forbidden_in<'a>(&'a self, text: &str) -> Vec<&'a str> {
        let lower = text.to_lowercase();
        self.forbidden.iter().filter(|f| !f.trim().is_empty() && lower.contains(&f.to_lowercase())).map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_top_level_and_rules_table() {
        let p = Persona::parse("name = \"Maggie\"\ndescription = \"Roaster\"\nsignoff = \"Stay toasty,\\nMaggie\"\n[rules]\ndo = [\"Be kind\"]\nforbidden = [\"Best regards\"]\n", "p.toml").unwrap();
        assert_eq!(p.name, "Maggie");
        assert_eq!(p.dos, ["Be kind"]);
        assert_eq!(p.forbidden_in("Thanks! best REGARDS, M"), ["Best regards"]);
        let sp = p.system_prompt();
        assert!(sp.starts_with("You are Maggie."));
        assert!(sp.contains("- Be kind"));
        assert!(sp.contains("Never write: \"Best regards\""));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(matches!(Persona::parse("description = 'x'", "p"), Err(PersonaError::Missing { field: "name", .. })));
        assert!(matches!(Persona::parse("name = 'x'\ndo = 3", "p"), Err(PersonaError::Type { .. })));
        assert!(Persona::parse("name = ", "p").unwrap_err().to_string().contains("not valid TOML"));
    }
}
