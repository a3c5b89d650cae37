//! The state of a data directory, and the small fixed commands pgrepl runs on files.
//!
//! The shell scripts here are constants: paths and modes reach them only as positional
//! parameters (`$1`, `$2`), never spliced into the script text.

use crate::transport::Cmd;

const PROBE: &str = r#"d=$1
if [ ! -e "$d" ]; then
  if [ -w "$(dirname -- "$d")" ]; then echo absent; else echo absent unwritable-parent; fi
elif [ ! -d "$d" ]; then echo notdir
elif [ ! -r "$d" ] || [ ! -x "$d" ]; then echo unreadable
elif [ -z "$(ls -A -- "$d")" ]; then echo empty
elif [ -f "$d/PG_VERSION" ]; then
  printf 'pgdata %s' "$(cat -- "$d/PG_VERSION")"
  if [ -f "$d/standby.signal" ]; then printf ' standby'; fi
  echo
else echo other; fi"#;

const WRITE: &str = r#"umask 077
t="$1.pgrepl-tmp"
cat > "$t" && chmod "$2" "$t" && mv -f -- "$t" "$1""#;

const READ: &str = r#"if [ -e "$1" ]; then exec cat -- "$1"; else exit 66; fi"#;

const READ_WITH_MODE: &str =
    r#"if [ -e "$1" ]; then stat -c %a -- "$1" && exec cat -- "$1"; else exit 66; fi"#;

/// Prints the file's mode in octal on a first line (`600`), then its content; exits with
/// [`READ_ABSENT`] when it does not exist. See [`split_mode`].
pub fn read_file_with_mode(path: &str) -> Cmd {
    Cmd::new("sh").args(["-c", READ_WITH_MODE, "pgrepl-read", path])
}

/// The mode and the content of [`read_file_with_mode`]'s output.
pub fn split_mode(out: &str) -> (Option<u32>, &str) {
    let (mode, content) = out.split_once('\n').unwrap_or((out, ""));
    (u32::from_str_radix(mode.trim(), 8).ok(), content)
}

/// Exit status of [`read_file`] when the file does not exist.
pub const READ_ABSENT: i32 = 66;

/// Reports the state of the data directory `$1` on one line (see [`parse`]).
pub fn probe(data_dir: &str) -> Cmd {
    Cmd::new("sh").args(["-c", PROBE, "pgrepl-probe", data_dir])
}

/// Writes stdin to `path` atomically (temp file + rename) with `mode` (e.g. `0600`).
pub fn write_file(path: &str, mode: &str, content: Vec<u8>) -> Cmd {
    Cmd::new("sh")
        .args(["-c", WRITE, "pgrepl-write", path, mode])
        .stdin(content)
}

/// Prints the file `path`, or exits with [`READ_ABSENT`] when it does not exist.
pub fn read_file(path: &str) -> Cmd {
    Cmd::new("sh").args(["-c", READ, "pgrepl-read", path])
}

const ENSURE_DIR: &str = r#"[ -d "$1" ] || mkdir -p -m "$2" -- "$1""#;

/// Creates directory `path` with `mode` unless it exists.
pub fn ensure_dir(path: &str, mode: &str) -> Cmd {
    Cmd::new("sh").args(["-c", ENSURE_DIR, "pgrepl-mkdir", path, mode])
}

const REMOVE_OURS: &str = r#"case "$1" in
  *.pgrepl-new|*.pgrepl-old) exec rm -rf -- "$1" ;;
  *) echo "pgrepl refuses to remove $1: not a pgrepl staging or old copy" >&2; exit 2 ;;
esac"#;

const SWAP_IN: &str = r#"set -e
case "$2:$3" in *.pgrepl-new:*.pgrepl-old) ;; *) echo "pgrepl: unexpected staging paths" >&2; exit 2 ;; esac
if [ -d "$1" ] && [ -z "$(ls -A -- "$1")" ] && ! mv -- "$1" "$3" 2>/dev/null; then
  # An empty mount point cannot be moved aside: move the copy's contents into it instead.
  find "$2" -mindepth 1 -maxdepth 1 -exec mv -t "$1" -- {} +
  rmdir -- "$2"
  exit 0
fi
if [ -e "$1" ]; then mv -- "$1" "$3"; fi
mv -- "$2" "$1""#;

/// The staging directory a clone is copied into, beside the data directory.
pub fn staging_dir(data_dir: &str) -> String {
    format!("{data_dir}.pgrepl-new")
}

