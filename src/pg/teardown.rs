//! What `destroy` removes on a host, and the fixed commands that remove it: the data directory
//! and the files pgrepl puts beside it (`<data_dir>.pgpass`, `.tls`, `.log`, `.pgrepl-lock`,
//! `.pgrepl-new`, `.pgrepl-old`, `.pgrepl-discarded-wal`, `.pgrepl-slots`). No I/O here.
//!
//! The scripts are constants; paths reach them only as positional parameters.

use crate::transport::Cmd;

/// The suffixes of the files and directories pgrepl puts beside a data directory, the log
/// (`.log`) last. The lock file (`.pgrepl-lock`) is not among them: `destroy` holds it while it
/// works and removes it after.
pub const SIBLINGS: &[&str] = &[
    ".pgpass",
    ".tls",
    ".pgrepl-new",
    ".pgrepl-old",
    ".pgrepl-discarded-wal",
    ".pgrepl-slots",
    ".pgrepl-history",
    ".log",
];

/// The paths beside `data_dir` that pgrepl made, without the log when `keep_logs`.
pub fn siblings(data_dir: &str, keep_logs: bool) -> Vec<String> {
    SIBLINGS
        .iter()
        .filter(|s| !(keep_logs && **s == ".log"))
        .map(|s| format!("{data_dir}{s}"))
        .collect()
}

const EXISTING: &str =
    r#"for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then printf '%s\n' "$p"; fi; done"#;

/// Prints, one per line, those of `paths` that exist.
pub fn existing(paths: &[String]) -> Cmd {
    Cmd::new("sh")
        .args(["-c", EXISTING, "pgrepl-existing"])
        .args(paths.iter().cloned())
}

/// `$1` the data directory: removed when it is a PostgreSQL data directory (`PG_VERSION`) or
/// empty, anything else refused. A symlinked data directory is emptied where it points (the
/// link stays), a mount point is emptied (the directory stays).
const REMOVE_DATA_DIR: &str = r#"d=$1
[ -e "$d" ] || exit 0
if [ ! -f "$d/PG_VERSION" ] && [ -n "$(ls -A -- "$d")" ]; then
  echo "pgrepl refuses to remove $d: not a PostgreSQL data directory" >&2; exit 2
fi
find -H "$d" -mindepth 1 -delete
rmdir -- "$d" 2>/dev/null || true"#;

/// Removes a data directory (see the script: only a PostgreSQL one, or an empty one).
pub fn remove_data_dir(data_dir: &str) -> Cmd {
    Cmd::new("sh").args(["-c", REMOVE_DATA_DIR, "pgrepl-destroy", data_dir])
}

/// `$1` the data directory, then the paths beside it to remove: each must be `$1` plus one of
/// pgrepl's suffixes.
const REMOVE_SIBLINGS: &str = r#"d=$1; shift
for p in "$@"; do
  case "$p" in
    "$d".pgpass|"$d".tls|"$d".log|"$d".pgrepl-lock|"$d".pgrepl-new|"$d".pgrepl-old|"$d".pgrepl-discarded-wal|"$d".pgrepl-slots|"$d".pgrepl-history) rm -rf -- "$p" ;;
    *) echo "pgrepl refuses to remove $p: not one of its files beside $d" >&2; exit 2 ;;
  esac
done"#;

/// Removes `paths` (pgrepl's files beside `data_dir`); refuses any other path.
pub fn remove_siblings(data_dir: &str, paths: &[String]) -> Cmd {
    Cmd::new("sh")
        .args(["-c", REMOVE_SIBLINGS, "pgrepl-destroy-siblings", data_dir])
        .args(paths.iter().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_keep_the_log_on_request() {
        let all = siblings("/d/pg1", false);
        assert_eq!(all.len(), SIBLINGS.len());
        assert!(REMOVE_SIBLINGS.contains("\"$d\".pgrepl-lock"));
        assert!(all.contains(&"/d/pg1.log".to_string()));
        assert!(!siblings("/d/pg1", true).contains(&"/d/pg1.log".to_string()));
    }

    #[test]
    fn every_sibling_is_allowed_by_the_removal_script() {
        for s in SIBLINGS {
            assert!(REMOVE_SIBLINGS.contains(&format!("\"$d\"{s}")), "{s}");
        }
        let c = remove_siblings("/d/pg1", &["/d/pg1.log".into()]);
        assert_eq!(
            c.argv[3..],
            ["pgrepl-destroy-siblings", "/d/pg1", "/d/pg1.log"]
        );
    }
}
