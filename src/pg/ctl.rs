//! `initdb` and `pg_ctl`: argv builders. Service control goes through these functions so that a
//! later `systemctl` or Debian `pg_ctlcluster` backend replaces one file, not the operations.
//! Builds argv only: nothing here runs a command or decides when to.

use crate::transport::Cmd;

/// Where one server lives on its host.
#[derive(Debug, Clone)]
pub struct Server<'a> {
    /// Directory of the server binaries on the host (`initdb`, `pg_ctl`).
    pub bin_dir: &'a str,
    /// Absolute path of the data directory on the host (`--pgdata`).
    pub data_dir: &'a str,
    /// pg_ctl's `-l` file: the server's output until (and unless) a logging collector takes over.
    pub log_file: &'a str,
}

/// `initdb` with data checksums (so pg_rewind is always possible), peer auth on the socket and
/// SCRAM on TCP until pgrepl's own pg_hba.conf is installed.
pub fn initdb(s: &Server<'_>, superuser: &str, locale: &str, encoding: &str) -> Cmd {
    Cmd::new(format!("{}/initdb", s.bin_dir))
        .args([
            "--pgdata",
            s.data_dir,
            "--data-checksums",
            "--username",
            superuser,
        ])
        .args(["--auth-local=peer", "--auth-host=scram-sha-256"])
        .args(["--locale", locale, "--encoding", encoding])
        .env("LC_ALL", "C")
}

/// `pg_ctl start -w`: returns once the server accepts connections (or `timeout_s` passes).
pub fn start(s: &Server<'_>, timeout_s: u64) -> Cmd {
    Cmd::new(format!("{}/pg_ctl", s.bin_dir))
        .args([
            "start", "--pgdata", s.data_dir, "--log", s.log_file, "--wait",
        ])
        .args(["--timeout", &timeout_s.to_string(), "--silent"])
        .env("LC_ALL", "C")
}

