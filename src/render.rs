//! Renders postgresql.conf, pg_hba.conf and pg_ident.conf for each host (and each router's files,
//! `routers`) from minijinja
//! templates: embedded in the binary, overridable from a directory the user names. Rendering is
//! deterministic (sorted maps, no timestamps), fails on an undefined variable, and quotes every
//! postgresql.conf value through `pgquote`. Text only: it contacts no host and installs nothing
//! (`steps::config` does).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::inventory::{Host, Inventory, TransportKind};

mod routers;
pub use routers::{
    pgbouncer_ini, routes, targets, userlist, Route, RouterFile, ROUTER_CA, USERLIST,
};

/// The template files pgrepl renders, with their embedded defaults.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "postgresql.conf.j2",
        include_str!("../templates/postgresql.conf.j2"),
    ),
    (
        "pg_hba.conf.j2",
        include_str!("../templates/pg_hba.conf.j2"),
    ),
    (
        "pg_ident.conf.j2",
        include_str!("../templates/pg_ident.conf.j2"),
    ),
    (
        "haproxy.cfg.j2",
        include_str!("../templates/haproxy.cfg.j2"),
    ),
    (
        "haproxy-check.j2",
        include_str!("../templates/haproxy-check.j2"),
    ),
    (
        "pgbouncer.ini.j2",
        include_str!("../templates/pgbouncer.ini.j2"),
    ),
];

/// The rendered files of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Content of `postgresql.conf`.
    pub postgresql_conf: String,
    /// Content of `pg_hba.conf`: pgrepl's rules, then the inventory's `postgres.hba`.
    pub pg_hba_conf: String,
    /// Content of `pg_ident.conf`: the `pgrepl` map to the OS user (peer, local socket only).
    pub pg_ident_conf: String,
}

impl Rendered {
    /// (file name in the data directory, content).
    pub fn files(&self) -> [(&'static str, &str); 3] {
        [
            ("postgresql.conf", &self.postgresql_conf),
            ("pg_hba.conf", &self.pg_hba_conf),
            ("pg_ident.conf", &self.pg_ident_conf),
        ]
    }
}

/// The template environment.
pub struct Renderer {
    env: Environment<'static>,
}

#[derive(Serialize)]
struct Ctx<'a> {
    cluster: &'a str,
    version: u32,
    host: &'a Host,
    upstream: Option<&'a Host>,
    primary_conninfo: String,
    socket_dir: &'a str,
    os_user: &'a str,
    replication_user: &'a str,
    rewind_user: &'a str,
    monitor_user: &'a str,
    settings: std::collections::BTreeMap<String, String>,
    sync_names: String,
    sync_commit: &'a str,
    archive: Option<&'a crate::inventory::Archive>,
    hba: &'a [crate::inventory::HbaRule],
    replication_addresses: Vec<String>,
    app_clients: Vec<AppClient>,
    ident_users: Vec<String>,
    wal_senders: usize,
    replication_slots: usize,
    /// The host's TLS files when TLS is on (postgresql.conf `ssl_*`).
    tls: Option<crate::inventory::TlsFiles>,
    /// `hostssl` or `host` for the replication and rewind lines.
    net: &'static str,
    /// The replication lines' `clientcert=` option (empty without client certificates).
    clientcert_replication: &'static str,
    /// The rewind lines' `clientcert=` option.
    clientcert_rewind: &'static str,
}

/// One pg_hba.conf line for an application role: from a network in `roles[].clients`, or from
/// a router's address.
#[derive(Serialize)]
struct AppClient {
    user: String,
    address: String,
}

/// Every (role, address) pair the roles' lines need, in roles order, addresses sorted.
fn app_clients(inv: &Inventory) -> Vec<AppClient> {
    let routers: Vec<String> = inv
        .routers
        .iter()
        .flat_map(|r| hba_sources(&r.address))
        .collect();
    let mut out = Vec::new();
    for r in &inv.roles {
        let mut addrs: Vec<String> = r.clients.iter().cloned().chain(routers.clone()).collect();
        addrs.sort();
        addrs.dedup();
        out.extend(addrs.into_iter().map(|address| AppClient {
            user: r.name.clone(),
            address,
        }));
    }
    out
}

