//! A router's files from the live topology: `haproxy.cfg`, or one `pgbouncer-<route>.ini` per
//! PgBouncer route, and PgBouncer's auth file (`userlist.txt`, SCRAM verifiers only). Which
//! nodes a route reaches is decided here (`targets`), once, for rendering and verifying alike.
//! Text only: no I/O (the verifiers are read by `steps::routers`).

use serde::Serialize;

use super::{describe, Renderer};
use crate::inventory::{Host, Inventory, ReadTargets, Router, RouterKind};

/// One file of a router, to install in its `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterFile {
    /// The file name inside `dir`.
    pub name: String,
    /// Its content.
    pub content: String,
}

/// A route of a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// Reaches only the primary.
    Write,
    /// Balances over the read targets.
    Read,
}

impl Route {
    /// `write` / `read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Write => "write",
            Route::Read => "read",
        }
    }
}

/// The routes a router serves, with their ports.
pub fn routes(r: &Router) -> Vec<(Route, u16)> {
    let mut v = vec![(Route::Write, r.ports.write)];
    v.extend(r.ports.read.map(|p| (Route::Read, p)));
    v
}

/// The nodes a route of `r` reaches in `live`: the primary for writes; for reads the replicas
/// (the primary when there is none), or replicas and primary (`read_targets: all`).
pub fn targets<'a>(live: &'a Inventory, r: &Router, route: Route) -> Vec<&'a Host> {
    let primary = live.primary();
    match route {
        Route::Write => vec![primary],
        Route::Read => {
            let mut v: Vec<&Host> = live.replicas().collect();
            if v.is_empty() || r.read_targets == ReadTargets::All {
                v.push(primary);
            }
            v
        }
    }
}

/// The auth file's name in `dir`.
pub const USERLIST: &str = "userlist.txt";

/// The CA bundle PgBouncer verifies the servers' certificates with (TLS on), in `dir`.
pub const ROUTER_CA: &str = "ca.crt";

/// PgBouncer's auth file: `"role" "SCRAM-SHA-256$…"` per line, sorted by role. Only verifiers
/// are accepted: a clear-text or md5 entry is refused.
pub fn userlist(entries: &[(String, String)]) -> anyhow::Result<String> {
    let mut v: Vec<&(String, String)> = entries.iter().collect();
    v.sort();
    v.dedup();
    let mut out = String::new();
    for (role, verifier) in v {
        anyhow::ensure!(
            verifier.starts_with("SCRAM-SHA-256$") && !verifier.contains('"'),
            "role {role} has no SCRAM-SHA-256 verifier in pg_authid (set its password with password_encryption = scram-sha-256)"
        );
        anyhow::ensure!(!role.contains('"'), "role name {role:?} contains '\"'");
        out.push_str(&format!("\"{role}\" \"{verifier}\"\n"));
    }
    Ok(out)
}

#[derive(Serialize)]
struct Ctx<'a> {
    cluster: &'a str,
    router: &'a Router,
    dir: &'a str,
    replication_user: &'a str,
    write: &'a Host,
    read: Vec<&'a Host>,
    route: &'static str,
    listen_port: u16,
    targets: Vec<&'a Host>,
    hosts: String,
    port: u16,
    databases: &'a [String],
    /// TLS is on: PgBouncer connects to the servers with `verify-full`.
    tls: bool,
}

impl Renderer {
    /// The configuration files of router `r` for the live topology `live` (not the auth file:
    /// see [`userlist`]).
    pub fn render_router(&self, live: &Inventory, r: &Router) -> anyhow::Result<Vec<RouterFile>> {
        let mut ctx = Ctx {
            cluster: &live.cluster,
            router: r,
            dir: &r.dir,
            replication_user: &live.replication_user,
            write: live.primary(),
            read: targets(live, r, Route::Read),
            route: "write",
            listen_port: r.ports.write,
            targets: Vec::new(),
            hosts: String::new(),
            port: 0,
            databases: &r.databases,
            tls: live.tls.is_on(),
        };
        match r.kind {
            RouterKind::Haproxy => Ok(vec![RouterFile {
                name: "haproxy.cfg".into(),
                content: self.one_router("haproxy.cfg.j2", &ctx, r)?,
            }]),
            RouterKind::Pgbouncer => {
                let mut files = Vec::new();
                for (route, port) in routes(r) {
                    let t = targets(live, r, route);
                    ctx.route = route.as_str();
                    ctx.listen_port = port;
                    ctx.hosts = t
                        .iter()
                        .map(|h| h.address.as_str())
                        .collect::<Vec<_>>()
                        .join(",");
                    ctx.port = t[0].port;
                    ctx.targets = t;
                    files.push(RouterFile {
                        name: pgbouncer_ini(route),
                        content: self.one_router("pgbouncer.ini.j2", &ctx, r)?,
                    });
                }
                Ok(files)
            }
        }
    }

    fn one_router(&self, name: &str, ctx: &Ctx<'_>, r: &Router) -> anyhow::Result<String> {
        let t = self.env.get_template(name)?;
        t.render(minijinja::Value::from(minijinja::value::Serde(ctx)))
            .map_err(|e| {
                anyhow::anyhow!("rendering {name} for router {}: {}", r.name, describe(&e))
            })
    }
}

/// A PgBouncer route's configuration file name.
pub fn pgbouncer_ini(route: Route) -> String {
    format!("pgbouncer-{}.ini", route.as_str())
}

