//! Finding the SQL in a model's reply: a fenced code block if there is one, else the text from
//! the first line that starts like a statement (or from an upper-case `SELECT`/`WITH` after
//! some leading prose) to the first blank line.

/// Words a statement can start with (read-only or not: the guard decides what runs).
const STARTS: &[&str] = &[
    "SELECT", "WITH", "VALUES", "PRAGMA", "EXPLAIN", "INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "CREATE", "REPLACE", "TRUNCATE",
    "ATTACH", "DETACH", "MERGE", "VACUUM", "GRANT", "REVOKE", "BEGIN", "UPSERT",
];

/// The SQL in `reply`, trimmed, or None when there is none.
pub fn extract_sql(reply: &str) -> Option<String> {
    if let Some(block) = fenced(reply) {
        let block = block.trim();
        return (!block.is_empty()).then(|| block.to_string());
    }
    let lines: Vec<&str> = reply.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = statement_start(line) else { continue };
        let mut out = line[at..].to_string();
        for next in &lines[i + 1..] {
            if next.trim().is_empty() {
                break;
            }
            out.push('\n');
            out.push_str(next);
        }
        let out = out.trim();
        return (!out.is_empty()).then(|| out.to_string());
    }
    None
}

/// The first fenced block, preferring one tagged as SQL.
fn fenced(reply: &str) -> Option<&str> {
    let mut blocks = Vec::new();
    let mut rest = reply;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let (tag, body) = after.split_once('\n').unwrap_or((after, ""));
        let (content, next) = match body.find("```") {
            Some(close) => (&body[..close], &body[close + 3..]),
            None => (body, ""), // an unclosed fence runs to the end (a reply cut by the token limit)
        };
        blocks.push((tag.trim().to_ascii_lowercase(), content));
        rest = next;
        if next.is_empty() {
            break;
        }
    }
    let is_sql = |t: &str| matches!(t, "sql" | "sqlite" | "postgresql" | "postgres" | "mysql" | "pgsql");
    blocks.iter().find(|(t, _)| is_sql(t)).or_else(|| blocks.first()).map(|(_, c)| *c)
}

/// Byte offset where a statement starts in `line`: at the start (any case), or at an upper-case
/// `SELECT`/`WITH` word later in the line.
fn statement_start(line: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    let first: String = trimmed.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_uppercase();
    if STARTS.contains(&first.as_str()) {
        return Some(line.len() - trimmed.len());
    }
    ["SELECT ", "WITH "]
        .iter()
        .filter_map(|kw| {
            line.match_indices(kw).find(|(i, _)| line[..*i].chars().last().is_none_or(|c| !c.is_alphanumeric() && c != '_')).map(|(i, _)| i)
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_sql_is_taken_whole() {
        assert_eq!(extract_sql("SELECT 1").as_deref(), Some("SELECT 1"));
        assert_eq!(extract_sql("  select a\nfrom t\nwhere b = 1;\n").as_deref(), Some("select a\nfrom t\nwhere b = 1;"));
    }

    #[test]
    fn code_fences_win_and_sql_tags_are_preferred() {
        let r = "Here you go:\n```sql\nSELECT COUNT(*) FROM ORD_HDR WHERE is_del = 0;\n```\nThis counts the orders.";
        assert_eq!(extract_sql(r).as_deref(), Some("SELECT COUNT(*) FROM ORD_HDR WHERE is_del = 0;"));
        let r = "```text\nnot this\n```\nand\n```SQL\nSELECT 2\n```";
        assert_eq!(extract_sql(r).as_deref(), Some("SELECT 2"));
        let r = "```\nSELECT 3\n```";
        assert_eq!(extract_sql(r).as_deref(), Some("SELECT 3"));
        // Cut off by the token limit before the closing fence.
        assert_eq!(extract_sql("```sql\nSELECT a\nFROM t").as_deref(), Some("SELECT a\nFROM t"));
    }

    #[test]
    fn leading_prose_is_skipped_and_trailing_prose_cut_at_a_blank_line() {
        let r = "To answer this, we count the customers.\n\nSELECT COUNT(*)\nFROM X_77_User_Ref\n\nThis returns the number.";
        assert_eq!(extract_sql(r).as_deref(), Some("SELECT COUNT(*)\nFROM X_77_User_Ref"));
        let r = "The query is: SELECT prd_nm FROM PRD_MSTR";
        assert_eq!(extract_sql(r).as_deref(), Some("SELECT prd_nm FROM PRD_MSTR"));
        // Lower-case "with" inside prose is not a statement.
        assert_eq!(extract_sql("Happy to help with that, but I need more details."), None);
    }

    #[test]
    fn destructive_statements_are_extracted_for_the_guard_to_refuse() {
        assert_eq!(extract_sql("Sure!\nDELETE FROM ORD_HDR;").as_deref(), Some("DELETE FROM ORD_HDR;"));
        assert_eq!(extract_sql("SELECT 1; DROP TABLE x").as_deref(), Some("SELECT 1; DROP TABLE x"));
    }

    #[test]
    fn nothing_found() {
        assert_eq!(extract_sql(""), None);
        assert_eq!(extract_sql("I cannot answer that."), None);
        assert_eq!(extract_sql("```sql\n```"), None);
    }
}