impl Renderer {
    /// Templates from `override_dir` win over the embedded ones, file by file.
    pub fn new(override_dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("valid syntax config"),
        );
        env.add_filter("pgquote", |v: String| -> Result<String, minijinja::Error> {
            crate::pg::quote_guc(&v)
                .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e))
        });
        env.add_filter("hostport", routers::hostport);
        let dir: Option<PathBuf> = override_dir.map(Path::to_path_buf);
        if let Some(d) = &dir {
            anyhow::ensure!(
                d.is_dir(),
                "template directory {} does not exist",
                d.display()
            );
        }
        env.set_loader(move |name| {
            if let Some(d) = &dir {
                let p = d.join(name);
                if p.is_file() {
                    return std::fs::read_to_string(&p).map(Some).map_err(|e| {
                        minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            format!("cannot read {}: {e}", p.display()),
                        )
                    });
                }
            }
            Ok(TEMPLATES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string()))
        });
        Ok(Renderer { env })
    }

    /// Renders the three files of `host`.
    pub fn render(&self, inv: &Inventory, host: &Host) -> anyhow::Result<Rendered> {
        let upstream = host.upstream.as_deref().and_then(|u| inv.host(u));
        let primary_conninfo = upstream
            .map(|u| primary_conninfo(inv, host, u))
            .unwrap_or_default();
        let mut replication_addresses: Vec<String> = inv
            .hosts
            .iter()
            .flat_map(|h| hba_sources(&h.address))
            .collect();
        replication_addresses.sort();
        replication_addresses.dedup();
        let mut ident_users = vec![inv.os_user.clone()];
        match inv.transport {
            // Locally, pgrepl may run as root and connect to the socket as root.
            TransportKind::Local => ident_users.push("root".into()),
            TransportKind::Ssh => ident_users.push(inv.ssh.user.clone()),
        }
        ident_users.sort();
        ident_users.dedup();
        let ctx = Ctx {
            cluster: &inv.cluster,
            version: inv.version,
            host,
            upstream,
            primary_conninfo,
            socket_dir: &host.socket_dir,
            os_user: &inv.os_user,
            replication_user: &inv.replication_user,
            rewind_user: &inv.rewind_user,
            monitor_user: &inv.monitor_user,
            settings: inv.settings_for(host),
            sync_names: inv.sync_names_for(host),
            sync_commit: inv
                .synchronous
                .as_ref()
                .map(|r| r.commit.as_str())
                .unwrap_or(""),
            archive: inv.archive.as_ref(),
            hba: &inv.hba,
            replication_addresses,
            app_clients: app_clients(inv),
            ident_users,
            wal_senders: crate::inventory::needed_wal_senders(inv.hosts.len()),
            replication_slots: crate::inventory::needed_slots(inv.hosts.len()),
            // While TLS is turned off, servers keep it on until every replica follows.
            tls: (inv.tls.is_on() || inv.tls_moving).then(|| host.tls_files()),
            net: hba_type(inv),
            clientcert_replication: clientcert(inv, "verify-full"),
            clientcert_rewind: clientcert(inv, "verify-ca"),
        };
        let one = |name: &str| -> anyhow::Result<String> {
            let t = self
                .env
                .get_template(name)
                .with_context(|| format!("template {name}"))?;
            t.render(minijinja::Value::from(minijinja::value::Serde(&ctx)))
                .map_err(|e| {
                    anyhow::anyhow!("rendering {name} for {}: {}", host.name, describe(&e))
                })
        };
        Ok(Rendered {
            postgresql_conf: one("postgresql.conf.j2")?,
            pg_hba_conf: one("pg_hba.conf.j2")?,
            pg_ident_conf: one("pg_ident.conf.j2")?,
        })
    }
}

