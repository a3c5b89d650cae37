//! Routers' vocabulary without I/O: the argv pgrepl runs on a router's machine (HAProxy's
//! check, master-worker start and graceful reload; PgBouncer's daemon start and reload; the
//! pid-file probe), the parsers of what comes back (the probe's output, HAProxy's stats CSV,
//! PgBouncer's `SHOW DATABASES`), and `RouterState`, what `status` shows of a route.
//!
//! The processes run as the OS user, daemonized, with their pid files under the router's `dir`.

use serde::Serialize;

use crate::inventory::{Router, RouterKind};
use crate::render::Route;
use crate::transport::Cmd;

/// The pid file of HAProxy's master.
pub fn haproxy_pidfile(r: &Router) -> String {
    format!("{}/haproxy.pid", r.dir)
}

/// The pid file of a PgBouncer route's process (also written in its ini).
pub fn pgbouncer_pidfile(r: &Router, route: Route) -> String {
    format!("{}/pgbouncer-{}.pid", r.dir, route.as_str())
}

/// The processes of a router: (what, config file, pid file).
pub fn processes(r: &Router) -> Vec<(String, String, String)> {
    match r.kind {
        RouterKind::Haproxy => vec![(
            "haproxy".into(),
            format!("{}/haproxy.cfg", r.dir),
            haproxy_pidfile(r),
        )],
        RouterKind::Pgbouncer => crate::render::routes(r)
            .into_iter()
            .map(|(route, _)| {
                (
                    format!("pgbouncer {}", route.as_str()),
                    format!("{}/{}", r.dir, crate::render::pgbouncer_ini(route)),
                    pgbouncer_pidfile(r, route),
                )
            })
            .collect(),
    }
}

/// `haproxy -c -q -f <cfg>`: validates a configuration (before a start or a reload).
pub fn haproxy_check(r: &Router, cfg: &str) -> Cmd {
    Cmd::new(&r.bin).args(["-c", "-q", "-f", cfg])
}

/// HAProxy in master-worker mode, daemonized, its master's pid in the pid file.
pub fn haproxy_start(r: &Router, cfg: &str, pidfile: &str) -> Cmd {
    Cmd::new(&r.bin).args(["-W", "-D", "-p", pidfile, "-f", cfg])
}

/// PgBouncer daemonized (its pid file and log are in its ini).
pub fn pgbouncer_start(r: &Router, ini: &str) -> Cmd {
    Cmd::new(&r.bin).args(["-d", "-q", ini])
}

/// A graceful reload: SIGUSR2 to HAProxy's master (it re-reads the file and starts new
/// workers; the old ones finish their connections), SIGHUP to PgBouncer (re-reads its ini).
pub fn reload(kind: RouterKind, pid: u32) -> Cmd {
    let sig = match kind {
        RouterKind::Haproxy => "USR2",
        RouterKind::Pgbouncer => "HUP",
    };
    Cmd::new("kill").args(["-s", sig, &pid.to_string()])
}

/// `mkdir -p -m 0700` the router's directory and PgBouncer's socket directories.
pub fn make_dirs(r: &Router) -> Cmd {
    let mut dirs = vec![r.dir.clone()];
    if r.kind == RouterKind::Pgbouncer {
        dirs.extend(
            crate::render::routes(r)
                .into_iter()
                .map(|(route, _)| format!("{}/{}", r.dir, route.as_str())),
        );
    }
    Cmd::new("mkdir").args(["-p", "-m", "0700"]).args(dirs)
}

/// Before `init`: can the OS user create or write `$1` (the router's `dir`), and which of the
/// ports `$2…` have a TCP listener (`/proc/net/tcp*`). A fixed script; values are positional.
const PREFLIGHT: &str = r#"d=$1; shift
a=$d
while [ ! -e "$a" ]; do a=$(dirname -- "$a"); done
if [ -d "$d" ]; then
  if [ -w "$d" ] && [ -x "$d" ]; then echo "dir ok"; else echo "dir unwritable $d"; fi
elif [ -d "$a" ] && [ -w "$a" ] && [ -x "$a" ]; then echo "dir ok"
else echo "dir uncreatable $a"; fi
for port in "$@"; do
  hex=$(printf ':%04X' "$port")
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    awk -v p="$hex" -v port="$port" '$4 == "0A" && substr($2, length($2) - 4) == p { print "listen", port, substr($2, 1, length($2) - 5) }' "$f"
  done
done"#;

