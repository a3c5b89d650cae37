//! `pg_basebackup`: the argv that clones a replica, and its progress output.
//!
//! The password never appears here: libpq reads it from the 0600 file named by `PGPASSFILE`.
//! Nothing here runs it (`steps::clone` does).

use crate::transport::Cmd;

/// What a clone needs to know.
pub struct CloneSpec<'a> {
    /// Directory of the server binaries on the replica's host (`pg_basebackup` runs from it).
    pub bin_dir: &'a str,
    /// Where to copy on the replica's host: the staging `<data_dir>.pgrepl-new`, absent or empty.
    pub data_dir: &'a str,
    /// Address (IP or DNS name) of the upstream server to clone from.
    pub upstream_address: &'a str,
    /// TCP port of the upstream server.
    pub upstream_port: u16,
    /// The replication role to connect as.
    pub user: &'a str,
    /// The replica's physical slot on the upstream (`--slot`); it must exist already.
    pub slot: &'a str,
    /// Path on the replica's host of the 0600 password file libpq reads (`PGPASSFILE`).
    pub passfile: &'a str,
    /// `application_name` while cloning, so the base backup is recognisable in pg_stat_replication.
    pub application_name: &'a str,
    /// Tablespaces copied elsewhere than their upstream's directory: `(upstream's, here)`.
    pub tablespace_mapping: &'a [(String, String)],
    /// TLS parameters of the connection (`sslmode=verify-full`, `sslrootcert`, …); empty
    /// without TLS.
    pub tls: &'a [(&'static str, String)],
}

/// `--tablespace-mapping=OLD=NEW`, with `=` in either path escaped as `\=` (pg_basebackup's rule).
pub fn tablespace_mapping(old: &str, new: &str) -> String {
    let esc = |p: &str| p.replace('=', "\\=");
    format!("--tablespace-mapping={}={}", esc(old), esc(new))
}

/// `pg_basebackup -X stream -c fast -S <slot> -P`: WAL streamed alongside the copy on the
/// replica's own slot, a fast checkpoint (no wait for a spread one), progress on stderr.
/// `-w` never prompts: no password file entry means a clear failure, not a hang.
pub fn clone_cmd(s: &CloneSpec<'_>) -> Cmd {
    let port = s.upstream_port.to_string();
    let mut params = vec![
        ("host", s.upstream_address),
        ("port", &port),
        ("user", s.user),
        ("application_name", s.application_name),
    ];
    params.extend(s.tls.iter().map(|(k, v)| (*k, v.as_str())));
    let conn = super::conninfo(&params);
    Cmd::new(format!("{}/pg_basebackup", s.bin_dir))
        .args([
            "--pgdata",
            s.data_dir,
            "--dbname",
            &conn,
            "--wal-method=stream",
            "--checkpoint=fast",
        ])
        .args(["--slot", s.slot, "--progress", "--no-password"])
        .args(
            s.tablespace_mapping
                .iter()
                .map(|(old, new)| tablespace_mapping(old, new)),
        )
        .env("PGPASSFILE", s.passfile)
        .env("LC_ALL", "C")
}

/// The hint for a failed `pg_basebackup`, from the lines of its stderr, when they say what
/// went wrong on the replica's side; `None`: look at the connection to the upstream.
pub fn failure_hint(stderr: &[String]) -> Option<String> {
    let line = |needle: &str| stderr.iter().find(|l| l.contains(needle));
    if let Some(l) = line("exists but is not empty") {
        return Some(format!("a directory the copy goes into is not empty ({}): move its contents aside, then re-run", l.trim()));
    }
    if let Some(l) = line("Permission denied") {
        return Some(format!("the OS user cannot write where the copy goes ({}): fix that directory's owner or mode, then re-run", l.trim()));
    }
    if let Some(l) = line("is active for PID") {
        return Some(format!("another connection streams on the replica's slot ({}): find it in pg_stat_replication on the upstream and stop it, then re-run", l.trim()));
    }
    None
}

/// One progress report: `12345/67890 kB (18%), 0/1 tablespace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Copied so far, in kB (1024 bytes).
    pub done_kb: u64,
    /// Estimated total, in kB (1024 bytes); the copy can end above it.
    pub total_kb: u64,
}

/// Parses a pg_basebackup `--progress` line (with or without the trailing tablespace path).
pub fn parse_progress(line: &str) -> Option<Progress> {
    let line = line.trim();
    let (done, rest) = line.split_once('/')?;
    let done_kb = done.trim().parse().ok()?;
    let total = rest.split_whitespace().next()?;
    let unit = rest.split_whitespace().nth(1)?;
    if unit != "kB" {
        return None;
    }
    Some(Progress {
        done_kb,
        total_kb: total.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines() {
        assert_eq!(
            parse_progress("22995/22995 kB (100%), 1/1 tablespace"),
            Some(Progress {
                done_kb: 22995,
                total_kb: 22995
            })
        );
        assert_eq!(
            parse_progress(
                "   0/22987 kB (0%), 0/1 tablespace (...ib/postgresql/15/main/base/1/1255)"
            ),
            Some(Progress {
                done_kb: 0,
                total_kb: 22987
            })
        );
        assert_eq!(
            parse_progress("pg_basebackup: initiating base backup"),
            None
        );
        assert_eq!(parse_progress("waiting for checkpoint"), None);
    }

    #[test]
    fn hints_follow_the_replicas_side_of_a_failure() {
        let tail = |l: &str| {
            vec![
                "pg_basebackup: error: some context".to_string(),
                l.to_string(),
            ]
        };
        let h = failure_hint(&tail(
            "pg_basebackup: error: directory \"/srv/ts\" exists but is not empty",
        ));
        assert!(h.unwrap().contains("not empty"));
        let h = failure_hint(&tail(
            "pg_basebackup: error: could not create directory \"/srv/ts/x\": Permission denied",
        ));
        assert!(h.unwrap().contains("owner or mode"));
        assert_eq!(failure_hint(&tail("connection refused")), None);
    }

    #[test]
    fn clone_argv_has_no_password_and_uses_the_slot() {
        let c = clone_cmd(&CloneSpec {
            bin_dir: "/usr/lib/postgresql/15/bin",
            data_dir: "/var/lib/postgresql/15/main",
            upstream_address: "10.0.0.1",
            upstream_port: 5432,
            user: "replicator",
            slot: "pg2",
            passfile: "/var/lib/postgresql/15/main.pgpass",
            tls: &[],
            application_name: "pg2",
            tablespace_mapping: &[("/srv/ts=1".into(), "/srv/ts=1/.pgrepl-new".into())],
        });
        assert_eq!(c.argv[0], "/usr/lib/postgresql/15/bin/pg_basebackup");
        assert!(c.argv.windows(2).any(|w| w[0] == "--slot" && w[1] == "pg2"));
        assert!(!c.argv.iter().any(|a| a.contains("password=")));
        assert!(c.env.iter().any(|(k, _)| k == "PGPASSFILE"));
        assert!(c
            .argv
            .iter()
            .any(|a| a == r"--tablespace-mapping=/srv/ts\=1=/srv/ts\=1/.pgrepl-new"));
    }
}
