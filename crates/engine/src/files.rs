//! Writing a file so that a crash or a full disk never leaves it half written:
//! the bytes go to a temporary file beside it, are flushed to disk, and the
//! temporary file is renamed over the old one. Used for adapters, run records,
//! checkpoints' pointers and saved conversations.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes` atomically; on failure the old file is intact and
/// no temporary file is left behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_whole_file_and_leaves_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.json");
        write_atomic(&f, b"first version, rather long").unwrap();
        write_atomic(&f, b"second").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        let missing = d.path().join("no-such-dir").join("b.json");
        assert!(write_atomic(&missing, b"x").is_err());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
