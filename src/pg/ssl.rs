//! A TLS login test: `psql` on a host, connecting over TCP the way a replica does
//! (`sslmode=verify-full`, `channel_binding=require`), printing the TLS version the server
//! negotiated. It proves the server's certificate is valid for its address under the CA bundle
//! the hosts trust, without any password in argv (libpq reads the 0600 passfile). No I/O here.

use crate::transport::Cmd;

/// The query: this connection's TLS version and cipher (`pg_stat_ssl`); `off` without TLS.
const QUERY: &str = "SELECT CASE WHEN ssl THEN version || ' ' || cipher ELSE 'off' END FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()";

/// `psql -X -A -t -w -d <conninfo> -c <query>` from `bin_dir`; `conninfo` carries host, port,
/// user, dbname, passfile and the TLS parameters.
pub fn login_cmd(bin_dir: &str, conninfo: &str) -> Cmd {
    Cmd::new(format!("{bin_dir}/psql"))
        .args(["-X", "-A", "-t", "-w", "-d", conninfo, "-c", QUERY])
        .env("LC_ALL", "C")
}

const SWAP_PAIR: &str = r#"set -e
mv -f -- "$1.pgrepl-new" "$1"
mv -f -- "$2.pgrepl-new" "$2""#;

/// Moves `<key>.pgrepl-new` and `<cert>.pgrepl-new` over `key` and `cert` in one process on
/// the host: a key and its certificate change together (a server that restarts between two
/// separate writes would find a key that is not its certificate's, and refuse to start).
pub fn swap_pair_cmd(key: &str, cert: &str) -> Cmd {
    Cmd::new("sh").args(["-c", SWAP_PAIR, "pgrepl-tls-pair", key, cert])
}

/// Exit status of [`presented_cmd`] when the host has no `openssl` program.
pub const NO_OPENSSL: i32 = 69;

const PRESENTED: &str = r#"command -v openssl >/dev/null 2>&1 || exit 69
timeout 10 openssl s_client -starttls postgres -connect "$1" </dev/null 2>/dev/null | openssl x509"#;

/// The certificate the server at `address:port` presents now (PEM on stdout), read on a host
/// with `openssl s_client -starttls postgres` (OpenSSL 1.1.1 or later), bounded by 10 s; exits
/// [`NO_OPENSSL`] when the host has no `openssl`.
pub fn presented_cmd(address: &str, port: u16) -> Cmd {
    let target = if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    };
    Cmd::new("sh")
        .args(["-c", PRESENTED, "pgrepl-tls-presented", &target])
        .env("LC_ALL", "C")
}

/// The first `FATAL`/`error` line of a failed login's stderr (libpq's words: `certificate
/// verify failed`, `server certificate for "x" does not match host name "y"`), else the last
/// line.
pub fn login_failure(stderr: &[String]) -> String {
    stderr
        .iter()
        .find(|l| l.contains("FATAL") || l.contains("error") || l.contains("SSL"))
        .or(stderr.last())
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "psql failed without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_cmd_keeps_the_conninfo_one_argument() {
        let c = login_cmd("/usr/lib/postgresql/15/bin", "host=a sslmode=verify-full");
        let argv = c.full_argv();
        assert!(argv.contains(&"host=a sslmode=verify-full".to_string()));
        assert!(argv.iter().any(|a| a.ends_with("/psql")));
    }

    #[test]
    fn a_key_and_its_certificate_move_in_one_command() {
        let argv = swap_pair_cmd("/d.tls/server.key", "/d.tls/server.crt").full_argv();
        assert_eq!(
            &argv[argv.len() - 2..],
            ["/d.tls/server.key", "/d.tls/server.crt"]
        );
        assert!(argv[2].contains("\"$1.pgrepl-new\" \"$1\"") && argv[2].contains("set -e"));
    }

    #[test]
    fn failure_line_is_libpq_s() {
        let e = vec![
            "psql: error: connection to server at \"198.18.1.2\", port 5432 failed: SSL error: certificate verify failed".to_string(),
        ];
        assert!(login_failure(&e).contains("certificate verify failed"));
    }
}
