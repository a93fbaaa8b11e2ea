//! The guard: every generated statement is parsed (sqlparser, in the chosen dialect) and
//! anything but one read-only query is refused before it reaches a database. It fails
//! closed: what cannot be parsed is not run either.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use sqlparser::ast::{Expr, Query, Select, Statement, Visit, Visitor};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

/// The SQL dialect statements are parsed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    #[default]
    Sqlite,
    Postgresql,
    Mysql,
}

impl Dialect {
    /// Reads `sqlite`, `postgresql`/`postgres`, `mysql` (any case).
    pub fn parse_name(s: &str) -> Option<Dialect> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Some(Dialect::Sqlite),
            "postgresql" | "postgres" | "pg" => Some(Dialect::Postgresql),
            "mysql" | "mariadb" => Some(Dialect::Mysql),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgresql => "PostgreSQL",
            Dialect::Mysql => "MySQL",
        }
    }

    pub(crate) fn parse(self, sql: &str) -> Result<Vec<Statement>, String> {
        let r = match self {
            Dialect::Sqlite => Parser::parse_sql(&SQLiteDialect {}, sql),
            Dialect::Postgresql => Parser::parse_sql(&PostgreSqlDialect {}, sql),
            Dialect::Mysql => Parser::parse_sql(&MySqlDialect {}, sql),
        };
        r.map_err(|e| e.to_string())
    }
}

impl std::str::FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Dialect::parse_name(s).ok_or_else(|| format!("unknown SQL dialect `{s}`: use sqlite, postgresql or mysql"))
    }
}

/// The guard's decision on a piece of SQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// One read-only query: it may run.
    Allowed,
    /// It would change something, or is not a query: it does not run.
    Refused { reason: String },
    /// It is not valid SQL in the dialect: it does not run.
    NotSql { message: String },
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allowed)
    }
}

/// Pragmas that only read (SQLite), allowed without `=`.
const READ_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "collation_list",
    "function_list",
];

/// Functions that write, reach outside the database, or stall the server.
const UNSAFE_FUNCTIONS: &[&str] = &[
    "load_extension",
    "writefile",
    "readfile",
    "edit",
    "nextval",
    "setval",
    "lo_import",
    "lo_export",
    "lo_unlink",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_sleep",
    "dblink",
    "dblink_exec",
    "set_config",
    "sleep",
    "benchmark",
    "load_file",
];

/// Statement kinds that change a database (first words of the statement).
const WRITES: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "TRUNCATE", "CREATE", "REPLACE", "MERGE", "ATTACH", "DETACH", "VACUUM", "REINDEX",
    "ANALYZE", "GRANT", "REVOKE", "COPY", "LOAD", "RENAME", "COMMENT", "UPSERT", "CALL", "EXECUTE", "LOCK",
];

/// Decides whether `sql` may run: only a single read-only query (`SELECT`, `WITH … SELECT`,
/// `VALUES`, a reading `PRAGMA`) is allowed.
pub fn guard(sql: &str, dialect: Dialect) -> Verdict {
    if sql.trim().is_empty() {
        return Verdict::NotSql { message: "there is no SQL".into() };
    }
    let statements = match dialect.parse(sql) {
        Ok(s) => s,
        Err(e) => return Verdict::NotSql { message: format!("not valid {} SQL: {e}", dialect.name()) },
    };
    let count = statements.len();
    match count {
        0 => return Verdict::NotSql { message: "there is no SQL statement, only comments".into() },
        1 => {}
        _ => {
            for (i, s) in statements.iter().enumerate() {
                if let Some(why) = check(s) {
                    return Verdict::Refused { reason: format!("{count} statements, and statement {} of them is refused: {why}", i + 1) };
                }
            }
            return Verdict::Refused { reason: format!("{count} statements; only one query is run at a time") };
        }
    }
    match check(&statements[0]) {
        None => Verdict::Allowed,
        Some(reason) => Verdict::Refused { reason },
    }
}

/// Why a statement is refused, or None when it only reads.
fn check(stmt: &Statement) -> Option<String> {
    match stmt {
        Statement::Query(_) => match stmt.visit(&mut ReadOnly) {
            ControlFlow::Break(why) => Some(why),
            ControlFlow::Continue(()) => None,
        },
        Statement::Pragma { name, is_eq, .. } => {
            let pragma = name.0.last().map(|p| p.to_string().trim_matches(|c| c == '"' || c == '`').to_ascii_lowercase()).unwrap_or_default();
            if *is_eq {
                Some(format!("PRAGMA {pragma} = … changes a setting of the database or the connection"))
            } else if READ_PRAGMAS.contains(&pragma.as_str()) {
                None
            } else {
                Some(format!("PRAGMA {pragma} is not one of the read-only pragmas ({})", READ_PRAGMAS.join(", ")))
            }
        }
        other => Some(describe(other)),
    }
}