/// `pg_ctl start -w` with `-c name=value` server options that override postgresql.conf for
/// this start only (a standby's hot-standby settings while it replays a lower value). pg_ctl
/// hands `-o` to a shell: the names are `pg::hot_standby`'s constants and the values numbers.
pub fn start_overriding(s: &Server<'_>, timeout_s: u64, overrides: &[(&str, u64)]) -> Cmd {
    let opts = overrides
        .iter()
        .filter(|(n, _)| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(|(n, v)| format!("-c {n}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    start(s, timeout_s).args(["-o", &opts])
}

/// `pg_ctl stop -m fast -w`.
pub fn stop(s: &Server<'_>, timeout_s: u64) -> Cmd {
    Cmd::new(format!("{}/pg_ctl", s.bin_dir))
        .args(["stop", "--pgdata", s.data_dir, "--mode=fast", "--wait"])
        .args(["--timeout", &timeout_s.to_string(), "--silent"])
        .env("LC_ALL", "C")
}

/// `pg_ctl stop -m immediate -w`: the fallback when a fast shutdown fails.
pub fn stop_immediate(s: &Server<'_>, timeout_s: u64) -> Cmd {
    Cmd::new(format!("{}/pg_ctl", s.bin_dir))
        .args(["stop", "--pgdata", s.data_dir, "--mode=immediate", "--wait"])
        .args(["--timeout", &timeout_s.to_string(), "--silent"])
        .env("LC_ALL", "C")
}

/// `pg_ctl status`: exit 0 while a server runs on the data directory.
pub fn status(s: &Server<'_>) -> Cmd {
    Cmd::new(format!("{}/pg_ctl", s.bin_dir))
        .args(["status", "--pgdata", s.data_dir])
        .env("LC_ALL", "C")
}

/// `pg_ctl kill KILL <pid>`: SIGKILL to a postmaster that does not answer (a frozen server
/// cannot act on the shutdown signals `pg_ctl stop` sends).
pub fn kill_postmaster(bin_dir: &str, pid: u32) -> Cmd {
    Cmd::new(format!("{bin_dir}/pg_ctl"))
        .args(["kill", "KILL", &pid.to_string()])
        .env("LC_ALL", "C")
}

/// The postmaster's PID: the first line of `postmaster.pid`.
pub fn parse_postmaster_pid(pid_file: &str) -> Option<u32> {
    pid_file
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// `postgres --version`, to learn the installed major version.
pub fn version(bin_dir: &str) -> Cmd {
    Cmd::new(format!("{bin_dir}/postgres"))
        .arg("--version")
        .env("LC_ALL", "C")
}

const LOG_SIZE: &str = r#"if [ -f "$1" ]; then wc -c < "$1"; else echo 0; fi"#;

/// The size in bytes of the server log `log_file` (0 when absent): where a start's lines begin.
pub fn log_size(log_file: &str) -> Cmd {
    Cmd::new("sh").args(["-c", LOG_SIZE, "pgrepl-log-size", log_file])
}

const LOG_SINCE: &str = r#"[ -f "$1" ] && tail -c +"$2" -- "$1" | tail -n 200"#;

/// The server log `log_file` from byte `offset` on (its last 200 lines).
pub fn log_since(log_file: &str, offset: u64) -> Cmd {
    Cmd::new("sh").args([
        "-c",
        LOG_SINCE,
        "pgrepl-log",
        log_file,
        &(offset + 1).to_string(),
    ])
}

/// What a failed start's server log says: its last FATAL (or PANIC) line with the LOG, HINT,
/// WARNING and DETAIL lines just before it (the cause of "could not create any TCP/IP
/// sockets" is the "could not bind … Address already in use" before it), without timestamps.
pub fn fatal_lines(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let Some(at) = lines
        .iter()
        .rposition(|l| l.contains("FATAL:") || l.contains("PANIC:"))
    else {
        return Vec::new();
    };
    let level = |l: &str| {
        ["LOG:", "HINT:", "WARNING:", "DETAIL:", "FATAL:", "PANIC:"]
            .iter()
            .find_map(|m| l.find(m))
            .map(|i| l[i..].split_whitespace().collect::<Vec<_>>().join(" "))
    };
    let from = at.saturating_sub(3);
    let mut out: Vec<String> = Vec::new();
    for l in &lines[from..at] {
        match level(l) {
            Some(x) if !x.starts_with("LOG: database system") => out.push(x),
            _ => out.clear(),
        }
    }
    out.extend(level(lines[at]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_start_is_told_by_its_fatal_line_and_cause() {
        let log = "2026-11-30 10:00:00 UTC [1] LOG:  starting PostgreSQL 15.18\n\
                   2026-11-30 10:00:00 UTC [1] LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use\n\
                   2026-11-30 10:00:00 UTC [1] HINT:  Is another postmaster already running on port 5432?\n\
                   2026-11-30 10:00:00 UTC [1] WARNING:  could not create listen socket for \"127.0.0.1\"\n\
                   2026-11-30 10:00:00 UTC [1] FATAL:  could not create any TCP/IP sockets\n\
                   2026-11-30 10:00:00 UTC [1] LOG:  database system is shut down\n";
        assert_eq!(
            fatal_lines(log),
            [
                "LOG: could not bind IPv4 address \"127.0.0.1\": Address already in use",
                "HINT: Is another postmaster already running on port 5432?",
                "WARNING: could not create listen socket for \"127.0.0.1\"",
                "FATAL: could not create any TCP/IP sockets"
            ]
        );
        assert!(fatal_lines("LOG: ok\n").is_empty());
    }

    #[test]
    fn postmaster_pid_is_the_first_line() {
        assert_eq!(
            parse_postmaster_pid("4242\n/var/lib/pg\n1700000000\n"),
            Some(4242)
        );
        assert_eq!(parse_postmaster_pid(""), None);
        assert_eq!(parse_postmaster_pid("0\n"), None);
        assert_eq!(parse_postmaster_pid("x\n"), None);
    }

    /// A restart takes postgresql.conf's settings only, never the options of the last start.
    #[test]
    fn restart_does_not_reuse_start_options() {
        let s = Server {
            bin_dir: "/b",
            data_dir: "/d",
            log_file: "/d.log",
        };
        // A restart is a stop and a plain start, which never reuses postmaster.opts.
        assert!(!start(&s, 5).full_argv().contains(&"-o".to_string()));
        let argv = start_overriding(&s, 5, &[("max_connections", 200), ("x; rm", 1)]).full_argv();
        assert!(argv.ends_with(&["-o".to_string(), "-c max_connections=200".to_string()]));
    }

    #[test]
    fn kill_is_argv() {
        assert_eq!(
            kill_postmaster("/usr/lib/postgresql/15/bin", 77).full_argv(),
            [
                "env",
                "LC_ALL=C",
                "/usr/lib/postgresql/15/bin/pg_ctl",
                "kill",
                "KILL",
                "77"
            ]
        );
    }
}
