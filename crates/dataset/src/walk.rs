//! Finding the files under the given paths: symlink loops, unreadable folders, special files and
//! huge trees are reported, never fatal.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::finding::Finding;

/// A regular file to look at.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    /// The path as shown in reports.
    pub display: String,
    pub size: u64,
}

/// Something found while walking that is not read, with the reason (listed in the report).
#[derive(Debug, Clone)]
pub struct Skipped {
    pub display: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Walk {
    pub entries: Vec<Entry>,
    pub skipped: Vec<Skipped>,
    pub findings: Vec<Finding>,
}

/// Walks every path (files are taken as they are, folders recursively, links followed).
pub fn walk(paths: &[PathBuf], max_files: usize, exclude: &[PathBuf]) -> Walk {
    let mut w = Walk::default();
    let exclude: HashSet<PathBuf> = exclude.iter().filter_map(|p| std::fs::canonicalize(p).ok()).collect();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut hidden = 0usize;
    let mut ignores: std::collections::HashMap<PathBuf, Vec<String>> = std::collections::HashMap::new();
    for root in paths {
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) => {
                let (code, msg) = match std::fs::symlink_metadata(root) {
                    Ok(_) => ("broken-link", format!("{} is a link to something that does not exist or cannot be reached ({e})", root.display())),
                    Err(_) if e.kind() == std::io::ErrorKind::NotFound => ("not-found", format!("{} does not exist", root.display())),
                    Err(_) => ("unreadable", format!("{} cannot be read: {e}", root.display())),
                };
                w.findings.push(Finding::error(code, msg).in_file(root.display().to_string()));
                continue;
            }
        };
        if meta.is_file() {
            add_file(&mut w, &mut seen, &exclude, root, root.display().to_string(), meta.len());
            continue;
        }
        if !meta.is_dir() {
            w.skipped.push(Skipped { display: root.display().to_string(), reason: "not a regular file (a device, pipe or socket)".into() });
            continue;
        }
        let hidden_here = std::cell::Cell::new(0usize);
        let it = walkdir::WalkDir::new(root).follow_links(true).sort_by_file_name().into_iter().filter_entry(|e| {
            // Hidden files and folders (.git, .DS_Store) are left out, and counted so nothing
            // disappears without a word.
            let keep = e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.');
            if !keep {
                hidden_here.set(hidden_here.get() + 1);
            }
            keep
        });
        for item in it {
            if w.entries.len() >= max_files {
                w.findings.push(
                    Finding::error("too-many-files", format!("stopped after {max_files} files; the rest of {} was not looked at", root.display()))
                        .fix("point at a smaller folder, or raise the file limit"),
                );
                break;
            }
            match item {
                Err(e) => {
                    let shown = e.path().map(|p| p.display().to_string()).unwrap_or_else(|| root.display().to_string());
                    if let Some(anc) = e.loop_ancestor() {
                        w.findings.push(
                            Finding::warning("symlink-loop", format!("{shown} links back to {}, which contains it; the loop was not followed", anc.display()))
                                .in_file(shown)
                                .fix("remove the link, or ignore this: the files are read once through the real path"),
                        );
                    } else {
                        let io = e.io_error().map(|x| x.kind());
                        let (code, msg) = match io {
                            Some(std::io::ErrorKind::NotFound) => ("broken-link", format!("{shown} is a link to something that does not exist")),
                            Some(std::io::ErrorKind::PermissionDenied) => ("unreadable", format!("{shown} cannot be opened: permission denied")),
                            _ => ("unreadable", format!("{shown} cannot be read: {e}")),
                        };
                        w.findings.push(Finding::error(code, msg).in_file(shown).fix("check the file's permissions, or remove it from the folder"));
                    }
                }
                Ok(e) => {
                    let ft = e.file_type();
                    if ft.is_dir() {
                        continue;
                    }
                    let shown = e.path().display().to_string();
                    if let Some(rule) = ignore_rule(&mut ignores, root, e.path()) {
                        w.skipped.push(Skipped { display: shown, reason: format!("listed in .residencyignore (`{rule}`)") });
                        continue;
                    }
                    if !ft.is_file() {
                        w.skipped.push(Skipped { display: shown, reason: "not a regular file (a device, pipe or socket)".into() });
                        continue;
                    }
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    add_file(&mut w, &mut seen, &exclude, e.path(), shown, size);
                }
            }
        }
        hidden += hidden_here.get();
    }
    if hidden > 0 {
        w.findings.push(Finding::info("hidden-files", format!("{hidden} hidden file(s) or folder(s) (names starting with a dot, like .git) were not read")));
    }
    w
}

/// The `.residencyignore` pattern (in the file's folder or any folder above it, up to the walked
/// root) that matches this file, if any. Patterns are file names or relative paths, `*` matching
/// any run of characters and `#` starting a comment.
fn ignore_rule(cache: &mut std::collections::HashMap<PathBuf, Vec<String>>, root: &Path, file: &Path) -> Option<String> {
    let mut dir = file.parent();
    while let Some(d) = dir {
        let rules = cache.entry(d.to_path_buf()).or_insert_with(|| {
            std::fs::read_to_string(d.join(".residencyignore"))
                .map(|t| t.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect())
                .unwrap_or_default()
        });
        if let Ok(rel) = file.strip_prefix(d) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if let Some(r) = rules.iter().find(|r| glob(r.trim_start_matches('/'), &rel) || glob(r, &name)) {
                return Some(r.clone());
            }
        }
        if d == root {
            break;
        }
        dir = d.parent();
    }
    None
}

/// `*` matches any run of characters (including none); everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    if !rest.starts_with(parts[0]) {
        return false;
    }
    rest = &rest[parts[0].len()..];
    for (i, p) in parts.iter().enumerate().skip(1) {
        if i == parts.len() - 1 {
            return rest.ends_with(p);
        }
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    true
}

fn add_file(w: &mut Walk, seen: &mut HashSet<PathBuf>, exclude: &HashSet<PathBuf>, path: &Path, display: String, size: u64) {
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if exclude.contains(&canon) {
        return;
    }
    if !seen.insert(canon) {
        w.findings.push(Finding::info("same-file-twice", format!("{display} is the same file as one already read (through a link or a repeated path); read once")).in_file(display));
        return;
    }
    w.entries.push(Entry { path: path.to_path_buf(), display, size });
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("holdout-*.jsonl", "holdout-pairs.jsonl"));
        assert!(glob("*.py", "make_db.py"));
        assert!(glob("notes/*", "notes/a.md"));
        assert!(!glob("*.py", "a.pyc"));
        assert!(glob("KNOWN-ISSUES.md", "KNOWN-ISSUES.md"));
        assert!(!glob("a*b*c", "abx"));
    }
}
