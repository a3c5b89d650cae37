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

/// `pg_ctl restart -m fast -w`.
pub fn restart(s: &Server<'_>, timeout_s: u64) -> Cmd {
    Cmd::new(format!("{}/pg_ctl", s.bin_dir))
        .args([
            "restart",
            "--pgdata",
            s.data_dir,
            "--log",
            s.log_file,
            "--mode=fast",
            "--wait",
        ])
        .args(["--timeout", &timeout_s.to_string(), "--silent"])
        .env("LC_ALL", "C")
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

#[cfg(test)]
mod tests {
    use super::*;

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
