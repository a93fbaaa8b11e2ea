//! Chat templates: the model's own Jinja template rendered with minijinja, or a named
//! fallback for models that have none.
//!
//! Rendering follows Hugging Face's `apply_chat_template`: `trim_blocks` and `lstrip_blocks`
//! on, Python string methods available (`.strip()`, `.startswith()` ... through
//! minijinja-contrib's pycompat), `raise_exception(msg)` and `strftime_now(fmt)` defined, and
//! the variables `messages`, `add_generation_prompt`, `bos_token`, `eos_token`.

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value as GgufValue};
use minijinja::{context, Environment, Error as JinjaError, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::error::{Result, VocabError};
use crate::hf::{read_json, token_text};
use crate::Vocab;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message { role: role.into(), content: content.into() }
    }
    pub fn system(content: impl Into<String>) -> Message {
        Message::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new("assistant", content)
    }
}

/// A rendered prompt and whether a BOS token must still be put in front of its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    /// `true` when the model wants BOS and the template did not already write it.
    pub add_bos: bool,
}

impl Prompt {
    /// The prompt's token ids: special tokens in the text are parsed, BOS added if needed.
    pub fn encode(&self, vocab: &Vocab) -> Result<Vec<u32>> {
        vocab.encode(&self.text, self.add_bos, true)
    }
}

/// Names accepted by [`ChatTemplate::fallback`].
pub const FALLBACK_NAMES: &[&str] = &["chatml", "gemma", "llama3"];

const CHATML: &str = "{% for message in messages %}\
{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Gemma's turn format; Gemma has no system role, so a system message opens the first user turn.
const GEMMA: &str = "{{ bos_token }}\
{% if messages and messages[0]['role'] == 'system' %}\
{% set prefix = messages[0]['content'] + '\\n\\n' %}{% set turns = messages[1:] %}\
{% else %}{% set prefix = '' %}{% set turns = messages %}{% endif %}\
{% for message in turns %}\
{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}\
{{ '<start_of_turn>' + role + '\\n' + (prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}";

const LLAMA3: &str = "{{ bos_token }}\
{% for message in messages %}\
{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/// A compiled chat template.
#[derive(Clone)]
pub struct ChatTemplate {
    name: String,
    fallback: bool,
    source: String,
    bos_token: String,
    eos_token: String,
    env: Environment<'static>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("name", &self.name)
            .field("fallback", &self.fallback)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish()
    }
}