/// A replica's `primary_conninfo`: its upstream, the replication role, its password file and
/// name, and the TLS parameters (`Inventory::tls_conninfo`).
fn primary_conninfo(inv: &Inventory, host: &Host, u: &Host) -> String {
    let port = u.port.to_string();
    let tls = inv.tls_conninfo(host);
    let mut params = vec![
        ("host", u.address.as_str()),
        ("port", &port),
        ("user", &inv.replication_user),
        ("passfile", &host.passfile),
        ("application_name", &host.name),
    ];
    params.extend(tls.iter().map(|(k, v)| (*k, v.as_str())));
    crate::pg::conninfo(&params)
}

/// The type of the replication and rewind lines: `hostssl` once TLS is on and enforced, else
/// `host` (padded to the same width).
fn hba_type(inv: &Inventory) -> &'static str {
    if inv.tls.is_on() && !inv.tls_moving {
        "hostssl"
    } else {
        "host   "
    }
}

/// ` clientcert=<mode>` on those lines when the roles present client certificates.
fn clientcert(inv: &Inventory, mode: &'static str) -> &'static str {
    match (inv.tls.client_certs() && !inv.tls_moving, mode) {
        (false, _) => "",
        (true, "verify-full") => " clientcert=verify-full",
        (true, _) => " clientcert=verify-ca",
    }
}

fn describe(e: &minijinja::Error) -> String {
    match (e.name(), e.line()) {
        (Some(n), Some(l)) => format!("{n}:{l}: {e}"),
        _ => e.to_string(),
    }
}

/// The pg_hba.conf addresses a connection from `a` may arrive from: `a` itself, and for a
/// loopback address other than 127.0.0.1 also 127.0.0.1 (Linux sends every loopback connection
/// from 127.0.0.1, whatever 127.x address the sender listens on).
fn hba_sources(a: &str) -> Vec<String> {
    let mut v = vec![hba_address(a)];
    if let Ok(std::net::IpAddr::V4(ip)) = a.parse::<std::net::IpAddr>() {
        if ip.is_loopback() && ip != std::net::Ipv4Addr::LOCALHOST {
            v.push("127.0.0.1/32".into());
        }
    }
    v
}

/// An address as pg_hba.conf wants it: IPs with a host mask, names as they are.
fn hba_address(a: &str) -> String {
    match a.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => format!("{a}/32"),
        Ok(std::net::IpAddr::V6(_)) => format!("{a}/128"),
        Err(_) => a.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        crate::inventory::parse(
            "cluster: main
postgres:
  version: 15
  settings:
    shared_buffers: 256MB
    max_wal_senders: 20
    search_path: \"'$user', public\"
  hba:
    - {type: host, database: app, user: app, address: 10.0.1.0/24, method: scram-sha-256}
    - {type: host, database: all, user: all, address: 10.0.2.0/24, method: ldap, options: {ldapserver: ldap.example.com, ldapprefix: 'cn=', ldapsuffix: ', dc=example, dc=com'}}
replication:
  password_env: X
hosts:
  - {name: pg1, address: 10.0.0.1, role: primary}
  - {name: pg2, address: 10.0.0.2, role: replica}
  - {name: pg3, address: 'fe80::3', role: replica, upstream: pg2}
",
            Path::new("t.yml"),
        )
        .unwrap()
    }

    #[test]
    fn renders_replication_defaults_and_overrides() {
        let inv = inv();
        let r = Renderer::new(None).unwrap();
        let p = r.render(&inv, inv.host("pg1").unwrap()).unwrap();
        let c = &p.postgresql_conf;
        assert!(c.starts_with("# managed by pgrepl"), "{c}");
        for line in [
            "wal_level = 'replica'",
            "hot_standby = 'on'",
            "wal_log_hints = 'on'",
            "max_wal_senders = '20'",
            "password_encryption = 'scram-sha-256'",
            "listen_addresses = '10.0.0.1'",
            "port = '5432'",
            "max_slot_wal_keep_size = '10GB'",
            "shared_buffers = '256MB'",
            "search_path = '''$user'', public'",
        ] {
            assert!(c.lines().any(|l| l == line), "missing {line:?} in\n{c}");
        }
        assert_eq!(c.matches("max_wal_senders").count(), 1, "{c}");
        assert!(!c.contains("primary_conninfo"), "{c}");
        let conf = crate::pg::parse_conf(c);
        assert_eq!(
            conf.len(),
            c.lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .count()
        );
    }

    #[test]
    fn replica_gets_its_upstream_and_slot() {
        let inv = inv();
        let r = Renderer::new(None).unwrap();
        let p = r.render(&inv, inv.host("pg3").unwrap()).unwrap();
        let c = &p.postgresql_conf;
        assert!(c.contains("primary_conninfo = 'host=10.0.0.2 port=5432 user=replicator passfile=/var/lib/postgresql/15/main.pgpass application_name=pg3 sslmode=verify-full sslrootcert=/var/lib/postgresql/15/main.tls/ca.crt channel_binding=require'"), "{c}");
        assert!(c.contains("ssl = 'on'\nssl_cert_file = '/var/lib/postgresql/15/main.tls/server.crt'\nssl_key_file = '/var/lib/postgresql/15/main.tls/server.key'\nssl_ca_file = '/var/lib/postgresql/15/main.tls/ca.crt'\nssl_min_protocol_version = 'TLSv1.2'\n"), "{c}");
        let hba = &p.pg_hba_conf;
        assert!(
            hba.contains("hostssl replication  replicator  10.0.0.1/32  scram-sha-256\n"),
            "{hba}"
        );
        assert!(
            hba.contains("hostssl postgres     pgrepl_rewind  10.0.0.1/32  scram-sha-256\n"),
            "{hba}"
        );
        assert!(
            !hba.lines().any(|l| l.starts_with("host ")
                && (l.contains(" replicator ") || l.contains(" pgrepl_rewind "))),
            "{hba}"
        );
        assert!(c.contains("primary_slot_name = 'pg3'"), "{c}");
        assert!(!c.contains("password="), "{c}");
    }

    #[test]
    fn tls_off_moving_and_client_certificates() {
        let base = inv();
        let r = Renderer::new(None).unwrap();
        let mut off = base.clone();
        off.tls = crate::inventory::Tls::Off;
        let p = r.render(&off, off.host("pg3").unwrap()).unwrap();
        assert!(!p.postgresql_conf.contains("ssl"), "{}", p.postgresql_conf);
        assert!(
            p.pg_hba_conf.contains("host    replication  replicator"),
            "{}",
            p.pg_hba_conf
        );
        let mut moving = base.clone();
        moving.tls_moving = true;
        let p = r.render(&moving, moving.host("pg3").unwrap()).unwrap();
        assert!(p.postgresql_conf.contains("ssl = 'on'"));
        assert!(p.postgresql_conf.contains("sslmode=verify-full"));
        assert!(
            p.pg_hba_conf.contains("host    replication  replicator"),
            "{}",
            p.pg_hba_conf
        );
        let mut certs = base.clone();
        if let crate::inventory::Tls::Issued(i) = &mut certs.tls {
            i.client_certs = true;
        }
        let p = r.render(&certs, certs.host("pg3").unwrap()).unwrap();
        assert!(p.pg_hba_conf.contains("hostssl replication  replicator  10.0.0.1/32  scram-sha-256 clientcert=verify-full\n"), "{}", p.pg_hba_conf);
        assert!(
            p.pg_hba_conf
                .contains("scram-sha-256 clientcert=verify-ca\n"),
            "{}",
            p.pg_hba_conf
        );
        assert!(p.postgresql_conf.contains("sslcert=/var/lib/postgresql/15/main.tls/client.crt sslkey=/var/lib/postgresql/15/main.tls/client.key"), "{}", p.postgresql_conf);
    }

    #[test]
    fn hba_has_one_scram_line_per_address_and_no_trust() {
        let inv = inv();
        let r = Renderer::new(None).unwrap();
        let h = r
            .render(&inv, inv.host("pg2").unwrap())
            .unwrap()
            .pg_hba_conf;
        for a in ["10.0.0.1/32", "10.0.0.2/32", "fe80::3/128"] {
            assert_eq!(
                h.lines()
                    .filter(|l| l.starts_with("host")
                        && l.contains("replication")
                        && l.contains(a)
                        && l.ends_with("scram-sha-256"))
                    .count(),
                1,
                "{a}\n{h}"
            );
        }
        assert!(
            h.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["host", "app", "app", "10.0.1.0/24", "scram-sha-256"]),
            "{h}"
        );
        // Options follow the method as name="value", sorted by name.
        assert!(
            h.lines().any(|l| l == "host  all  all  10.0.2.0/24  ldap ldapprefix=\"cn=\" ldapserver=\"ldap.example.com\" ldapsuffix=\", dc=example, dc=com\""),
            "{h}"
        );
        for l in h.lines().filter(|l| l.starts_with("host")) {
            assert!(!l.contains("trust"), "{l}");
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let inv = inv();
        let a = Renderer::new(None)
            .unwrap()
            .render(&inv, inv.host("pg2").unwrap())
            .unwrap();
        let b = Renderer::new(None)
            .unwrap()
            .render(&inv, inv.host("pg2").unwrap())
            .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn override_dir_wins_and_undefined_fails() {
        let inv = inv();
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("pg_ident.conf.j2"),
            "# custom {{ cluster }}\n",
        )
        .unwrap();
        let r = Renderer::new(Some(d.path()))
            .unwrap()
            .render(&inv, inv.host("pg1").unwrap())
            .unwrap();
        assert_eq!(r.pg_ident_conf, "# custom main\n");
        assert!(r.postgresql_conf.starts_with("# managed by pgrepl"));
        std::fs::write(
            d.path().join("pg_ident.conf.j2"),
            "# {{ no_such_variable }}\n",
        )
        .unwrap();
        let e = Renderer::new(Some(d.path()))
            .unwrap()
            .render(&inv, inv.host("pg1").unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("pg_ident.conf.j2"), "{e}");
    }

    const BASE_ROLES: &str = "cluster: main\npostgres:\n  version: 15\nreplication:\n  password_env: PGREPL_TEST_PW\nhosts:\n  - name: pg1\n    address: 10.0.0.1\n    role: primary\n";

    #[test]
    fn role_lines_admit_clients_on_every_host() {
        let text = format!("{BASE_ROLES}roles:\n  - {{name: app, password_env: APP_PW, clients: [10.1.0.0/16, 10.2.0.9/32]}}\n");
        let inv = crate::inventory::parse(&text, std::path::Path::new("inv.yml")).unwrap();
        let r = crate::render::Renderer::new(None).unwrap();
        let hba = r.render(&inv, inv.primary()).unwrap().pg_hba_conf;
        for net in ["10.1.0.0/16", "10.2.0.9/32"] {
            let line = format!("host    all          app  {net}  scram-sha-256");
            assert!(hba.contains(&line), "no {line:?} in\n{hba}");
        }
    }

    #[test]
    fn loopback_hosts_other_than_127_0_0_1_are_admitted_from_127_0_0_1_too() {
        assert_eq!(hba_sources("127.0.0.72"), ["127.0.0.72/32", "127.0.0.1/32"]);
        assert_eq!(hba_sources("127.0.0.1"), ["127.0.0.1/32"]);
        assert_eq!(hba_sources("10.0.0.1"), ["10.0.0.1/32"]);
    }
}