/// Where the WAL a rewind discards (written after the fork) is kept until the DBA removes it.
pub fn discarded_dir(data_dir: &str) -> String {
    format!("{data_dir}.pgrepl-discarded-wal")
}

/// The record of the replication slots pgrepl created on a server, beside its data directory:
/// what lets `init` tell its own slots (also renamed or removed replicas' ones) from others.
pub fn slots_record(data_dir: &str) -> String {
    format!("{data_dir}.pgrepl-slots")
}

/// `ls -1` of a data directory's `pg_wal` (C locale).
pub fn list_wal(data_dir: &str) -> Cmd {
    Cmd::new("ls")
        .args(["-1", "--", &format!("{data_dir}/pg_wal")])
        .env("LC_ALL", "C")
}

/// Copies `files` (names in `<data_dir>/pg_wal`) into `into`, which is created if needed.
pub fn keep_wal(data_dir: &str, files: &[String], into: &str) -> Cmd {
    Cmd::new("sh")
        .args(["-c", KEEP_WAL, "pgrepl-keep-wal", into])
        .args(files.iter().map(|f| format!("{data_dir}/pg_wal/{f}")))
}

/// `$1`: the directory to create; the rest: files to copy into it, preserving times and modes.
const KEEP_WAL: &str = r#"d="$1"; shift; mkdir -p -- "$d" && exec cp -p -- "$@" "$d"/"#;

/// Where the replaced data directory is kept until the new copy streams.
pub fn old_dir(data_dir: &str) -> String {
    format!("{data_dir}.pgrepl-old")
}

/// Removes a staging or old copy (`*.pgrepl-new`, `*.pgrepl-old`); refuses any other path.
pub fn remove_ours(path: &str) -> Cmd {
    Cmd::new("sh").args(["-c", REMOVE_OURS, "pgrepl-remove", path])
}

/// Moves the data directory aside to its old-copy path and the staging copy into its place.
pub fn swap_in(data_dir: &str) -> Cmd {
    Cmd::new("sh").args([
        "-c",
        SWAP_IN,
        "pgrepl-swap",
        data_dir,
        &staging_dir(data_dir),
        &old_dir(data_dir),
    ])
}

const REMOVE_FILE: &str = r#"exec rm -f -- "$1""#;

/// Removes one file (not a directory).
pub fn remove_file(path: &str) -> Cmd {
    Cmd::new("sh").args(["-c", REMOVE_FILE, "pgrepl-rm", path])
}

const REAL_PATH: &str =
    r#"if [ -L "$1" ]; then exec readlink -f -- "$1"; else printf '%s\n' "$1"; fi"#;

/// Prints where the data directory `data_dir` really is: the target of a symlink (followed to
/// the end), else the path itself. A clone is staged and swapped there, so that a data
/// directory on another disk behind a symlink stays there.
pub fn real_path(data_dir: &str) -> Cmd {
    Cmd::new("sh").args(["-c", REAL_PATH, "pgrepl-realpath", data_dir])
}

/// The staging directory of a tablespace's copy: inside the tablespace directory (often a
/// mount point, which cannot be renamed), so that moving it into place is a rename.
pub fn tablespace_staging(location: &str) -> String {
    format!("{location}/.pgrepl-new")
}

/// Where a tablespace's replaced contents are kept until the new replica streams.
pub fn tablespace_old(location: &str) -> String {
    format!("{location}/.pgrepl-old")
}

const TABLESPACE_SWAP: &str = r#"set -e
d=$1
[ -d "$d/.pgrepl-new" ] || { echo "pgrepl: no staged copy in $d/.pgrepl-new" >&2; exit 2; }
mkdir -p -- "$d/.pgrepl-old"
for e in "$d"/* "$d"/.[!.]* "$d"/..?*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  case "${e##*/}" in .pgrepl-new|.pgrepl-old) continue ;; esac
  mv -- "$e" "$d/.pgrepl-old/"
done
find "$d/.pgrepl-new" -mindepth 1 -maxdepth 1 -exec mv -t "$d" -- {} +
rmdir -- "$d/.pgrepl-new""#;

/// Moves a tablespace directory's contents into its old copy and the staged copy's contents
/// into their place (renames inside the one directory, so also on a mount point).
pub fn tablespace_swap(location: &str) -> Cmd {
    Cmd::new("sh").args(["-c", TABLESPACE_SWAP, "pgrepl-ts-swap", location])
}