/// The preflight probe of a router's machine (see [`parse_preflight`]).
pub fn preflight_probe(r: &Router) -> Cmd {
    let ports = [Some(r.ports.write), r.ports.read, r.ports.stats];
    Cmd::new("sh")
        .args(["-c", PREFLIGHT, "pgrepl-router-preflight", &r.dir])
        .args(ports.into_iter().flatten().map(|p| p.to_string()))
        .env("LC_ALL", "C")
}

/// (port, address) of each TCP listener found.
pub type Listeners = Vec<(u16, std::net::IpAddr)>;

/// What the preflight probe found: the directory at fault (`unwritable` or `uncreatable`, and
/// the directory), and each (port, address) with a listener.
pub fn parse_preflight(out: &str) -> (Option<(String, String)>, Listeners) {
    let mut dir = None;
    let mut listeners = Vec::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["dir", state @ ("unwritable" | "uncreatable"), at] => {
                dir = Some((state.to_string(), at.to_string()))
            }
            ["listen", port, hex] => {
                if let (Ok(p), Some(ip)) = (port.parse(), crate::pg::hostdirs::proc_net_addr(hex)) {
                    listeners.push((p, ip));
                }
            }
            _ => {}
        }
    }
    (dir, listeners)
}

/// Everything pgrepl puts under a router's `dir`: (files, directories), for `destroy`. Only
/// these are removed (`dir` may be a directory of the user's), the directories only if empty.
pub fn owned_paths(r: &Router) -> (Vec<String>, Vec<String>) {
    let d = &r.dir;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    match r.kind {
        RouterKind::Haproxy => {
            for f in [
                "haproxy.cfg",
                "haproxy.cfg.next",
                "haproxy.pid",
                "haproxy.sock",
            ] {
                files.push(format!("{d}/{f}"));
            }
        }
        RouterKind::Pgbouncer => {
            files.push(format!("{d}/{}", crate::render::USERLIST));
            files.push(format!("{d}/{}.next", crate::render::USERLIST));
            files.push(format!("{d}/{}", crate::render::ROUTER_CA));
            for (route, port) in crate::render::routes(r) {
                let ini = crate::render::pgbouncer_ini(route);
                let n = route.as_str();
                files.extend([
                    format!("{d}/{ini}"),
                    format!("{d}/{ini}.next"),
                    format!("{d}/pgbouncer-{n}.pid"),
                    format!("{d}/pgbouncer-{n}.log"),
                    format!("{d}/{n}/.s.PGSQL.{port}"),
                    format!("{d}/{n}/.s.PGSQL.{port}.lock"),
                ]);
                dirs.push(format!("{d}/{n}"));
            }
        }
    }
    dirs.push(d.clone());
    (files, dirs)
}

/// `rm -f` the router's files (see [`owned_paths`]).
pub fn remove_files(files: &[String]) -> Cmd {
    Cmd::new("rm")
        .args(["-f", "--"])
        .args(files.iter().cloned())
}

/// Removes each directory in `$@` that exists and is empty (deepest first); one that is missing
/// is nothing to do (a router `init` never reached), one that holds other files is kept.
const REMOVE_DIRS: &str = r#"for d do
  if [ -d "$d" ]; then rmdir --ignore-fail-on-non-empty -- "$d" || exit 1; fi
done"#;

/// `rmdir` the router's directories that exist and are empty now (deepest first).
pub fn remove_dirs(dirs: &[String]) -> Cmd {
    Cmd::new("sh")
        .args(["-c", REMOVE_DIRS, "pgrepl-rmdir"])
        .args(dirs.iter().cloned())
}

/// Ends a router process: SIGTERM (HAProxy's master stops its workers; PgBouncer shuts down).
pub fn stop(pid: u32) -> Cmd {
    Cmd::new("kill").args(["-s", "TERM", &pid.to_string()])
}

/// Prints the pid in `$1` and that process's name when it runs (nothing otherwise). A fixed
/// script: the pid file is a positional parameter.
const PID_PROBE: &str = r#"pid=$(cat -- "$1" 2>/dev/null) || exit 0
case "$pid" in ''|*[!0-9]*) exit 0;; esac
comm=$(cat "/proc/$pid/comm" 2>/dev/null) || exit 0
printf '%s %s\n' "$pid" "$comm""#;

/// The probe of a pid file (see [`running_pid`]).
pub fn pid_probe(pidfile: &str) -> Cmd {
    Cmd::new("sh").args(["-c", PID_PROBE, "pgrepl-pid", pidfile])
}

/// The pid of a running `kind` process from [`pid_probe`]'s output; `None` when the file is
/// missing or stale (no such process, or another program reuses the pid).
pub fn running_pid(kind: RouterKind, out: &str) -> Option<u32> {
    let (pid, comm) = out.trim().split_once(' ')?;
    let want = match kind {
        RouterKind::Haproxy => "haproxy",
        RouterKind::Pgbouncer => "pgbouncer",
    };
    (comm == want).then(|| pid.parse().ok()).flatten()
}

