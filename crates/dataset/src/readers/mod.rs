//! Readers: each turns one kind of file into records and findings, streaming where the format allows.

pub mod csv;
pub mod document;
pub mod email;
pub mod json;
pub mod schema;
pub mod yaml;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::finding::Finding;
use crate::options::{Options, TokenCounter};
use crate::record::Record;

/// What a reader works with: its file's name, the settings, and where records and findings go.
pub struct Ctx<'a> {
    /// The file as shown in reports.
    pub file: String,
    pub opts: &'a Options,
    pub counter: &'a dyn TokenCounter,
    /// Schema (DDL text) for text-to-SQL pairs in this file's folder, if one was found.
    pub schema: Option<String>,
    pub findings: Vec<Finding>,
    pub emitted: usize,
    emit: &'a mut dyn FnMut(Record),
}

impl<'a> Ctx<'a> {
    pub fn new(
        file: String,
        opts: &'a Options,
        counter: &'a dyn TokenCounter,
        schema: Option<String>,
        emit: &'a mut dyn FnMut(Record),
    ) -> Self {
        Ctx { file, opts, counter, schema, findings: Vec::new(), emitted: 0, emit }
    }

    pub fn record(&mut self, r: Record) {
        self.emitted += 1;
        (self.emit)(r);
    }

    /// Adds a finding about this file.
    pub fn finding(&mut self, f: Finding) {
        let f = if f.file.is_none() { f.in_file(self.file.clone()) } else { f };
        self.findings.push(f);
    }

    pub fn source(&self, line: Option<u64>) -> crate::record::Source {
        crate::record::Source { file: self.file.clone(), line }
    }
}

/// Errors that stop a reader before the end of its file (reported as a finding; records so far are kept).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("could not read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file is {size} bytes, more than the {limit} bytes this format is read whole for: {hint}")]
    TooLarge { size: u64, limit: u64, hint: &'static str },
}

/// Reads a whole file, refusing ones above `limit` bytes.
pub fn read_whole(path: &Path, limit: u64, hint: &'static str) -> Result<Vec<u8>, ReadError> {
    let f = File::open(path)?;
    let size = f.metadata()?.len();
    if size > limit {
        return Err(ReadError::TooLarge { size, limit, hint });
    }
    let mut buf = Vec::with_capacity(size as usize);
    f.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(ReadError::TooLarge { size: buf.len() as u64, limit, hint });
    }
    Ok(buf)
}

/// A line of a streamed file.
pub enum Line {
    /// Line number (1-based) and its bytes, without the line ending.
    Text(u64, Vec<u8>),
    /// The line was longer than the limit and was skipped; its number and length.
    TooLong(u64, u64),
}

/// Reads a file line by line in bounded memory: no line above `max` bytes is held.
pub struct Lines<R: BufRead> {
    inner: R,
    max: usize,
    line: u64,
    offset: u64,
}

impl Lines<BufReader<File>> {
    pub fn open(path: &Path, max: usize) -> std::io::Result<Self> {
        Ok(Lines::new(BufReader::with_capacity(64 << 10, File::open(path)?), max))
    }
}

impl<R: BufRead> Lines<R> {
    pub fn new(inner: R, max: usize) -> Self {
        Lines { inner, max, line: 0, offset: 0 }
    }

    /// Bytes consumed so far (the offset of the next line).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut buf = Vec::new();
        let mut total: u64 = 0;
        let mut too_long = false;
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                if total == 0 {
                    return Ok(None);
                }
                break;
            }
            let (take, done) = match memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            total += take as u64;
            if !too_long {
                if buf.len() + take > self.max + 1 {
                    too_long = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.inner.consume(take);
            self.offset += take as u64;
            if done {
                break;
            }
        }
        self.line += 1;
        if too_long {
            return Ok(Some(Line::TooLong(self.line, total)));
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some(Line::Text(self.line, buf)))
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Splits text into paragraphs (runs of non-blank lines), each with its first line number.
pub fn paragraphs(text: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0u64;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push((start, std::mem::take(&mut cur)));
            }
            continue;
        }
        if cur.is_empty() {
            start = i as u64 + 1;
        } else {
            cur.push('\n');
        }
        cur.push_str(line.trim_end());
    }
    if !cur.is_empty() {
        out.push((start, cur));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_numbered() {
        let data = b"short\r\nthis line is far too long\nok\nlast-no-newline";
        let mut l = Lines::new(&data[..], 16);
        let mut got = Vec::new();
        while let Some(x) = l.next_line().unwrap() {
            got.push(match x {
                Line::Text(n, b) => format!("{n}:{}", String::from_utf8(b).unwrap()),
                Line::TooLong(n, len) => format!("{n}:long({len})"),
            });
        }
        assert_eq!(got, ["1:short", "2:long(26)", "3:ok", "4:last-no-newline"]);
    }

    #[test]
    fn paragraphs_keep_line_numbers() {
        let p = paragraphs("a\nb\n\n\nc\n");
        assert_eq!(p, vec![(1, "a\nb".to_string()), (5, "c".to_string())]);
    }
}