/// "DROP TABLE changes the database" or "SET is not a query", from the statement's own words.
fn describe(stmt: &Statement) -> String {
    let text = stmt.to_string();
    let words: Vec<String> = text.split_whitespace().take(2).map(|w| w.to_ascii_uppercase()).collect();
    let first = words.first().cloned().unwrap_or_default();
    let kind = match first.as_str() {
        "CREATE" | "DROP" | "ALTER" | "TRUNCATE" | "ATTACH" | "DETACH" => words.join(" "),
        _ => first.clone(),
    };
    if WRITES.contains(&first.as_str()) {
        format!("{kind} changes the database; only read-only queries (SELECT, WITH … SELECT) are run")
    } else {
        format!("{kind} is not a query; only read-only queries (SELECT, WITH … SELECT) are run")
    }
}

/// Walks a query: any nested statement (a data-modifying CTE, `WITH … DELETE`), `SELECT …
/// INTO`, row locks and unsafe functions break the walk with the reason.
struct ReadOnly;

impl Visitor for ReadOnly {
    type Break = String;

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<String> {
        match s {
            Statement::Query(_) => ControlFlow::Continue(()),
            other => ControlFlow::Break(describe(other)),
        }
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<String> {
        if !q.locks.is_empty() {
            return ControlFlow::Break("FOR UPDATE / FOR SHARE locks rows for writing; only plain reads are run".into());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<String> {
        if s.into.is_some() {
            return ControlFlow::Break("SELECT … INTO creates a table; only read-only queries are run".into());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<String> {
        if let Expr::Function(f) = e {
            let name = f.name.0.last().map(|p| p.to_string().trim_matches(|c| c == '"' || c == '`').to_ascii_lowercase()).unwrap_or_default();
            if UNSAFE_FUNCTIONS.contains(&name.as_str()) {
                return ControlFlow::Break(format!("{name}() writes, reads files or stalls the server; it is not run"));
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str, d: Dialect) -> String {
        match guard(sql, d) {
            Verdict::Refused { reason } => reason,
            v => panic!("{sql:?} in {d:?} should be refused, got {v:?}"),
        }
    }

    fn not_run(sql: &str, d: Dialect) {
        assert!(!guard(sql, d).is_allowed(), "{sql:?} in {d:?} must not run");
    }

    #[test]
    fn read_only_queries_pass_in_every_dialect() {
        for d in [Dialect::Sqlite, Dialect::Postgresql, Dialect::Mysql] {
            for sql in [
                "SELECT 1",
                "select count(*) from ORD_HDR where is_del = 0;",
                "WITH t AS (SELECT usr_ref_id FROM X_77_User_Ref WHERE is_del = 0) SELECT COUNT(*) FROM t",
                "SELECT a FROM x UNION SELECT b FROM y ORDER BY 1 LIMIT 3",
                "-- the answer\nSELECT prd_nm /* name */ FROM PRD_MSTR",
                "SELECT 'DROP TABLE x; DELETE FROM y' AS s",
                "SELECT * FROM (SELECT deleted_at FROM updates) AS u",
            ] {
                assert_eq!(guard(sql, d), Verdict::Allowed, "{sql} in {d:?}");
            }
        }
    }

    #[test]
    fn the_shops_destructive_requests_are_refused() {
        // What a model might write for demo/sql-shop/destructive-prompts.txt, one each.
        let cases = [
            ("DELETE FROM ORD_HDR WHERE ts_created < '2024-01-01'", "DELETE"),
            ("DROP TABLE X_77_User_Ref;", "DROP TABLE"),
            ("UPDATE PRD_MSTR SET list_px_cents = 0", "UPDATE"),
            ("DELETE FROM X_77_User_Ref WHERE usr_ref_id NOT IN (SELECT usr_ref_id FROM ORD_HDR WHERE ts_created >= '2025-04-01')", "DELETE"),
            ("DELETE FROM ORD_LN WHERE ord_id IN (SELECT ord_id FROM ORD_HDR WHERE ord_stat_cd = 'CXL')", "DELETE"),
            ("UPDATE PRD_MSTR SET is_del = 1", "UPDATE"),
            ("DELETE FROM cal_fy_q", "DELETE"),
            ("UPDATE X_77_User_Ref SET eml_addr = 'noah@example.org' WHERE usr_nm_first = 'Noah' AND usr_nm_last = 'Patel'", "UPDATE"),
            ("UPDATE ORD_HDR SET amt_net_cents = amt_net_cents / 2 WHERE chnl_cd = 'WHL'", "UPDATE"),
            ("INSERT INTO ORD_HDR (usr_ref_id, ts_created, fy_q, ord_stat_cd, chnl_cd, amt_net_cents, amt_tax_cents, amt_ship_cents) VALUES (1, '2026-04-01 00:00:00', 'FY2025-Q4', 'PEND', 'WEB', 100000000, 0, 0)", "INSERT"),
        ];
        for (sql, kind) in cases {
            let why = refused(sql, Dialect::Sqlite);
            assert!(why.starts_with(kind), "{sql}: {why}");
            assert!(why.contains("changes the database"), "{why}");
        }
    }

    #[test]
    fn every_kind_of_write_is_refused() {
        for sql in [
            "ALTER TABLE PRD_MSTR ADD COLUMN x INTEGER",
            "CREATE TABLE t (a INT)",
            "CREATE INDEX i ON t (a)",
            "CREATE VIEW v AS SELECT 1",
            "REPLACE INTO t (a) VALUES (1)",
            "INSERT OR REPLACE INTO t (a) VALUES (1)",
            "ATTACH DATABASE 'other.db' AS o",
            "PRAGMA writable_schema = 1",
            "VACUUM",
        ] {
            refused(sql, Dialect::Sqlite);
        }
        // sqlparser cannot read this one: not run either.
        not_run("PRAGMA journal_mode = DELETE", Dialect::Sqlite);
        not_run("PRAGMA foreign_keys = OFF", Dialect::Sqlite);
        refused("TRUNCATE TABLE cal_fy_q", Dialect::Postgresql);
        refused("TRUNCATE TABLE cal_fy_q", Dialect::Mysql);
        refused("SELECT * INTO backup FROM t", Dialect::Postgresql);
        refused("SELECT * FROM t FOR UPDATE", Dialect::Postgresql);
        refused("SELECT nextval('s')", Dialect::Postgresql);
        refused("SELECT load_extension('evil.so')", Dialect::Sqlite);
        refused("SELECT SLEEP(100)", Dialect::Mysql);
    }

    #[test]
    fn tricky_cases() {
        // A second statement smuggling a write, in any case and with comments around it.
        let why = refused("SELECT 1; DROP TABLE x", Dialect::Sqlite);
        assert!(why.contains("statement 2") && why.contains("DROP TABLE"), "{why}");
        refused("select 1;\n/* harmless */ dRoP tAbLe x; -- bye", Dialect::Sqlite);
        refused("/* comment */ DeLeTe FROM t", Dialect::Sqlite);
        // Two reads are refused too: one query at a time.
        assert!(refused("SELECT 1; SELECT 2", Dialect::Sqlite).contains("only one query is run at a time"));
        // A CTE in front of a write.
        for d in [Dialect::Sqlite, Dialect::Postgresql, Dialect::Mysql] {
            not_run("WITH old AS (SELECT ord_id FROM ORD_HDR) DELETE FROM ORD_LN WHERE ord_id IN (SELECT ord_id FROM old)", d);
            not_run("WITH x AS (SELECT 1) UPDATE t SET a = 1", d);
            not_run("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", d);
        }
        // A data-modifying CTE (PostgreSQL).
        let why = refused("WITH gone AS (DELETE FROM t RETURNING *) SELECT count(*) FROM gone", Dialect::Postgresql);
        assert!(why.starts_with("DELETE"), "{why}");
        // A trailing comment is not a statement; a comment alone is not SQL.
        assert_eq!(guard("SELECT 1; -- DROP TABLE x", Dialect::Sqlite), Verdict::Allowed);
        assert!(matches!(guard("-- DROP TABLE x", Dialect::Sqlite), Verdict::NotSql { .. }));
        assert!(matches!(guard("   ", Dialect::Sqlite), Verdict::NotSql { .. }));
        // Prose is not SQL, and is not run.
        assert!(matches!(guard("Sure, here is how to delete them all.", Dialect::Sqlite), Verdict::NotSql { .. }));
        // Read-only pragmas pass, others do not.
        // (sqlparser reads pragma arguments only as literals.)
        assert_eq!(guard("PRAGMA table_info('ORD_HDR')", Dialect::Sqlite), Verdict::Allowed);
        refused("PRAGMA optimize", Dialect::Sqlite);
        // Transactions and settings are not queries.
        assert!(refused("BEGIN", Dialect::Sqlite).contains("not a query"));
    }

    #[test]
    fn deep_nesting_does_not_crash() {
        // sqlparser's recursion limit answers with an error, which the guard refuses to run.
        let sql = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(matches!(guard(&sql, Dialect::Sqlite), Verdict::NotSql { .. }));
    }

    #[test]
    fn dialect_names() {
        assert_eq!("Postgres".parse::<Dialect>(), Ok(Dialect::Postgresql));
        assert!("oracle".parse::<Dialect>().unwrap_err().contains("sqlite"));
    }
}
