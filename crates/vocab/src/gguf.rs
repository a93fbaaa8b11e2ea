//! Reading the `tokenizer.*` keys of a GGUF file's metadata.

use candle_core::quantized::gguf_file::{Content, Value};

use crate::error::{Result, VocabError};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
pub(crate) mod token_type {
    pub const NORMAL: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
    pub const BYTE: i32 = 6;
}

/// The tokenizer as the GGUF file describes it.
#[derive(Debug, Clone)]
pub(crate) struct GgufTokenizer {
    pub model: String,
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    /// One per token; NORMAL when the file has no types.
    pub types: Vec<i32>,
    pub scores: Option<Vec<f32>>,
    pub merges: Vec<String>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_space_prefix: Option<bool>,
}

fn get<'a>(c: &'a Content, key: &str) -> Option<&'a Value> {
    c.metadata.get(key)
}

fn as_string(c: &Content, key: &str) -> Result<Option<String>> {
    match get(c, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(VocabError::bad_meta(format!("`{key}` should be a string, found {:?}", v.value_type()))),
    }
}

fn as_id(c: &Content, key: &str) -> Result<Option<u32>> {
    let v = match get(c, key) {
        None => return Ok(None),
        Some(v) => v,
    };
    let n: i64 = match v {
        Value::U8(x) => *x as i64,
        Value::I8(x) => *x as i64,
        Value::U16(x) => *x as i64,
        Value::I16(x) => *x as i64,
        Value::U32(x) => *x as i64,
        Value::I32(x) => *x as i64,
        Value::U64(x) => *x as i64,
        Value::I64(x) => *x,
        other => {
            return Err(VocabError::bad_meta(format!("`{key}` should be an integer, found {:?}", other.value_type())))
        }
    };
    // A negative id means "none" in some converters.
    Ok(u32::try_from(n).ok())
}

fn as_bool(c: &Content, key: &str) -> Result<Option<bool>> {
    match get(c, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(VocabError::bad_meta(format!("`{key}` should be true or false, found {:?}", v.value_type()))),
    }
}

fn as_array<'a>(c: &'a Content, key: &str) -> Result<Option<&'a Vec<Value>>> {
    match get(c, key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v) => Err(VocabError::bad_meta(format!("`{key}` should be a list, found {:?}", v.value_type()))),
    }
}

fn strings(c: &Content, key: &str) -> Result<Option<Vec<String>>> {
    let Some(arr) = as_array(c, key)? else { return Ok(None) };
    let mut out = Vec::with_capacity(arr.len());
    for (i, v) in arr.iter().enumerate() {
        match v {
            Value::String(s) => out.push(s.clone()),
            other => {
                return Err(VocabError::bad_meta(format!(
                    "`{key}` item {i} should be a string, found {:?}",
                    other.value_type()
                )))
            }
        }
    }
    Ok(Some(out))
}

impl GgufTokenizer {
    /// Reads the tokenizer keys; fails with [`VocabError::MissingTokenizer`] when there are none.
    pub(crate) fn read(c: &Content) -> Result<GgufTokenizer> {
        let model = as_string(c, "tokenizer.ggml.model")?
            .ok_or_else(|| VocabError::MissingTokenizer { key: "tokenizer.ggml.model".into() })?;
        let mut tokens = strings(c, "tokenizer.ggml.tokens")?
            .ok_or_else(|| VocabError::MissingTokenizer { key: "tokenizer.ggml.tokens".into() })?;
        if tokens.is_empty() {
            return Err(VocabError::MissingTokenizer { key: "tokenizer.ggml.tokens (it is empty)".into() });
        }
        let n = tokens.len();
        // Like llama.cpp: an empty token text gets a visible placeholder.
        for (i, t) in tokens.iter_mut().enumerate() {
            if t.is_empty() {
                *t = format!("[EMPTY_{i}]");
            }
        }

        let types = match as_array(c, "tokenizer.ggml.token_type")? {
            None => vec![token_type::NORMAL; n],
            Some(arr) => {
                if arr.len() < n {
                    return Err(VocabError::bad_meta(format!(
                        "`tokenizer.ggml.token_type` has {} entries for {n} tokens",
                        arr.len()
                    )));
                }
                let mut out = Vec::with_capacity(n);
                for v in &arr[..n] {
                    out.push(match v {
                        Value::I32(x) => *x,
                        Value::U32(x) => *x as i32,
                        Value::I8(x) => *x as i32,
                        Value::U8(x) => *x as i32,
                        other => {
                            return Err(VocabError::bad_meta(format!(
                                "`tokenizer.ggml.token_type` holds {:?} values, not integers",
                                other.value_type()
                            )))
                        }
                    });
                }
                out
            }
        };

        let scores = match as_array(c, "tokenizer.ggml.scores")? {
            None => None,
            Some(arr) => {
                if arr.len() < n {
                    return Err(VocabError::bad_meta(format!(
                        "`tokenizer.ggml.scores` has {} entries for {n} tokens",
                        arr.len()
                    )));
                }
                let mut out = Vec::with_capacity(n);
                for v in &arr[..n] {
                    out.push(match v {
                        Value::F32(x) => *x,
                        Value::F64(x) => *x as f32,
                        Value::I32(x) => *x as f32,
                        other => {
                            return Err(VocabError::bad_meta(format!(
                                "`tokenizer.ggml.scores` holds {:?} values, not numbers",
                                other.value_type()
                            )))
                        }
                    });
                }
                Some(out)
            }
        };

        let merges = strings(c, "tokenizer.ggml.merges")?.unwrap_or_default();
        let in_range = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        Ok(GgufTokenizer {
            model,
            pre: as_string(c, "tokenizer.ggml.pre")?,
            tokens,
            types,
            scores,
            merges,
            bos: in_range(as_id(c, "tokenizer.ggml.bos_token_id")?),
            eos: in_range(as_id(c, "tokenizer.ggml.eos_token_id")?),
            eot: in_range(as_id(c, "tokenizer.ggml.eot_token_id")?),
            eom: in_range(as_id(c, "tokenizer.ggml.eom_token_id")?),
            unk: in_range(as_id(c, "tokenizer.ggml.unknown_token_id")?),
            pad: in_range(as_id(c, "tokenizer.ggml.padding_token_id")?),
            add_bos: as_bool(c, "tokenizer.ggml.add_bos_token")?,
            add_space_prefix: as_bool(c, "tokenizer.ggml.add_space_prefix")?,
        })
    }
}

/// The model's own chat template (`tokenizer.chat_template`), if any.
pub(crate) fn chat_template(c: &Content) -> Result<Option<String>> {
    as_string(c, "tokenizer.chat_template")
}

/// Reads only the metadata of a GGUF file.
pub(crate) fn read_content(path: &std::path::Path) -> Result<Content> {
    let f = std::fs::File::open(path).map_err(|source| VocabError::Io { path: path.to_path_buf(), source })?;
    let mut f = std::io::BufReader::new(f);
    Content::read(&mut f).map_err(|e| VocabError::NotGguf { path: path.to_path_buf(), message: e.to_string() })
}
