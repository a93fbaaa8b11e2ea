//! Database schemas for text-to-SQL pairs: a `.sql` DDL file or a SQLite database (opened
//! read-only and immutable: the file is never written, not even a lock).

use std::path::Path;

/// The `CREATE TABLE`/`CREATE VIEW` statements of a DDL file, with their comments (which often
/// carry the conventions a query must follow); INSERTs and other statements are left out.
pub fn schema_from_sql(text: &str) -> String {
    let mut out = Vec::new();
    for stmt in split_statements(text) {
        let body = strip_leading_comments(&stmt);
        let upper: String = body.chars().take(40).collect::<String>().to_uppercase();
        if upper.starts_with("CREATE TABLE") || upper.starts_with("CREATE VIEW") || upper.starts_with("CREATE VIRTUAL TABLE") {
            out.push(format!("{};", stmt.trim()));
        }
    }
    out.join("\n\n")
}

/// Table and view names a schema creates (lower case).
pub fn created_names(schema: &str) -> Vec<String> {
    let mut names = Vec::new();
    for stmt in split_statements(schema) {
        let body = strip_leading_comments(&stmt);
        let words: Vec<&str> = body.split_whitespace().take(8).collect();
        let upper: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
        if upper.first().map(String::as_str) != Some("CREATE") {
            continue;
        }
        let mut i = 1;
        while i < upper.len() && matches!(upper[i].as_str(), "TABLE" | "VIEW" | "VIRTUAL" | "TEMP" | "TEMPORARY" | "IF" | "NOT" | "EXISTS") {
            i += 1;
        }
        if let Some(w) = words.get(i) {
            let name = w.split('(').next().unwrap_or("").trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']').to_lowercase();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

fn strip_leading_comments(s: &str) -> &str {
    let mut s = s.trim_start();
    while s.starts_with("--") {
        s = s.split_once('\n').map(|x| x.1).unwrap_or("").trim_start();
    }
    s
}

/// Splits SQL at `;` outside quotes and comments; comments stay with the statement they precede.
fn split_statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' | '`' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    cur.push(c);
                    for c2 in chars.by_ref() {
                        cur.push(c2);
                        if c2 == '\n' {
                            break;
                        }
                    }
                }
                ';' => out.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            },
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// The schema of a SQLite database, read without writing anything.
pub fn schema_from_sqlite(path: &Path) -> Result<String, String> {
    use rusqlite::{Connection, OpenFlags};
    let abs = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    let uri = format!("file:{}?immutable=1", percent_path(&abs.to_string_lossy()));
    let conn = Connection::open_with_flags(uri, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| format!("the database could not be opened: {e}"))?;
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table','view') AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
        .map_err(|e| format!("the database could not be read: {e}"))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| format!("the database could not be read: {e}"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(format!("{};", r.map_err(|e| e.to_string())?.trim()));
    }
    if out.is_empty() {
        return Err("the database has no tables".into());
    }
    Ok(out.join("\n\n"))
}

fn percent_path(p: &str) -> String {
    let mut s = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'?' | b'#' | b'%' => s.push_str(&format!("%{b:02X}")),
            _ => s.push(b as char),
        }
    }
    // Non-ASCII bytes were pushed as Latin-1 chars above; redo them properly.
    if !p.is_ascii() {
        let mut t = String::new();
        for ch in p.chars() {
            match ch {
                '?' | '#' | '%' => t.push_str(&format!("%{:02X}", ch as u32)),
                c if c.is_ascii() => t.push(c),
                c => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        t.push_str(&format!("%{b:02X}"));
                    }
                }
            }
        }
        return t;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_create_statements_only() {
        let sql = "-- shop\nCREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO customers VALUES (1, 'a;b');\ncreate table orders (id int, note text default 'x;y');\nCREATE INDEX i ON orders(id);";
        let s = schema_from_sql(sql);
        assert!(s.starts_with("-- shop\nCREATE TABLE customers"), "comments are kept: {s}");
        assert_eq!(created_names(&s), ["customers", "orders"]);
        assert!(s.contains("create table orders (id int, note text default 'x;y');"));
        assert!(!s.contains("INSERT"));
        assert!(!s.contains("INDEX"));
    }

    #[test]
    fn reads_sqlite_without_touching_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("shop #1.sqlite");
        {
            let c = rusqlite::Connection::open(&p).unwrap();
            c.execute_batch("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL); CREATE VIEW cheap AS SELECT * FROM products WHERE price < 5;").unwrap();
        }
        let before = std::fs::read(&p).unwrap();
        let s = schema_from_sqlite(&p).unwrap();
        assert!(s.contains("CREATE TABLE products"), "{s}");
        assert!(s.contains("CREATE VIEW cheap"));
        assert_eq!(std::fs::read(&p).unwrap(), before);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no journal or lock file left");
    }
}
