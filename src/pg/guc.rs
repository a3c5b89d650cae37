//! Settings as the server binaries judge them: `postgres -c name=value …` parses every `-c`
//! option (name, value, unit, enum value, context) before it looks for a data directory, so
//! pointed at a directory that cannot exist it refuses the first bad setting with a FATAL
//! line, or, when all are good, fails on the missing directory without starting anything
//! (`-C` makes sure it never would). Argv and the parser of its output; no I/O here.

use std::collections::BTreeMap;

use crate::transport::Cmd;

/// The data directory the check names: it never exists, so the server never starts.
pub const NO_DATA_DIR: &str = "/nonexistent/pgrepl-settings-check";

/// `LC_ALL=C postgres -D <none> -C port -c name=value …` for `settings`.
pub fn check_cmd<'a>(bin_dir: &str, settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Cmd {
    let mut c = Cmd::new(format!("{bin_dir}/postgres"))
        .args(["-D", NO_DATA_DIR, "-C", "port"])
        .env("LC_ALL", "C");
    for (name, value) in settings {
        c = c.arg("-c").arg(format!("{name}={value}"));
    }
    c
}

/// What the check's output says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every setting was accepted (the run stopped at the missing data directory).
    Accepted,
    /// `name` was refused: the server's FATAL text, with its HINT when it gave one.
    Refused {
        /// The setting's name, as given.
        name: String,
        /// e.g. `unrecognized configuration parameter "max_conections"`.
        message: String,
    },
    /// The output is neither: the check could not be made (the last lines, for the error).
    Unknown(String),
}

/// Reads the stderr of [`check_cmd`] run with the settings named `names`.
pub fn verdict(stderr: &[String], names: &[&str]) -> Verdict {
    for (i, line) in stderr.iter().enumerate() {
        let Some((_, fatal)) = line.split_once("FATAL:") else {
            continue;
        };
        let fatal = fatal.trim();
        let named = fatal
            .split('"')
            .skip(1)
            .step_by(2)
            .find(|q| names.contains(q));
        if let Some(name) = named {
            let hint = stderr
                .get(i + 1)
                .and_then(|l| l.split_once("HINT:"))
                .map(|(_, h)| format!(" ({})", h.trim()))
                .unwrap_or_default();
            return Verdict::Refused {
                name: name.to_string(),
                message: format!("{fatal}{hint}"),
            };
        }
    }
    if stderr.iter().any(|l| l.contains(NO_DATA_DIR)) {
        return Verdict::Accepted;
    }
    Verdict::Unknown(stderr.join(" "))
}

/// The settings of `all` that are not in `refused` (what the next round checks).
pub fn without<'a>(
    all: &'a BTreeMap<String, String>,
    refused: &[String],
) -> Vec<(&'a str, &'a str)> {
    all.iter()
        .filter(|(n, _)| !refused.contains(n))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// The settings that name libraries the server loads at start (or at connection): the check
/// above does not load them, so their files are looked for (see [`libraries_cmd`]).
pub const PRELOAD_SETTINGS: &[&str] = &[
    "shared_preload_libraries",
    "session_preload_libraries",
    "local_preload_libraries",
];

/// The library names in a preload setting's value (`'a, "b"'` → `a`, `b`).
pub fn libraries(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|l| l.trim().trim_matches(['"', '\'']).trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

const LIBRARIES: &str = r#"b=$1; shift
lib=$("$b/pg_config" --pkglibdir 2>/dev/null) || { echo "unknown"; exit 0; }
for l in "$@"; do
  case "$l" in
    '$libdir/'*) f="$lib/${l#\$libdir/}" ;;
    */*) f=$l ;;
    *) f="$lib/$l" ;;
  esac
  if [ ! -e "$f" ] && [ ! -e "$f.so" ]; then printf 'missing %s %s\n' "$l" "$lib"; fi
done"#;

/// Prints `missing <library> <libdir>` for each of `libs` whose file is not in the server's
/// library directory (`pg_config --pkglibdir` of `bin_dir`), or `unknown` without `pg_config`.
pub fn libraries_cmd(bin_dir: &str, libs: &[String]) -> Cmd {
    Cmd::new("sh")
        .args(["-c", LIBRARIES, "pgrepl-libraries", bin_dir])
        .args(libs.iter().cloned())
}

/// The libraries the probe found missing: `(library, libdir)`.
pub fn missing_libraries(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.splitn(3, ' ');
            (w.next()? == "missing").then_some(())?;
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    #[test]
    fn reads_refusals_and_acceptance() {
        let names = ["max_conections", "wal_level", "shared_buffers"];
        assert_eq!(
            verdict(
                &lines("2026-11-30 13:23:54.037 GMT [30693] FATAL:  unrecognized configuration parameter \"max_conections\""),
                &names
            ),
            Verdict::Refused {
                name: "max_conections".into(),
                message: "unrecognized configuration parameter \"max_conections\"".into()
            }
        );
        let v = verdict(
            &lines("x FATAL:  invalid value for parameter \"wal_level\": \"foo\"\nx HINT:  Available values: minimal, replica, logical."),
            &names,
        );
        assert_eq!(
            v,
            Verdict::Refused {
                name: "wal_level".into(),
                message: "invalid value for parameter \"wal_level\": \"foo\" (Available values: minimal, replica, logical.)".into()
            }
        );
        assert_eq!(
            verdict(
                &lines(&format!("postgres: could not access directory \"{NO_DATA_DIR}\": No such file or directory\nRun initdb or pg_basebackup to initialize a PostgreSQL data directory.")),
                &names
            ),
            Verdict::Accepted
        );
        assert!(matches!(
            verdict(
                &lines("\"root\" execution of the PostgreSQL server is not permitted."),
                &names
            ),
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn settings_are_argv_elements() {
        let c = check_cmd("/b", [("search_path", "'$user', public")]);
        assert!(c.argv.contains(&"search_path='$user', public".to_string()));
    }

    #[test]
    fn preload_libraries_are_listed_and_missing_ones_read() {
        assert_eq!(
            libraries("pg_stat_statements, 'auto_explain'"),
            ["pg_stat_statements", "auto_explain"]
        );
        assert!(libraries("").is_empty());
        assert_eq!(
            missing_libraries("missing pg_stat_statementz /usr/lib/postgresql/15/lib\n"),
            [(
                "pg_stat_statementz".to_string(),
                "/usr/lib/postgresql/15/lib".to_string()
            )]
        );
        assert!(missing_libraries("unknown\n").is_empty());
    }
}
