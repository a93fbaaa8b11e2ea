//! The demo folders (demo/coffee-roaster, demo/sql-shop): every deliberate problem listed in
//! KNOWN-ISSUES.md is found at its file and line.

use std::path::PathBuf;

use dataset::{inspect, CharEstimate, Kind, Options};

fn demo(rel: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo").join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("{} is not there yet; skipping", p.display());
        None
    }
}

#[test]
fn coffee_roaster_known_issues_are_all_found() {
    let Some(dir) = demo("coffee-roaster") else { return };
    let Ok(issues) = std::fs::read_to_string(dir.join("KNOWN-ISSUES.md")) else { return };
    let report = inspect(std::slice::from_ref(&dir), &Options::default(), &CharEstimate);
    let mut checked = 0;
    for row in issues.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (file, line, kind) = (cells[1].trim_matches('`'), cells[2].parse::<u64>().unwrap(), cells[3]);
        let found = report.findings.iter().any(|f| {
            f.file.as_deref().is_some_and(|p| p.ends_with(file)) && f.line == Some(line) && f.code != "columns"
        });
        assert!(found, "{kind} at {file}:{line} not reported; findings: {:#?}", report.findings);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} known issues parsed");
    assert!(report.persona.is_some());
}

#[test]
fn sql_shop_pairs_get_the_schema() {
    let Some(dir) = demo("sql-shop") else { return };
    let mut records = Vec::new();
    let scan = dataset::collect::run(&[dir], &Options::default(), &CharEstimate, None, &[], &mut |_, r, _| records.push(r));
    let sql: Vec<_> = records.iter().filter(|r| r.kind == Kind::Sql).collect();
    assert!(sql.len() >= 100, "{}", sql.len());
    for r in &sql {
        assert!(r.messages[0].content.contains("CREATE TABLE"), "{:?}", r.messages[0]);
    }
    assert!(scan.report.findings.iter().all(|f| f.code != "no-schema"));
}
