//! Checks of each host beyond its data directory, all pure, from the gathered facts: the
//! inventory's settings as the host's server binaries judge them, host-name addresses as the
//! host's resolver maps them back (pg_hba.conf), and what `init` will write or bind there — the
//! directory that holds the data directory, the socket directory, the port. `check` prints the
//! same problems, so what passes `check` does not fail `init` for these reasons.

use crate::error::Problem;
use crate::inventory::{Host, Inventory};
use crate::pg::datadir::DirState;
use crate::pg::hostdirs;
use crate::steps::facts::HostFacts;

use super::preflight::{parent_of, problem};

/// The inventory's settings that a host's server binaries refuse, each once (at the first host
/// that refused it), at its position in the inventory file; and the hosts where they could not
/// be checked. A refused setting would keep the server from starting after the files are
/// installed, so it stops `init` before any change.
pub(super) fn settings_problems(inv: &Inventory, facts: &[HostFacts]) -> Vec<Problem> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    let mut problems = Vec::new();
    for f in facts {
        if let Some(why) = &f.no_ssl {
            problems.push(no_ssl_build(inv, &f.name, why));
        }
        match &f.refused_settings {
            Some(Ok(refused)) => {
                for (name, why) in refused {
                    if seen.contains(&(name.as_str(), why.as_str())) {
                        continue;
                    }
                    seen.push((name, why));
                    let at = match inv.setting_positions.get(name) {
                        Some((line, col)) => format!(
                            "{}:{line}:{col}: postgres.settings.{name}",
                            inv.file.display()
                        ),
                        None => format!(
                            "{}: setting {name} (a role's or host's settings)",
                            inv.file.display()
                        ),
                    };
                    problems.push(problem(
                        &f.name,
                        "settings",
                        format!("{at}: the server refuses it: {why}"),
                        Some(format!(
                            "correct or remove {name} under postgres.settings in {}",
                            inv.file.display()
                        )),
                    ));
                }
            }
            Some(Err(why)) => problems.push(problem(
                &f.name,
                "settings",
                format!("postgres.settings could not be checked: {why}"),
                Some(format!(
                    "run {}/postgres --version on {} as the PostgreSQL OS user",
                    inv.host(&f.name)
                        .map(|h| h.bin_dir.as_str())
                        .unwrap_or("bin_dir"),
                    f.name
                )),
            )),
            None => {}
        }
    }
    problems
}

/// TLS is on, and the host's server binaries are built without SSL (`ssl = on` refused).
fn no_ssl_build(inv: &Inventory, host: &str, why: &str) -> Problem {
    let bin = inv
        .host(host)
        .map(|h| h.bin_dir.as_str())
        .unwrap_or("bin_dir");
    problem(
        host,
        "tls",
        format!("TLS is on (the default), but the PostgreSQL in {bin} is built without SSL: {why}"),
        Some(format!(
            "install a PostgreSQL built with OpenSSL (every distribution package is), or write `tls: off` in {} to run without TLS",
            inv.file.display()
        )),
    )
}

/// Addresses that are host names, which a host's resolver does not map back to the name:
/// PostgreSQL would match none of their pg_hba.conf lines (`pg::hba`). Each (name, reason)
/// once, at the first host that saw it.
pub(super) fn hba_name_problems(inv: &Inventory, facts: &[HostFacts]) -> Vec<Problem> {
    let mut seen: Vec<&str> = Vec::new();
    let mut problems = Vec::new();
    for f in facts {
        for m in &f.hba_names {
            if seen.contains(&m.why.as_str()) {
                continue;
            }
            seen.push(&m.why);
            let hosts: Vec<&str> = inv
                .hosts
                .iter()
                .filter(|h| h.address == m.name)
                .map(|h| h.name.as_str())
                .collect();
            let use_ip =
                m.ip.as_ref()
                    .map(|ip| format!("address: {ip} for {}", hosts.join(", ")))
                    .unwrap_or_else(|| "an IP address in address:".into());
            problems.push(problem(
                &f.name,
                "address",
                format!(
                    "address {} is a host name in pg_hba.conf, which PostgreSQL matches only when the client's IP reverse-resolves to it; on {}: {}",
                    m.name, f.name, m.why
                ),
                Some(format!(
                    "use {use_ip} in {}, or make the name resolve both ways (DNS A and PTR records, or its IP's first name in /etc/hosts)",
                    inv.file.display()
                )),
            ));
        }
    }
    problems
}

/// What `init` needs of `h` beyond its data directory's contents: the directory that holds it
/// writable (password file, server log, lock, clone staging), the data directory writable, the
/// socket directory usable or creatable, and — when its server does not run yet — its port and
/// Unix socket free.
pub(super) fn dirs_problems(inv: &Inventory, h: &Host, f: &HostFacts) -> Vec<Problem> {
    let Some(d) = &f.dirs else {
        return Vec::new();
    };
    let user = &inv.os_user;
    let mut out = Vec::new();
    let absent = matches!(f.data_dir, Some(DirState::Absent { .. }));
    if d.parent != "writable" && !absent {
        let parent = parent_of(&h.data_dir);
        out.push(problem(
            &h.name,
            "data_dir",
            format!("{parent}, which holds {}, is {} by {user}: pgrepl keeps the password file, server log, lock file and clone staging beside the data directory", h.data_dir, if d.parent == "absent" { "missing, so not writable" } else { "not writable" }),
            Some(format!("make it the OS user's: install -d -o {user} -m 0750 {parent}")),
        ));
    }
    if d.data_dir_unwritable {
        out.push(problem(
            &h.name,
            "data_dir",
            format!("{} is not writable by {user}", h.data_dir),
            Some(format!(
                "chown -R {user} {dir}; chmod 0700 {dir}",
                dir = h.data_dir
            )),
        ));
    }
    if let Some((state, at)) = &d.socket_problem {
        let (message, fix) = match state.as_str() {
            "unwritable" => (
                format!("socket directory {at} is not writable by {user}"),
                format!("create it for the OS user: install -d -o {user} -m 2775 {}", h.socket_dir),
            ),
            // The directory may exist below it: the OS user cannot tell, and cannot reach it.
            "unsearchable" => (
                format!("{user} cannot enter {at} (no search permission), so it cannot reach the socket directory {} below it", h.socket_dir),
                format!("let the OS user through: chmod o+x {at} (or chgrp {user} {at}; chmod g+x {at})"),
            ),
            _ => (
                format!("socket directory {} does not exist and {at} is not writable by {user}, so init cannot create it", h.socket_dir),
                format!("create it for the OS user: install -d -o {user} -m 2775 {}", h.socket_dir),
            ),
        };
        out.push(problem(&h.name, "socket_dir", message, Some(fix)));
    }
    if !f.running {
        out.extend(port_problems(inv, h, d));
    }
    out
}