/// One node a route reaches, as the router reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RouteTarget {
    /// The inventory host, when the address and port are one's.
    pub host: Option<String>,
    /// Where the router sends connections.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// HAProxy's health-check verdict (`UP`, `DOWN`, ...); none for PgBouncer.
    pub status: Option<String>,
}

/// What a router's route looks like from outside (`status`).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RouterState {
    /// The router's name.
    pub router: String,
    /// haproxy or pgbouncer.
    pub kind: RouterKind,
    /// write or read.
    pub route: Route,
    /// The route's port on the router's address.
    pub port: u16,
    /// Whether the router answered (stats page or console).
    pub reachable: bool,
    /// Why not, when it did not.
    pub error: Option<String>,
    /// The nodes the route points at.
    pub targets: Vec<RouteTarget>,
}

/// HAProxy's stats CSV (`/;csv`): the servers of backend `backend` as (name, address, port,
/// status). The first line is the header (`# pxname,svname,...`).
pub fn parse_haproxy_csv(csv: &str, backend: &str) -> Vec<(String, String, u16, String)> {
    let mut lines = csv.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let idx = |n: &str| cols.iter().position(|c| *c == n);
    let (Some(px), Some(sv), Some(st), Some(addr)) =
        (idx("pxname"), idx("svname"), idx("status"), idx("addr"))
    else {
        return Vec::new();
    };
    lines
        .map(|l| l.split(',').collect::<Vec<&str>>())
        .filter(|f| {
            f.len() > addr.max(st) && f[px] == backend && f[sv] != "BACKEND" && f[sv] != "FRONTEND"
        })
        .map(|f| {
            let (a, p) = split_hostport(f[addr]);
            (f[sv].to_string(), a, p, f[st].to_string())
        })
        .collect()
}

/// The body of a whole HTTP/1.x answer (HAProxy's stats page answers even an HTTP/1.0 request
/// with `Transfer-Encoding: chunked`), read with `httparse`; an answer other than 200 is an
/// error naming its status line.
pub fn http_body(raw: &[u8]) -> Result<String, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err("not a whole HTTP answer".into()),
    };
    if resp.code != Some(200) {
        return Err(format!(
            "answered {} {}",
            resp.code.unwrap_or(0),
            resp.reason.unwrap_or("")
        ));
    }
    let chunked = resp.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
    });
    let mut body = &raw[head..];
    if !chunked {
        return Ok(String::from_utf8_lossy(body).into_owned());
    }
    let mut out = Vec::new();
    loop {
        let (start, size) = match httparse::parse_chunk_size(body) {
            Ok(httparse::Status::Complete((i, n))) => (i, n as usize),
            _ => return Err("a broken chunked answer".into()),
        };
        if size == 0 {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        let end = start
            .checked_add(size)
            .filter(|e| *e <= body.len())
            .ok_or("a chunk runs past the answer")?;
        out.extend_from_slice(&body[start..end]);
        body = body.get(end + 2..).ok_or("a chunk without its line end")?;
    }
}

/// `10.0.0.1:5432` or `[fe80::1]:5432` → (address, port); port 0 when absent.
fn split_hostport(s: &str) -> (String, u16) {
    match s.rsplit_once(':') {
        Some((a, p)) => (
            a.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().unwrap_or(0),
        ),
        None => (s.to_string(), 0),
    }
}

