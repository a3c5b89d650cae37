//! PostgreSQL vocabulary without I/O: LSNs, versions, quoting rules, and the argv builders and
//! output parsers for PostgreSQL's own tools. Nothing here runs a command or opens a socket.

pub mod autoconf;
pub mod basebackup;
pub mod controldata;
pub mod ctl;
pub mod datadir;
pub mod guc;
pub mod hba;
pub mod hostdirs;
pub mod hot_standby;
pub mod libpq;
pub mod rewind;
pub mod scram;
pub mod ssl;
pub mod state;
pub mod teardown;
pub mod wal;
pub mod waldump;

use std::fmt;

/// The PostgreSQL majors pgrepl supports, each one tested in CI with real binaries (README
/// "Supported versions"). The next major is this one line plus its CI run.
pub const SUPPORTED_MAJORS: std::ops::RangeInclusive<u32> = 13..=18;

/// Is `major` one pgrepl supports?
pub fn is_supported_major(major: u32) -> bool {
    SUPPORTED_MAJORS.contains(&major)
}

/// The supported range in words, for messages: `13 to 18`.
pub fn supported_majors_text() -> String {
    format!("{} to {}", SUPPORTED_MAJORS.start(), SUPPORTED_MAJORS.end())
}

/// How a WAL location prints ([`Lsn`]'s `Display`): the JSON documents' pattern for it.
pub const LSN_PATTERN: &str = "^[0-9A-F]{1,8}/[0-9A-F]{1,8}$";