fn gguf_token(c: &Content, key: &str) -> Option<String> {
    let id = match c.metadata.get(key)? {
        GgufValue::U32(x) => *x as usize,
        GgufValue::I32(x) => usize::try_from(*x).ok()?,
        GgufValue::U64(x) => *x as usize,
        _ => return None,
    };
    match c.metadata.get("tokenizer.ggml.tokens")? {
        GgufValue::Array(a) => match a.get(id)? {
            GgufValue::String(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn gguf_has_token(c: &Content, text: &str) -> bool {
    match c.metadata.get("tokenizer.ggml.tokens") {
        Some(GgufValue::Array(a)) => a.iter().any(|v| matches!(v, GgufValue::String(s) if s == text)),
        _ => false,
    }
}

/// The fallback that suits a vocabulary: its own turn markers if it has them, else ChatML.
fn fallback_for(has: impl Fn(&str) -> bool) -> &'static str {
    if has("<start_of_turn>") && has("<end_of_turn>") {
        "gemma"
    } else if has("<|start_header_id|>") && has("<|eot_id|>") {
        "llama3"
    } else {
        "chatml"
    }
}

impl ChatTemplate {
    /// Compiles `source` under `name`. `bos_token`/`eos_token` are the texts the template sees.
    pub fn new(name: &str, source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate> {
        Self::build(name, source, bos_token, eos_token, false)
    }

    fn build(name: &str, source: &str, bos_token: &str, eos_token: &str, fallback: bool) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // Plain text whatever the name (minijinja would JSON-escape a name ending in ".json").
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(name.to_string(), source.to_string())
            .map_err(|e| VocabError::Template { name: name.to_string(), message: format!("{e:#}") })?;
        Ok(ChatTemplate {
            name: name.to_string(),
            fallback,
            source: source.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            env,
        })
    }

    /// The model's own template from GGUF `tokenizer.chat_template`; when the file has none,
    /// a fallback chosen from the vocabulary's turn tokens (see [`ChatTemplate::is_fallback`]).
    pub fn from_gguf(content: &Content) -> Result<ChatTemplate> {
        let bos = gguf_token(content, "tokenizer.ggml.bos_token_id").unwrap_or_default();
        let eos = gguf_token(content, "tokenizer.ggml.eos_token_id").unwrap_or_default();
        match crate::gguf::chat_template(content)? {
            Some(src) if !src.trim().is_empty() => Self::new("tokenizer.chat_template", &src, &bos, &eos),
            _ => Self::fallback_with(fallback_for(|t| gguf_has_token(content, t)), &bos, &eos),
        }
    }

    /// The template in a Hugging Face folder's `tokenizer_config.json` (`chat_template`: a
    /// string, or a list of `{name, template}` from which "default" is taken), else a separate
    /// `chat_template.jinja` file; when there is none, a fallback chosen from the tokenizer's
    /// turn tokens.
    pub fn from_hf_dir(dir: &Path) -> Result<ChatTemplate> {
        let config_path = dir.join("tokenizer_config.json");
        let config = read_json(&config_path)?;
        let bos = token_text(config.as_ref().and_then(|c| c.get("bos_token"))).unwrap_or_default();
        let eos = token_text(config.as_ref().and_then(|c| c.get("eos_token"))).unwrap_or_default();
        match config.as_ref().and_then(|c| c.get("chat_template")) {
            Some(serde_json::Value::String(src)) => return Self::new("tokenizer_config.json", src, &bos, &eos),
            Some(serde_json::Value::Array(list)) => {
                let named = |want: &str| {
                    list.iter().find(|t| t.get("name").and_then(|n| n.as_str()) == Some(want))
                        .and_then(|t| t.get("template")).and_then(|t| t.as_str())
                };
                return match named("default") {
                    Some(src) => Self::new("tokenizer_config.json:default", src, &bos, &eos),
                    None => Err(VocabError::Template {
                        name: "tokenizer_config.json".into(),
                        message: "the list of chat templates has none called \"default\"".into(),
                    }),
                };
            }
            Some(serde_json::Value::Null) | None => {}
            Some(_) => {
                return Err(VocabError::BadJson {
                    path: config_path,
                    message: "`chat_template` is neither a string nor a list of templates".into(),
                })
            }
        }
        let jinja = dir.join("chat_template.jinja");
        match std::fs::read_to_string(&jinja) {
            Ok(src) => return Self::new("chat_template.jinja", &src, &bos, &eos),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(VocabError::Io { path: jinja, source }),
        }
        // No template: pick a fallback that matches the tokenizer's special tokens.
        let tokens = read_json(&dir.join("tokenizer.json"))?;
        let has = |t: &str| {
            tokens.as_ref().and_then(|j| j.get("added_tokens")).and_then(|a| a.as_array()).is_some_and(|a| {
                a.iter().any(|x| x.get("content").and_then(|c| c.as_str()) == Some(t))
            })
        };
        Self::fallback_with(fallback_for(has), &bos, &eos)
    }

    /// A built-in template by name (one of [`FALLBACK_NAMES`]), for models without their own.
    /// ChatML uses no BOS/EOS text; "gemma" and "llama3" write the BOS text given here.
    pub fn fallback(name: &str) -> Result<ChatTemplate> {
        let (bos, eos) = match name {
            "gemma" => ("<bos>", "<eos>"),
            "llama3" => ("<|begin_of_text|>", "<|eot_id|>"),
            _ => ("", "<|im_end|>"),
        };
        Self::fallback_with(name, bos, eos)
    }

    /// A built-in template, with the model's own BOS/EOS texts.
    pub fn fallback_with(name: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate> {
        let src = match name {
            "chatml" => CHATML,
            "gemma" => GEMMA,
            "llama3" => LLAMA3,
            _ => return Err(VocabError::UnknownFallback { name: name.to_string(), known: FALLBACK_NAMES.join(", ") }),
        };
        Self::build(name, src, bos_token, eos_token, true)
    }

    /// The template's name: where it came from, or the fallback's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a built-in fallback because the model has no template of its own.
    pub fn is_fallback(&self) -> bool {
        self.fallback
    }

    /// A sentence for the CLI/UI when a fallback is in use.
    pub fn fallback_notice(&self) -> Option<String> {
        self.fallback.then(|| {
            let pretty = match self.name.as_str() {
                "chatml" => "ChatML",
                "gemma" => "Gemma's turn format",
                "llama3" => "Llama 3's header format",
                other => other,
            };
            format!("This model has no chat template; using {pretty}.")
        })
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The BOS text the template sees as `bos_token`.
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// Renders a conversation. With `add_generation_prompt`, the text ends where the
    /// assistant's reply should begin.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self.env.get_template(&self.name).map_err(|e| self.err(e))?;
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token,
            eos_token => self.eos_token,
        })
        .map_err(|e| self.err(e))
    }

    /// Renders for `vocab` and says whether BOS must still be added: the model's
    /// [`Vocab::add_bos`], unless the rendered text already starts with the BOS text (many
    /// templates write `{{ bos_token }}` themselves; adding another would double it).
    /// Encode the result with [`Prompt::encode`] (special tokens parsed).
    pub fn render_for_model(&self, vocab: &Vocab, messages: &[Message], add_generation_prompt: bool) -> Result<Prompt> {
        let text = self.render(messages, add_generation_prompt)?;
        let bos_text = vocab.bos().and_then(|id| vocab.token_str(id)).unwrap_or(self.bos_token.as_str());
        let already = !bos_text.is_empty() && text.starts_with(bos_text);
        Ok(Prompt { add_bos: vocab.add_bos() && !already, text })
    }

    fn err(&self, e: JinjaError) -> VocabError {
        VocabError::Template { name: self.name.clone(), message: format!("{e:#}") }
    }
}

/// Hugging Face's `tojson`: Python's `json.dumps` (", " and ": " separators, `indent`,
/// no HTML escaping, non-ASCII kept unless `ensure_ascii=True`).
fn tojson(value: minijinja::Value, kwargs: minijinja::value::Kwargs) -> std::result::Result<String, JinjaError> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    if sort_keys == Some(true) {
        return Err(JinjaError::new(ErrorKind::InvalidOperation, "tojson(sort_keys=True) is not supported"));
    }
    let mut out = Vec::new();
    let result = match indent {
        Some(n) => {
            let pad = vec![b' '; n];
            let mut ser = serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(&pad));
            value.serialize(&mut ser)
        }
        None => {
            let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
            value.serialize(&mut ser)
        }
    };
    result.map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, format!("tojson failed: {e}")))?;
    let text = String::from_utf8(out).map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, e.to_string()))?;
    if ensure_ascii != Some(true) {
        return Ok(text);
    }
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    Ok(ascii)
}

