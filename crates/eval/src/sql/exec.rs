//! Running queries on a SQLite database opened read-only (`SQLITE_OPEN_READ_ONLY`, plus
//! `PRAGMA query_only`), with a time limit and a row limit, and comparing result sets as
//! multisets of rows (in order when the reference query has an ORDER BY).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::error::{EvalError, Result};

/// One value of a result row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    /// A comparison key: integers and integral reals compare equal (12 = 12.0), other reals
    /// to nine significant digits (so 0.1 + 0.2 = 0.3).
    fn key(&self) -> String {
        match self {
            Cell::Null => "null".into(),
            Cell::Int(i) => format!("n:{i}"),
            Cell::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("n:{}", *f as i64),
            Cell::Real(f) => format!("r:{f:.8e}"),
            Cell::Text(s) => format!("t:{s}"),
            Cell::Blob(b) => format!("b:{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        }
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Null => write!(f, "NULL"),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Real(x) => write!(f, "{x}"),
            Cell::Text(s) => write!(f, "{s:?}"),
            Cell::Blob(b) => write!(f, "<{} bytes>", b.len()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// Limits on one query.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limits {
    pub timeout: Duration,
    pub max_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { timeout: Duration::from_secs(10), max_rows: 10_000 }
    }
}

/// A SQLite database opened read-only.
pub struct Database {
    conn: Connection,
    path: PathBuf,
}

impl Database {
    pub fn open_read_only(path: &Path) -> Result<Database> {
        let err = |why: String| EvalError::Database { path: path.to_path_buf(), why };
        if !path.is_file() {
            return Err(err("there is no such file".into()));
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(|e| err(e.to_string()))?;
        conn.pragma_update(None, "query_only", true).map_err(|e| err(e.to_string()))?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .map_err(|e| err(format!("it is not a SQLite database ({e})")))?;
        Ok(Database { conn, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `CREATE TABLE`/`CREATE VIEW` statements of the database.
    pub fn schema(&self) -> Result<String> {
        dataset::readers::schema::schema_from_sqlite(&self.path).map_err(|why| EvalError::Database { path: self.path.clone(), why })
    }

    /// Runs one statement. The caller has passed it through the guard; the connection is
    /// read-only anyway. Errors are SQLite's message, as text for the report.
    pub fn query(&self, sql: &str, limits: Limits) -> std::result::Result<ResultSet, String> {
        // A watchdog interrupts the query when the time is up.
        let handle = self.conn.get_interrupt_handle();
        let (done, wait) = mpsc::channel::<()>();
        let timeout = limits.timeout;
        let watchdog = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(timeout) {
                handle.interrupt();
                true
            } else {
                false
            }
        });
        let result = self.run(sql, limits.max_rows);
        let _ = done.send(());
        let timed_out = watchdog.join().unwrap_or(false);
        match result {
            Err(_) if timed_out => Err(format!("the query ran longer than {} s and was stopped", timeout.as_secs_f64())),
            r => r,
        }
    }

    fn run(&self, sql: &str, max_rows: usize) -> std::result::Result<ResultSet, String> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| e.to_string())?;
        if !stmt.readonly() {
            return Err("SQLite reports that this statement writes; it was not run".into());
        }
        let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
        let n = columns.len();
        let mut rows_out = Vec::new();
        let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            if rows_out.len() == max_rows {
                return Err(format!("the query returned more than {max_rows} rows"));
            }
            let mut cells = Vec::with_capacity(n);
            for i in 0..n {
                cells.push(match row.get_ref(i).map_err(|e| e.to_string())? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(x) => Cell::Int(x),
                    ValueRef::Real(x) => Cell::Real(x),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                });
            }
            rows_out.push(cells);
        }
        Ok(ResultSet { columns, rows: rows_out })
    }
}