/// `address:port` as HAProxy reads it: an IPv6 address in brackets.
pub(super) fn hostport(address: String, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn inv() -> Inventory {
        crate::inventory::parse(
            "cluster: main
postgres: {version: 15}
replication: {password_env: X}
hosts:
  - {name: pg1, address: 10.0.0.1, role: primary}
  - {name: pg2, address: 10.0.0.2, role: replica}
  - {name: pg3, address: 10.0.0.3, role: replica}
routers:
  - {name: ha, kind: haproxy, address: 10.0.0.9, ports: {write: 5435, read: 5436, stats: 8404}}
  - {name: pb, kind: pgbouncer, address: 'fe80::9', ports: {write: 6432, read: 6433}, databases: [app]}
roles:
  - {name: app, password_env: APP_PW}
databases:
  - name: app
",
            Path::new("t.yml"),
        )
        .unwrap()
    }

    #[test]
    fn haproxy_write_reaches_the_primary_and_read_the_replicas() {
        let inv = inv();
        let f = Renderer::new(None)
            .unwrap()
            .render_router(&inv, &inv.routers[0])
            .unwrap();
        assert_eq!(f.len(), 1);
        let c = &f[0].content;
        let write = c
            .split("\nbackend write")
            .nth(1)
            .unwrap()
            .split("frontend read")
            .next()
            .unwrap();
        assert!(write.contains("server pg1 10.0.0.1:5432 check"), "{c}");
        assert!(!write.contains("pg2"), "{c}");
        let read = c
            .split("\nbackend read")
            .nth(1)
            .unwrap()
            .split("frontend stats")
            .next()
            .unwrap();
        assert!(read.contains("balance roundrobin"), "{c}");
        assert!(read.contains("server pg2 10.0.0.2:5432 check"), "{c}");
        assert!(read.contains("server pg3 10.0.0.3:5432 check"), "{c}");
        assert!(!read.contains("pg1"), "{c}");
        assert!(c.contains("bind 10.0.0.9:8404"), "{c}");
        assert!(c.contains("on-marked-down shutdown-sessions"), "{c}");
        // After a switchover to pg2, the routes follow.
        let after = inv.with_primary("pg2");
        let c = Renderer::new(None)
            .unwrap()
            .render_router(&after, &after.routers[0])
            .unwrap();
        assert!(
            c[0].content
                .contains("server pg2 10.0.0.2:5432 check\n\nfrontend read"),
            "{}",
            c[0].content
        );
    }

    #[test]
    fn pgbouncer_has_one_instance_per_route() {
        let inv = inv();
        let f = Renderer::new(None)
            .unwrap()
            .render_router(&inv, &inv.routers[1])
            .unwrap();
        let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["pgbouncer-write.ini", "pgbouncer-read.ini"]);
        let (w, r) = (&f[0].content, &f[1].content);
        assert!(
            w.contains("app = host=10.0.0.1 port=5432 dbname=app\n"),
            "{w}"
        );
        assert!(
            r.contains("app = host=10.0.0.2,10.0.0.3 port=5432 dbname=app\n"),
            "{r}"
        );
        for (c, route, port) in [(w, "write", 6432), (r, "read", 6433)] {
            for line in [
                format!("listen_port = {port}"),
                format!("pidfile = /var/lib/pgrepl/routers/pb/pgbouncer-{route}.pid"),
                format!("unix_socket_dir = /var/lib/pgrepl/routers/pb/{route}"),
                "auth_type = scram-sha-256".into(),
                "auth_file = /var/lib/pgrepl/routers/pb/userlist.txt".into(),
                "admin_users = replicator".into(),
                "listen_addr = fe80::9".into(),
                "pool_mode = transaction".into(),
            ] {
                assert!(c.lines().any(|l| l == line), "{line} in\n{c}");
            }
        }
        assert!(r.contains("server_round_robin = 1") && !w.contains("server_round_robin"));
    }

    #[test]
    fn read_targets_all_and_no_replica() {
        let mut inv = inv();
        inv.routers[0].read_targets = ReadTargets::All;
        let names = |i: &Inventory| -> Vec<String> {
            targets(i, &i.routers[0], Route::Read)
                .iter()
                .map(|h| h.name.clone())
                .collect()
        };
        assert_eq!(names(&inv), ["pg2", "pg3", "pg1"]);
        inv.routers[0].read_targets = ReadTargets::Replicas;
        inv.hosts.truncate(1);
        assert_eq!(names(&inv), ["pg1"]);
    }

    #[test]
    fn userlist_holds_scram_verifiers_only_sorted() {
        let v = "SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2Vydg==".to_string();
        let u = userlist(&[("b".into(), v.clone()), ("a".into(), v.clone())]).unwrap();
        assert_eq!(u, format!("\"a\" \"{v}\"\n\"b\" \"{v}\"\n"));
        assert!(userlist(&[("a".into(), "secret".into())]).is_err());
        assert!(userlist(&[("a".into(), "md5abc".into())]).is_err());
    }

    #[test]
    fn router_rendering_is_deterministic() {
        let inv = inv();
        for r in &inv.routers {
            let a = Renderer::new(None).unwrap().render_router(&inv, r).unwrap();
            let b = Renderer::new(None).unwrap().render_router(&inv, r).unwrap();
            assert_eq!(a, b);
        }
    }
}