const RELINK_TABLESPACES: &str = r#"for l in "$1"/pg_tblspc/*; do
  [ -L "$l" ] || continue
  t=$(readlink -- "$l")
  case "$t" in */.pgrepl-new) ln -sfn -- "${t%/.pgrepl-new}" "$l" ;; esac
done"#;

/// Points the copy's `pg_tblspc` links, made to the staged tablespaces, at the tablespaces'
/// own directories (where the staged copies are moved).
pub fn relink_tablespaces(copy: &str) -> Cmd {
    Cmd::new("sh").args(["-c", RELINK_TABLESPACES, "pgrepl-relink", copy])
}

const REMOVE_IF_EMPTY: &str = r#"if [ -d "$1" ] && [ -z "$(ls -A -- "$1")" ]; then exec rmdir -- "$1"; fi
if [ -e "$1" ]; then echo kept; fi"#;

/// Removes the directory `path` if it is empty; prints `kept` when it holds something.
pub fn remove_if_empty(path: &str) -> Cmd {
    Cmd::new("sh").args(["-c", REMOVE_IF_EMPTY, "pgrepl-rmdir", path])
}

const END_CLONES: &str = r#"d=$1
if [ -L "$d" ]; then d=$(readlink -f -- "$d"); fi
into="$d.pgrepl-new"
found=
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" = "$$" ] && continue
  tr '\000' '\n' < "$p/cmdline" 2>/dev/null | {
    read -r prog || exit 1
    case "$prog" in pg_basebackup|*/pg_basebackup) ;; *) exit 1 ;; esac
    grep -qxF -- "$into"
  } || continue
  found="$found $pid"
done
[ -n "$found" ] || exit 0
for pid in $found; do printf '%s %s\n' "$pid" "$(tr '\000' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"; done
kill -s TERM $found 2>/dev/null || true
kill -s CONT $found 2>/dev/null || true
i=0
while :; do
  left=
  for pid in $found; do if kill -s 0 "$pid" 2>/dev/null; then left="$left $pid"; fi; done
  [ -z "$left" ] && exit 0
  i=$((i + 1))
  if [ "$i" -eq 50 ]; then kill -s KILL $left 2>/dev/null || true; fi
  if [ "$i" -gt 100 ]; then echo "pgrepl: still running after SIGKILL:$left" >&2; exit 1; fi
  sleep 0.1
done"#;

/// Ends every `pg_basebackup` copying into the staging directory of `data_dir` (followed
/// behind a symlink): what an earlier run left behind, WAL streaming child included. SIGTERM,
/// SIGKILL after 5 s, verified gone within 10 s. Prints one `pid argv` line per process it
/// ended; exits non-zero if one survived.
pub fn end_clones_into(data_dir: &str) -> Cmd {
    Cmd::new("sh").args(["-c", END_CLONES, "pgrepl-end-clones", data_dir])
}

/// What a data directory holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[schemars(deny_unknown_fields)]
pub enum DirState {
    /// Does not exist; `parent_writable` says whether it can be created.
    Absent {
        /// The parent directory is writable by the OS user, so the directory can be created.
        parent_writable: bool,
    },
    /// An existing directory with no entries (hidden ones included).
    Empty,
    /// A PostgreSQL data directory of `major` version; `standby` if standby.signal is present.
    PgData {
        /// Major version from `PG_VERSION` (e.g. 16); `None` (`null`) when it is not a number.
        major: Option<u32>,
        /// `standby.signal` is present.
        standby: bool,
    },
    /// The path exists but is not a directory.
    NotADirectory,
    /// A directory the OS user cannot list (no read or search permission).
    Unreadable,
    /// Holds files, but not a PostgreSQL data directory.
    Other,
}

impl DirState {
    /// Absent or empty: a new cluster or clone may go here.
    pub fn is_blank(&self) -> bool {
        matches!(
            self,
            DirState::Absent {
                parent_writable: true
            } | DirState::Empty
        )
    }
}