/// A server about to start on `h` finds its TCP port or its Unix socket taken.
fn port_problems(inv: &Inventory, h: &Host, d: &hostdirs::HostDirs) -> Vec<Problem> {
    let mut out = Vec::new();
    let taken: Vec<String> = d
        .listeners
        .iter()
        .filter(|ip| hostdirs::collides(&h.address, ip))
        .map(|ip| ip.to_string())
        .collect();
    let other_port = format!(
        "or give {} another port (hosts[].port or postgres.port in {})",
        h.name,
        inv.file.display()
    );
    if !taken.is_empty() {
        out.push(problem(
            &h.name,
            "port",
            format!(
                "port {} is already in use on {} (listening on {}): the server could not bind {}",
                h.port,
                h.name,
                taken.join(", "),
                h.address
            ),
            Some(format!(
                "find what listens there (ss -ltnp 'sport = :{}') and stop it, {other_port}",
                h.port
            )),
        ));
    }
    if let Some(pid) = d.socket_lock_pid {
        out.push(problem(
            &h.name,
            "port",
            format!(
                "process {pid} holds the Unix socket {}/.s.PGSQL.{} (another server on the same port and socket directory)",
                h.socket_dir, h.port
            ),
            Some(format!("stop process {pid}, {other_port}")),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::hba::Mismatch;

    const INV: &str = "cluster: c\npostgres:\n  version: 15\n  settings:\n    max_conections: '50'\nreplication: {password_env: X}\nhosts:\n  - {name: p, address: 10.0.0.1, role: primary}\n  - {name: r1, address: vm, role: replica}\n";

    fn inv() -> Inventory {
        crate::inventory::parse(INV, std::path::Path::new("i.yml")).unwrap()
    }

    fn fact(name: &str) -> HostFacts {
        HostFacts {
            name: name.into(),
            reach: Some(Ok("local".into())),
            ..HostFacts::default()
        }
    }

    #[test]
    fn a_refused_setting_is_reported_once_at_its_place() {
        let refused = vec![("max_conections".to_string(), "unrecognized".to_string())];
        let mut facts = vec![fact("p"), fact("r1")];
        facts[0].refused_settings = Some(Ok(refused.clone()));
        facts[1].refused_settings = Some(Ok(refused));
        let p = settings_problems(&inv(), &facts);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message.starts_with(
                "i.yml:5:21: postgres.settings.max_conections: the server refuses it: unrecognized"
            ),
            "{}",
            p[0].message
        );
        facts[1].refused_settings = Some(Err("no postgres".into()));
        assert_eq!(settings_problems(&inv(), &facts).len(), 2);
    }

    #[test]
    fn a_name_that_does_not_come_back_is_reported_once_with_its_ip() {
        let m = Mismatch {
            name: "vm".into(),
            why: "vm resolves to 127.0.0.1, which reverse-resolves to localhost".into(),
            ip: Some("127.0.0.1".into()),
        };
        let mut facts = vec![fact("p"), fact("r1")];
        facts[0].hba_names = vec![m.clone()];
        facts[1].hba_names = vec![m];
        let p = hba_name_problems(&inv(), &facts);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0]
            .hint
            .as_deref()
            .unwrap()
            .starts_with("use address: 127.0.0.1 for r1 in i.yml"));
    }

    #[test]
    fn directories_and_ports_init_needs() {
        let inv = inv();
        let h = inv.host("p").unwrap();
        let mut f = fact("p");
        f.data_dir = Some(DirState::Empty);
        f.dirs = Some(hostdirs::HostDirs {
            parent: "unwritable".into(),
            data_dir_unwritable: true,
            socket_problem: Some(("uncreatable".into(), "/var/run".into())),
            listeners: vec!["10.0.0.1".parse().unwrap(), "10.0.0.9".parse().unwrap()],
            socket_lock_pid: Some(7),
        });
        let checks: Vec<String> = dirs_problems(&inv, h, &f)
            .iter()
            .map(|p| format!("{} {}", p.check, p.message))
            .collect();
        assert_eq!(checks.len(), 5, "{checks:?}");
        assert!(checks[0].starts_with("data_dir /var/lib/postgresql/15, which holds"));
        assert!(checks[3].contains("port 5432 is already in use on p (listening on 10.0.0.1)"));
        f.running = true;
        assert_eq!(
            dirs_problems(&inv, h, &f).len(),
            3,
            "a running server's port is its own"
        );
        f.data_dir = Some(DirState::Absent {
            parent_writable: false,
        });
        assert_eq!(
            dirs_problems(&inv, h, &f).len(),
            2,
            "an absent data directory says it itself"
        );
    }
}