/// `json.dumps`'s compact layout: `[1, 2]`, `{"a": 1}`.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

fn raise_exception(msg: String) -> std::result::Result<minijinja::Value, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, format!("the template raised an error: {msg}")))
}

/// Python's `strftime` for the current UTC time, for the directives templates use
/// (`%d %b %Y` and friends). Unknown directives are kept as written.
fn strftime_now(fmt: String) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    strftime(&fmt, secs)
}

pub(crate) fn strftime(fmt: &str, unix_secs: i64) -> String {
    const MONTHS: [&str; 12] =
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    let days = unix_secs.div_euclid(86_400);
    let secs_of_day = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let weekday = (days + 3).rem_euclid(7) as usize;
    let (hh, mm, ss) = (secs_of_day / 3600, (secs_of_day / 60) % 60, secs_of_day % 60);
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('B') => out.push_str(MONTHS[(m - 1) as usize]),
            Some('b') | Some('h') => out.push_str(&MONTHS[(m - 1) as usize][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('H') => out.push_str(&format!("{hh:02}")),
            Some('M') => out.push_str(&format!("{mm:02}")),
            Some('S') => out.push_str(&format!("{ss:02}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convo() -> Vec<Message> {
        vec![
            Message::system("Be brief."),
            Message::user("Hi!"),
            Message::assistant("Hello."),
            Message::user("  What is 2+2?  "),
        ]
    }

    #[test]
    fn chatml_fallback_renders_exactly() {
        let t = ChatTemplate::fallback("chatml").unwrap();
        assert!(t.is_fallback());
        assert_eq!(t.name(), "chatml");
        assert_eq!(t.fallback_notice().unwrap(), "This model has no chat template; using ChatML.");
        let got = t.render(&convo(), true).unwrap();
        let want = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n\
<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n  What is 2+2?  <|im_end|>\n<|im_start|>assistant\n";
        assert_eq!(got, want);
        let no_gen = t.render(&convo(), false).unwrap();
        assert!(no_gen.ends_with("<|im_end|>\n"), "{no_gen:?}");
    }

    #[test]
    fn gemma_fallback_folds_system_into_first_user_turn() {
        let t = ChatTemplate::fallback("gemma").unwrap();
        let got = t.render(&convo(), true).unwrap();
        let want = "<bos><start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n\
<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n";
        assert_eq!(got, want);
    }

    #[test]
    fn llama3_fallback_renders_exactly() {
        let t = ChatTemplate::fallback("llama3").unwrap();
        let got = t.render(&[Message::user("Hi")], true).unwrap();
        assert_eq!(
            got,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn unknown_fallback_lists_known_ones() {
        let err = ChatTemplate::fallback("vicuna").unwrap_err();
        assert!(err.to_string().contains("chatml, gemma, llama3"), "{err}");
    }

    #[test]
    fn python_methods_and_raise_exception_work() {
        let src = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations must start with the user') }}{% endif %}\
{% for m in messages %}{{ m.content.strip().upper() }}|{{ m.content.startswith(' a') }}{% endfor %}";
        let t = ChatTemplate::new("test", src, "", "").unwrap();
        assert_eq!(t.render(&[Message::user(" abc ")], false).unwrap(), "ABC|True");
        let err = t.render(&[Message::assistant("x")], false).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("Conversations must start with the user") && msg.contains("`test`"), "{msg}");
    }

    #[test]
    fn names_ending_in_json_are_not_escaped() {
        let t = ChatTemplate::new("tokenizer_config.json", "{{ messages[0].content }}", "", "").unwrap();
        assert_eq!(t.render(&[Message::user("a \"b\" <c>")], false).unwrap(), "a \"b\" <c>");
    }

    #[test]
    fn tojson_writes_like_python_json_dumps() {
        let t = ChatTemplate::new(
            "j",
            "{{ messages | tojson }}|{{ messages[0] | tojson(indent=2) }}|{{ 'é<>' | tojson }}|{{ 'é' | tojson(ensure_ascii=true) }}",
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            t.render(&[Message::user("hi")], false).unwrap(),
            "[{\"role\": \"user\", \"content\": \"hi\"}]|{\n  \"role\": \"user\",\n  \"content\": \"hi\"\n}|\"é<>\"|\"\\u00e9\""
        );
    }

    #[test]
    fn syntax_errors_name_the_template() {
        let err = ChatTemplate::new("broken", "{% for %}", "", "").unwrap_err();
        assert!(err.to_string().contains("`broken`"), "{err}");
    }

    #[test]
    fn trim_and_lstrip_blocks_like_transformers() {
        let src = "{% for m in messages %}\n    {% if true %}\n{{ m.content }}\n    {% endif %}\n{% endfor %}";
        let t = ChatTemplate::new("ws", src, "", "").unwrap();
        assert_eq!(t.render(&[Message::user("a"), Message::user("b")], false).unwrap(), "a\nb\n");
    }

    #[test]
    fn strftime_formats_known_dates() {
        // 2024-07-23 00:00:00 UTC was a Tuesday.
        let t = 1_721_692_800;
        assert_eq!(strftime("%d %b %Y", t), "23 Jul 2024");
        assert_eq!(strftime("%A %B %e, %Y %H:%M:%S %%", t + 3661), "Tuesday July 23, 2024 01:01:01 %");
        assert_eq!(strftime("%Y-%m-%d", 0), "1970-01-01");
        assert_eq!(strftime("%Y-%m-%d", 951_782_400), "2000-02-29");
    }

    #[test]
    fn strftime_now_is_callable_from_templates() {
        let t = ChatTemplate::new("date", "{{ strftime_now('%Y') | length }}", "", "").unwrap();
        assert_eq!(t.render(&[], false).unwrap(), "4");
    }
}