/// Compares a result with the reference: None when they match, else what differs. Column
/// names are ignored; column order counts; row order counts only when `ordered`.
pub fn compare(gold: &ResultSet, got: &ResultSet, ordered: bool) -> Option<String> {
    if gold.columns.len() != got.columns.len() {
        return Some(format!("expected {} column(s), the query returned {}", gold.columns.len(), got.columns.len()));
    }
    if gold.rows.len() != got.rows.len() {
        return Some(format!("expected {} row(s), the query returned {}", gold.rows.len(), got.rows.len()));
    }
    let keys = |rs: &ResultSet| -> Vec<(Vec<String>, usize)> {
        let mut k: Vec<(Vec<String>, usize)> = rs.rows.iter().enumerate().map(|(i, r)| (r.iter().map(Cell::key).collect(), i)).collect();
        if !ordered {
            k.sort();
        }
        k
    };
    let (g, o) = (keys(gold), keys(got));
    let show = |rs: &ResultSet, i: usize| rs.rows[i].iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
    for ((gk, gi), (ok, oi)) in g.iter().zip(&o) {
        if gk != ok {
            let how = if ordered { "in order" } else { "as a set" };
            return Some(format!("same number of rows ({}), different values ({how}): expected ({}), got ({})", gold.rows.len(), show(gold, *gi), show(got, *oi)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(rows: Vec<Vec<Cell>>) -> ResultSet {
        let n = rows.first().map(Vec::len).unwrap_or(1);
        ResultSet { columns: (0..n).map(|i| format!("c{i}")).collect(), rows }
    }

    #[test]
    fn multisets_ignore_order_unless_asked() {
        let a = rs(vec![vec![Cell::Int(1)], vec![Cell::Int(2)], vec![Cell::Int(2)]]);
        let b = rs(vec![vec![Cell::Int(2)], vec![Cell::Int(1)], vec![Cell::Int(2)]]);
        let c = rs(vec![vec![Cell::Int(1)], vec![Cell::Int(1)], vec![Cell::Int(2)]]);
        assert_eq!(compare(&a, &b, false), None);
        assert!(compare(&a, &b, true).unwrap().contains("in order"));
        assert!(compare(&a, &c, false).unwrap().contains("different values"));
        assert!(compare(&a, &rs(vec![vec![Cell::Int(1)]]), false).unwrap().contains("expected 3 row"));
        assert!(compare(&a, &rs(vec![vec![Cell::Int(1), Cell::Null]; 3]), false).unwrap().contains("column"));
    }

    #[test]
    fn numbers_compare_by_value() {
        let a = rs(vec![vec![Cell::Int(12), Cell::Real(0.3)]]);
        let b = rs(vec![vec![Cell::Real(12.0), Cell::Real(0.1 + 0.2)]]);
        assert_eq!(compare(&a, &b, true), None);
        let c = rs(vec![vec![Cell::Int(12), Cell::Real(0.31)]]);
        assert!(compare(&a, &c, true).is_some());
        assert!(compare(&rs(vec![vec![Cell::Text("12".into())]]), &rs(vec![vec![Cell::Int(12)]]), true).is_some());
    }

    fn scratch_db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, 'y');").unwrap();
        (dir, path)
    }

    #[test]
    fn read_only_even_without_the_guard() {
        let (_dir, path) = scratch_db();
        let db = Database::open_read_only(&path).unwrap();
        let l = Limits::default();
        assert_eq!(db.query("SELECT b FROM t ORDER BY a", l).unwrap().rows, vec![vec![Cell::Text("x".into())], vec![Cell::Text("y".into())]]);
        let writes = ["DELETE FROM t", "DROP TABLE t", "INSERT INTO t VALUES (3, 'z')", "CREATE TABLE u (a)"];
        for write in writes {
            assert!(db.query(write, l).is_err(), "{write} ran");
        }
        // Turning query_only off (the guard refuses it) still leaves a read-only connection.
        db.query("PRAGMA query_only = 0", l).unwrap();
        for write in writes {
            assert!(db.query(write, l).is_err(), "{write} ran");
        }
        assert_eq!(db.query("SELECT count(*) FROM t", l).unwrap().rows, vec![vec![Cell::Int(2)]]);
        assert!(db.query("SELECT nope FROM t", l).unwrap_err().contains("nope"));
    }

    #[test]
    fn limits_stop_runaway_queries() {
        let (_dir, path) = scratch_db();
        let db = Database::open_read_only(&path).unwrap();
        let many = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n";
        let e = db.query(many, Limits { timeout: Duration::from_secs(10), max_rows: 100 }).unwrap_err();
        assert!(e.contains("more than 100 rows"), "{e}");
        let slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";
        let e = db.query(slow, Limits { timeout: Duration::from_millis(200), max_rows: 100 }).unwrap_err();
        assert!(e.contains("longer than"), "{e}");
    }

    #[test]
    fn missing_and_non_database_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = Database::open_read_only(&dir.path().join("none.sqlite")).err().unwrap();
        assert!(e.to_string().contains("no such file"), "{e}");
        let text = dir.path().join("notes.sqlite");
        std::fs::write(&text, "this is not a database, just some text that is long enough to look like a header").unwrap();
        let e = Database::open_read_only(&text).err().unwrap();
        assert!(e.to_string().contains("not a SQLite database"), "{e}");
    }
}