/// PgBouncer's `SHOW DATABASES` rows (column name → value): the (address, port) pairs the
/// entries other than the console point at (a `host=` list gives several addresses).
pub fn parse_pgbouncer_databases(
    rows: &[std::collections::BTreeMap<String, String>],
) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for row in rows {
        if row.get("name").map(String::as_str) == Some("pgbouncer") {
            continue;
        }
        let port = row.get("port").and_then(|p| p.parse().ok()).unwrap_or(0);
        for a in row
            .get("host")
            .map(String::as_str)
            .unwrap_or("")
            .split(',')
            .filter(|a| !a.is_empty())
        {
            if !out.contains(&(a.to_string(), port)) {
                out.push((a.to_string(), port));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_pid_needs_the_right_program() {
        assert_eq!(running_pid(RouterKind::Haproxy, "123 haproxy\n"), Some(123));
        assert_eq!(running_pid(RouterKind::Haproxy, "123 bash\n"), None);
        assert_eq!(running_pid(RouterKind::Pgbouncer, ""), None);
    }

    #[test]
    fn haproxy_csv_lists_a_backends_servers() {
        let csv = "# pxname,svname,qcur,status,addr,\nwrite,FRONTEND,,OPEN,,\nwrite,pg1,0,UP,10.0.0.1:5432,\nwrite,BACKEND,0,UP,,\nread,pg2,0,DOWN,10.0.0.2:5432,\nread,pg3,0,UP,[fe80::3]:5432,\n";
        assert_eq!(
            parse_haproxy_csv(csv, "write"),
            vec![("pg1".into(), "10.0.0.1".into(), 5432, "UP".into())]
        );
        let read = parse_haproxy_csv(csv, "read");
        assert_eq!(read[0].3, "DOWN");
        assert_eq!((read[1].1.as_str(), read[1].2), ("fe80::3", 5432));
    }

    #[test]
    fn pgbouncer_databases_give_their_hosts() {
        let row = |name: &str, host: &str| -> std::collections::BTreeMap<String, String> {
            [("name", name), ("host", host), ("port", "5432")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let rows = [
            row("app", "10.0.0.2,10.0.0.3"),
            row("pgbouncer", ""),
            row("other", "10.0.0.2"),
        ];
        assert_eq!(
            parse_pgbouncer_databases(&rows),
            vec![("10.0.0.2".into(), 5432), ("10.0.0.3".into(), 5432)]
        );
    }

    #[test]
    fn commands_are_argv() {
        let inv = crate::inventory::parse("cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts: [{name: a, address: 10.0.0.1, role: primary}]\nrouters: [{name: pb, kind: pgbouncer, address: 10.0.0.9, ports: {write: 6432, read: 6433}}]\nroles: [{name: app, password_env: A}]\n", std::path::Path::new("t.yml")).unwrap();
        let r = &inv.routers[0];
        assert_eq!(
            make_dirs(r).argv,
            [
                "mkdir",
                "-p",
                "-m",
                "0700",
                "/var/lib/pgrepl/routers/pb",
                "/var/lib/pgrepl/routers/pb/write",
                "/var/lib/pgrepl/routers/pb/read"
            ]
        );
        assert_eq!(
            reload(RouterKind::Haproxy, 7).argv,
            ["kill", "-s", "USR2", "7"]
        );
        assert_eq!(processes(r).len(), 2);
    }

    #[test]
    fn http_bodies_plain_and_chunked() {
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n# px,\r\n3\r\nsv\n\r\n0\r\n\r\n";
        assert_eq!(http_body(chunked).unwrap(), "# px,sv\n");
        assert_eq!(http_body(b"HTTP/1.0 200 OK\r\n\r\nabc").unwrap(), "abc");
        assert!(http_body(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
            .unwrap_err()
            .contains("503"));
        assert!(
            http_body(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nff\r\nab").is_err()
        );
    }

    #[test]
    fn destroy_removes_only_pgrepls_files_then_empty_directories() {
        let inv = crate::inventory::parse("cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts: [{name: a, address: 10.0.0.1, role: primary}]\nrouters: [{name: pb, kind: pgbouncer, address: 10.0.0.9, dir: '/srv/r/{router}', ports: {write: 6432, read: 6433}}]\nroles: [{name: app, password_env: A}]\n", std::path::Path::new("t.yml")).unwrap();
        let (files, dirs) = owned_paths(&inv.routers[0]);
        assert!(files.contains(&"/srv/r/pb/userlist.txt".to_string()));
        assert!(files.contains(&"/srv/r/pb/write/.s.PGSQL.6432".to_string()));
        assert!(files.iter().all(|f| f.starts_with("/srv/r/pb/")));
        assert_eq!(dirs, ["/srv/r/pb/write", "/srv/r/pb/read", "/srv/r/pb"]);
        assert_eq!(
            remove_dirs(&dirs).argv[..4],
            ["sh", "-c", REMOVE_DIRS, "pgrepl-rmdir"]
        );
        assert_eq!(remove_files(&files).argv[..3], ["rm", "-f", "--"]);
    }

    #[test]
    fn preflight_probe_output_is_parsed() {
        let (dir, l) = parse_preflight(
            "dir uncreatable /var/lib\nlisten 5435 0100007F\nlisten 6432 00000000\n",
        );
        assert_eq!(dir, Some(("uncreatable".into(), "/var/lib".into())));
        assert_eq!(
            l,
            vec![
                (5435, "127.0.0.1".parse().unwrap()),
                (6432, "0.0.0.0".parse().unwrap())
            ]
        );
        assert_eq!(parse_preflight("dir ok\n").0, None);
    }
}