/// A WAL location (`pg_lsn`), e.g. `0/3000148`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses PostgreSQL's `X/Y` text form.
    pub fn parse(s: &str) -> Option<Lsn> {
        let (hi, lo) = s.trim().split_once('/')?;
        let hi = u64::from_str_radix(hi, 16).ok()?;
        let lo = u64::from_str_radix(lo, 16).ok()?;
        if hi > u32::MAX as u64 || lo > u32::MAX as u64 {
            return None;
        }
        Some(Lsn((hi << 32) | lo))
    }

    /// Bytes from `self` forward to `later` (0 when `later` is not ahead).
    pub fn bytes_until(self, later: Lsn) -> u64 {
        later.0.saturating_sub(self.0)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Parses the major version from `postgres --version` / `pg_ctl --version` output,
/// e.g. `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → 15.
pub fn parse_major_version(output: &str) -> Option<u32> {
    let rest = output.split(')').nth(1).unwrap_or(output);
    let num = rest.split_whitespace().next()?;
    num.split(['.', 'b', 'r', 'd']).next()?.parse().ok()
}

/// Quotes a value for postgresql.conf: always single-quoted, `'` doubled, `\` doubled.
/// Every GUC type accepts a quoted value. Refuses control characters (no newline injection).
pub fn quote_guc(value: &str) -> Result<String, String> {
    if value.chars().any(|c| c.is_control()) {
        return Err(format!("value {value:?} contains a control character"));
    }
    Ok(format!(
        "'{}'",
        value.replace('\\', "\\\\").replace('\'', "''")
    ))
}

/// Quotes one value for a libpq connection string: bare when it is made only of safe
/// characters (easier for a DBA to read), `'...'` with `\` escapes otherwise.
pub fn quote_conninfo_value(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./@+,:%-".contains(c))
    {
        return value.to_string();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Builds a libpq conninfo string from key/value pairs, quoting every value.
pub fn conninfo(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", quote_conninfo_value(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Escapes one field of a password file line (`\` and `:` are escaped, per libpq).
pub fn passfile_field(s: &str) -> String {
    s.replace('\\', "\\\\").replace(':', "\\:")
}

/// The line of a 0600 password file that lets `user` connect anywhere with `password`.
/// `*` for host, port and database keeps it valid across failovers.
pub fn passfile_line(user: &str, password: &str) -> String {
    format!(
        "*:*:*:{}:{}\n",
        passfile_field(user),
        passfile_field(password)
    )
}

/// Is this a valid replication slot name (PostgreSQL's rule: lower case letters, digits, `_`,
/// at most 63 bytes)?
pub fn is_valid_slot_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_round_trip_and_distance() {
        let a = Lsn::parse("0/3000148").unwrap();
        assert_eq!(a.to_string(), "0/3000148");
        let b = Lsn::parse("1/0").unwrap();
        assert_eq!(b.0, 1 << 32);
        assert_eq!(a.bytes_until(b), (1u64 << 32) - 0x3000148);
        assert_eq!(b.bytes_until(a), 0);
        assert!(Lsn::parse("zz/1").is_none());
        assert!(Lsn::parse("01").is_none());
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(parse_major_version("pg_ctl (PostgreSQL) 17.2"), Some(17));
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 18beta1"),
            Some(18)
        );
        assert_eq!(parse_major_version("nonsense"), None);
    }

    #[test]
    fn supported_majors_are_13_to_18() {
        assert_eq!(supported_majors_text(), "13 to 18");
        assert!(!is_supported_major(12));
        assert!((13..=18).all(is_supported_major));
        assert!(!is_supported_major(19));
    }

    #[test]
    fn guc_quoting() {
        assert_eq!(quote_guc("on").unwrap(), "'on'");
        assert_eq!(quote_guc("it's").unwrap(), "'it''s'");
        assert_eq!(quote_guc(r"a\b").unwrap(), r"'a\\b'");
        assert!(quote_guc("a\nb").is_err());
    }

    #[test]
    fn conninfo_quoting() {
        assert_eq!(
            conninfo(&[("host", "10.0.0.1"), ("application_name", "o'k"), ("x", "")]),
            r"host=10.0.0.1 application_name='o\'k' x=''"
        );
    }

    #[test]
    fn passfile_escaping() {
        assert_eq!(passfile_line("rep", r"a:b\c"), "*:*:*:rep:a\\:b\\\\c\n");
    }

    #[test]
    fn slot_names() {
        assert!(is_valid_slot_name("pg_2"));
        assert!(!is_valid_slot_name("pg-2"));
        assert!(!is_valid_slot_name("Pg2"));
        assert!(!is_valid_slot_name(&"a".repeat(64)));
        assert!(!is_valid_slot_name(""));
    }
}

/// The `name = value` settings of a postgresql.conf text (comments and blank lines skipped;
/// names lower-cased; the last occurrence wins, as in PostgreSQL).
pub fn parse_conf(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            m.insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    m
}

/// The setting names whose values differ between two postgresql.conf texts.
pub fn changed_settings(old: &str, new: &str) -> Vec<String> {
    let (a, b) = (parse_conf(old), parse_conf(new));
    let mut names: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod conf_tests {
    use super::*;

    #[test]
    fn changed_settings_sees_adds_removes_and_changes() {
        let old = "# managed\nport = '5432'\nshared_buffers = '128MB'\nwork_mem = '4MB'\n";
        let new = "# managed\nport = '5432'\nshared_buffers = '256MB'\nmax_connections = '50'\n";
        assert_eq!(
            changed_settings(old, new),
            vec!["max_connections", "shared_buffers", "work_mem"]
        );
        assert!(changed_settings(old, old).is_empty());
    }
}

/// Parses a size the way postgresql.conf writes them: `1048576`, `16MB`, `1GB`, `512kB`, `2TB`
/// (units are powers of 1024; `B` is accepted too).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("16MB"), Some(16 << 20));
        assert_eq!(super::parse_size("1GB"), Some(1 << 30));
        assert_eq!(super::parse_size("4096"), Some(4096));
        assert_eq!(super::parse_size("12 kB"), Some(12 << 10));
        assert_eq!(super::parse_size("1 PB"), None);
        assert_eq!(super::parse_size("MB"), None);
    }
}
