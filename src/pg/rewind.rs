//! `pg_rewind`: its preconditions (read from pg_controldata) and its argv. It connects to the
//! source as the least-privilege rewind role; the password comes from the 0600 password file.
//! Builds argv and judges control data only: running the rewind is `steps::rewind`'s.

use super::controldata::ControlData;
use crate::transport::Cmd;

/// Why a rewind is impossible, or None when it is possible.
pub fn blocker(c: &ControlData) -> Option<String> {
    if c.system_identifier.is_none() {
        return Some("pg_controldata could not read the data directory".into());
    }
    if c.data_checksums != Some(true) && c.wal_log_hints != Some(true) {
        return Some("the data directory has neither data checksums nor wal_log_hints".into());
    }
    None
}

/// Was the server shut down cleanly (as pg_rewind requires of its target)?
pub fn cleanly_shut_down(c: &ControlData) -> bool {
    matches!(
        c.cluster_state.as_deref(),
        Some("shut down") | Some("shut down in recovery")
    )
}

/// Completes crash recovery of an uncleanly stopped data directory in single-user mode, as
/// pg_rewind itself does before a real run (its `--dry-run` does not, and then refuses the
/// target). Must run without standby.signal (single-user mode refuses standby mode).
pub fn complete_crash_recovery(bin_dir: &str, data_dir: &str) -> Cmd {
    Cmd::new(format!("{bin_dir}/postgres"))
        .args([
            "--single",
            "-F",
            "-D",
            data_dir,
            "-c",
            "archive_mode=off",
            "template1",
        ])
        .env("LC_ALL", "C")
}

/// The fork pg_rewind found, from its line `servers diverged at WAL location 0/3000000 on
/// timeline 1`: the LSN and the timeline the target left there.
pub fn parse_divergence(line: &str) -> Option<(super::Lsn, u32)> {
    let rest = line.split("servers diverged at WAL location ").nth(1)?;
    let mut words = rest.split_whitespace();
    let lsn = super::Lsn::parse(words.next()?)?;
    let tli = (words.next()? == "on" && words.next()? == "timeline")
        .then(|| words.next())??
        .trim_end_matches('.')
        .parse()
        .ok()?;
    Some((lsn, tli))
}

/// The WAL segment files (names in `pg_wal`) of `tli` from the segment holding `from` on: what a
/// rewind discards, for a target whose WAL segments are `seg_size` bytes.
pub fn segments_from(names: &str, tli: u32, from: super::Lsn, seg_size: u64) -> Vec<String> {
    let Some(first) = from.0.checked_div(seg_size) else {
        return Vec::new();
    };
    let per_log = 0x1_0000_0000 / seg_size.max(1);
    let first = format!("{tli:08X}{:08X}{:08X}", first / per_log, first % per_log);
    names
        .lines()
        .map(str::trim)
        .filter(|n| n.len() == 24 && n.chars().all(|c| c.is_ascii_hexdigit()))
        .filter(|n| n[..8] == first[..8] && *n >= first.as_str())
        .map(str::to_string)
        .collect()
}

/// What a rewind needs to know.
pub struct RewindSpec<'a> {
    /// Directory of the server binaries on the target's host (`pg_rewind` runs from it).
    pub bin_dir: &'a str,
    /// The target's data directory, absolute (`--target-pgdata`); its server must be stopped.
    pub data_dir: &'a str,
    /// Address (IP or DNS name) of the source server: the live primary.
    pub source_address: &'a str,
    /// TCP port of the source server.
    pub source_port: u16,
    /// The rewind role to connect as (LOGIN, EXECUTE on pg_rewind's functions; no superuser).
    pub user: &'a str,
    /// Path on the target's host of the 0600 password file (libpq `passfile=`).
    pub passfile: &'a str,
    /// Add `--dry-run`: check that the rewind would work, change nothing.
    pub dry_run: bool,
    /// TLS parameters of the connection (`sslmode=verify-full`, `sslrootcert`, …); empty
    /// without TLS.
    pub tls: &'a [(&'static str, String)],
}

/// `pg_rewind --target-pgdata … --source-server '…'` (PG13+ completes crash recovery of an
/// uncleanly stopped target itself). No `--write-recovery-conf`: pgrepl renders the standby
/// configuration itself, with the replication role, not the rewind role.
pub fn cmd(s: &RewindSpec<'_>) -> Cmd {
    let port = s.source_port.to_string();
    let mut params = vec![
        ("host", s.source_address),
        ("port", &port),
        ("user", s.user),
        ("dbname", "postgres"),
        ("passfile", s.passfile),
        ("application_name", "pgrepl_rewind"),
    ];
    params.extend(s.tls.iter().map(|(k, v)| (*k, v.as_str())));
    let conn = super::conninfo(&params);
    let mut c = Cmd::new(format!("{}/pg_rewind", s.bin_dir))
        .args([
            "--target-pgdata",
            s.data_dir,
            "--source-server",
            &conn,
            "--progress",
        ])
        .env("LC_ALL", "C");
    if s.dry_run {
        c = c.arg("--dry-run");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergence_and_the_segments_after_it() {
        let l = "pg_rewind: servers diverged at WAL location 0/3000148 on timeline 1";
        assert_eq!(parse_divergence(l), Some((super::super::Lsn(0x3000148), 1)));
        assert_eq!(parse_divergence("pg_rewind: Done!"), None);
        let names = "000000010000000000000002\n000000010000000000000003\n000000010000000000000004\n000000020000000000000003\n00000002.history\narchive_status\n";
        assert_eq!(
            segments_from(names, 1, super::super::Lsn(0x3000148), 16 << 20),
            ["000000010000000000000003", "000000010000000000000004"]
        );
    }

    #[test]
    fn preconditions() {
        let mut c = ControlData {
            system_identifier: Some("1".into()),
            data_checksums: Some(false),
            wal_log_hints: Some(false),
            ..Default::default()
        };
        assert!(blocker(&c).unwrap().contains("neither"));
        c.wal_log_hints = Some(true);
        assert_eq!(blocker(&c), None);
    }

    #[test]
    fn argv_has_no_password() {
        let c = cmd(&RewindSpec {
            bin_dir: "/b",
            data_dir: "/d",
            source_address: "10.0.0.2",
            source_port: 5432,
            user: "pgrepl_rewind",
            passfile: "/d.pgpass",
            tls: &[],
            dry_run: true,
        });
        assert!(c.argv.contains(&"--dry-run".to_string()));
        assert!(c
            .argv
            .iter()
            .any(|a| a.contains("user=pgrepl_rewind") && a.contains("passfile=/d.pgpass")));
        assert!(!c.argv.iter().any(|a| a.contains("password")));
    }
}