/// Parses the probe's output line.
pub fn parse(out: &str) -> Option<DirState> {
    let mut w = out.split_whitespace();
    Some(match w.next()? {
        "absent" => DirState::Absent {
            parent_writable: w.next() != Some("unwritable-parent"),
        },
        "empty" => DirState::Empty,
        "notdir" => DirState::NotADirectory,
        "unreadable" => DirState::Unreadable,
        "other" => DirState::Other,
        "pgdata" => {
            let major = w.next().and_then(|v| v.parse().ok());
            DirState::PgData {
                major,
                standby: w.next() == Some("standby"),
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probe_lines() {
        assert_eq!(
            parse("absent\n"),
            Some(DirState::Absent {
                parent_writable: true
            })
        );
        assert_eq!(
            parse("absent unwritable-parent"),
            Some(DirState::Absent {
                parent_writable: false
            })
        );
        assert_eq!(parse("empty"), Some(DirState::Empty));
        assert_eq!(
            parse("pgdata 15 standby"),
            Some(DirState::PgData {
                major: Some(15),
                standby: true
            })
        );
        assert_eq!(
            parse("pgdata 16"),
            Some(DirState::PgData {
                major: Some(16),
                standby: false
            })
        );
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn scripts_take_paths_as_parameters_only() {
        let evil = "/srv/$(touch /tmp/pwned)";
        let c = write_file(evil, "0600", vec![]);
        assert_eq!(c.argv[2], WRITE, "script text is constant");
        assert_eq!(c.argv[4], evil);
    }

    /// The removal script refuses anything but pgrepl's own staging and old copies.
    #[test]
    fn remove_refuses_other_paths() {
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join("data");
        std::fs::create_dir(&keep).unwrap();
        let run = |p: &std::path::Path| {
            let c = remove_ours(p.to_str().unwrap());
            std::process::Command::new(&c.argv[0])
                .args(&c.argv[1..])
                .status()
                .unwrap()
                .success()
        };
        assert!(!run(&keep));
        assert!(keep.exists());
        let old = dir.path().join("data.pgrepl-old");
        std::fs::create_dir(&old).unwrap();
        assert!(run(&old));
        assert!(!old.exists());
    }

    /// Runs the real probe script under /bin/sh against real directories.
    #[test]
    fn probe_script_runs_under_sh() {
        let dir = tempfile::tempdir().unwrap();
        let run = |p: &std::path::Path| {
            let c = probe(p.to_str().unwrap());
            let out = std::process::Command::new(&c.argv[0])
                .args(&c.argv[1..])
                .output()
                .unwrap();
            parse(&String::from_utf8_lossy(&out.stdout)).unwrap()
        };
        assert_eq!(
            run(&dir.path().join("nope")),
            DirState::Absent {
                parent_writable: true
            }
        );
        assert_eq!(run(dir.path()), DirState::Empty);
        std::fs::write(dir.path().join("PG_VERSION"), "15\n").unwrap();
        std::fs::write(dir.path().join("standby.signal"), "").unwrap();
        assert_eq!(
            run(dir.path()),
            DirState::PgData {
                major: Some(15),
                standby: true
            }
        );
    }

    fn sh_ok(c: Cmd) -> String {
        let out = std::process::Command::new(&c.argv[0])
            .args(&c.argv[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A tablespace's staged copy replaces its contents (hidden entries too), the copy's links
    /// are pointed at the tablespace, and only an empty old copy is removed.
    #[test]
    fn tablespace_scripts_run_under_sh() {
        let dir = tempfile::tempdir().unwrap();
        let ts = dir.path().join("ts");
        let ts_s = ts.to_str().unwrap();
        std::fs::create_dir_all(ts.join("PG_15_old")).unwrap();
        std::fs::write(ts.join(".hidden"), "").unwrap();
        std::fs::create_dir_all(ts.join(".pgrepl-new/PG_15_new")).unwrap();
        let copy = dir.path().join("data.pgrepl-new");
        std::fs::create_dir_all(copy.join("pg_tblspc")).unwrap();
        let link = copy.join("pg_tblspc/16384");
        std::os::unix::fs::symlink(tablespace_staging(ts_s), &link).unwrap();
        sh_ok(tablespace_swap(ts_s));
        sh_ok(relink_tablespaces(copy.to_str().unwrap()));
        let mut got: Vec<String> = std::fs::read_dir(&ts)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(got, [".pgrepl-old", "PG_15_new"]);
        assert!(ts.join(".pgrepl-old/PG_15_old").is_dir());
        assert!(ts.join(".pgrepl-old/.hidden").exists());
        assert_eq!(std::fs::read_link(&link).unwrap(), ts);
        let old = tablespace_old(ts_s);
        assert_eq!(sh_ok(remove_if_empty(&old)).trim(), "kept");
        std::fs::remove_dir_all(ts.join(".pgrepl-old/PG_15_old")).unwrap();
        std::fs::remove_file(ts.join(".pgrepl-old/.hidden")).unwrap();
        assert_eq!(sh_ok(remove_if_empty(&old)).trim(), "");
        assert!(!ts.join(".pgrepl-old").exists());
    }
}
