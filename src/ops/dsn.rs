//! `pgrepl dsn`: the connection strings applications use. Without a router, one libpq
//! multi-host string for writes and one for reads over every host of the inventory, in
//! inventory order, so they stay right after any failover with no change (libpq finds the
//! writable host itself); with routers, each router's write and read endpoints beside them.
//! Reads only the inventory: nothing is contacted. Never carries a password.

use serde::Serialize;

use crate::error::{exit, Error};
use crate::inventory::{Inventory, RouterKind};
use crate::pg::libpq::{keywords, route_params, uri, Route, Target};
use crate::ui::Format;

use super::Context;

/// What `dsn` was asked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--dbname` (default: the first `databases[]`, else `postgres`).
    pub dbname: Option<String>,
    /// `--user` (default: the first `roles[]`, else none: libpq's default).
    pub user: Option<String>,
    /// `--libpq-version`: the clients' libpq major (default: see [`run`]).
    pub libpq: Option<u32>,
}

/// One connection string, in both of libpq's forms.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Dsn {
    /// `write` or `read`.
    #[schemars(extend("enum" = ["write", "read"]))]
    pub route: &'static str,
    /// Who answers it: `libpq` (multi-host, no router) or a router's name.
    pub via: String,
    /// The URI form (`postgresql://…`).
    pub uri: String,
    /// The keyword/value form (`host=… port=… …`).
    pub keywords: String,
}

/// `pgrepl dsn --format json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DsnDocument {
    /// The inventory's `cluster`.
    pub cluster: String,
    /// `dbname` in every string.
    pub dbname: String,
    /// `user` in every string, if any.
    pub user: Option<String>,
    /// The libpq major the read strings were written for.
    pub libpq_version: u32,
    /// The strings: libpq's write and read first, then each router's.
    pub dsns: Vec<Dsn>,
}

/// Builds every string (pure).
pub fn build(inv: &Inventory, o: &Options) -> DsnDocument {
    let dbname = o
        .dbname
        .clone()
        .or_else(|| inv.databases.first().map(|d| d.name.clone()))
        .unwrap_or_else(|| "postgres".into());
    let user = o
        .user
        .clone()
        .or_else(|| inv.roles.first().map(|r| r.name.clone()));
    let libpq = o.libpq.unwrap_or(inv.version);
    let timeout = Some(inv.timeouts.connect.as_secs().max(1));
    let (db, u) = (dbname.as_str(), user.as_deref());
    let target = |hosts| Target {
        hosts,
        dbname: db,
        user: u,
        connect_timeout: timeout,
    };
    let all: Vec<(&str, u16)> = inv
        .hosts
        .iter()
        .map(|h| (h.address.as_str(), h.port))
        .collect();
    // With TLS, clients verify the servers as replicas do: the cluster's CA (a file on this
    // machine), and the address they connect to (HAProxy's too: the certificates name it).
    let ca = client_ca(inv);
    let tls: Vec<(&str, &str)> = match &ca {
        Some(f) => vec![("sslmode", "verify-full"), ("sslrootcert", f.as_str())],
        None => Vec::new(),
    };
    let mut dsns = Vec::new();
    for (route, name) in [(Route::Write, "write"), (Route::Read, "read")] {
        let t = target(all.clone());
        let mut p = route_params(route, libpq);
        p.extend(tls.iter().copied());
        dsns.push(Dsn {
            route: name,
            via: "libpq".into(),
            uri: uri(&t, &p),
            keywords: keywords(&t, &p),
        });
    }
    for r in &inv.routers {
        let routes = [("write", Some(r.ports.write)), ("read", r.ports.read)];
        for (name, port) in routes {
            let Some(port) = port else { continue };
            let t = target(vec![(r.address.as_str(), port)]);
            // PgBouncer speaks to its clients without TLS; HAProxy passes the server's through.
            let p: &[(&str, &str)] = if r.kind == RouterKind::Haproxy {
                &tls
            } else {
                &[]
            };
            dsns.push(Dsn {
                route: name,
                via: r.name.clone(),
                uri: uri(&t, p),
                keywords: keywords(&t, p),
            });
        }
    }
    DsnDocument {
        cluster: inv.cluster.clone(),
        dbname,
        user,
        libpq_version: libpq,
        dsns,
    }
}

/// The CA file clients on this machine verify the servers with: pgrepl's CA certificate, or
/// the user's `tls.ca_file`; None with `tls: off`.
fn client_ca(inv: &Inventory) -> Option<String> {
    match &inv.tls {
        crate::inventory::Tls::Off => None,
        crate::inventory::Tls::Issued(i) => Some(absolute(&i.ca_cert)),
        crate::inventory::Tls::Provided(p) => Some(absolute(&p.ca_file)),
    }
}

/// `p` from the current directory when it is relative (the strings are pasted elsewhere).
fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// `pgrepl dsn`: the strings on stdout, one per line (`ROUTE VIA URI`), or one JSON document.
/// The read strings are written for `--libpq-version`, else this machine's libpq (`psql
/// --version`: a job here runs its clients here), else the cluster's major.
pub async fn run(ctx: &Context<'_>, mut o: Options) -> Result<u8, Error> {
    if o.libpq.is_none() {
        o.libpq = crate::steps::exec::local_libpq_major();
    }
    let doc = build(&ctx.inv, &o);
    if ctx.ui.format() == Format::Json {
        ctx.ui
            .json(&serde_json::to_value(&doc).expect("plain data"));
    } else {
        let mut out = String::new();
        for d in &doc.dsns {
            out.push_str(&format!("{:<6} {:<12} {}\n", d.route, d.via, d.uri));
        }
        ctx.ui.data(&out);
    }
    if doc.libpq_version < 14 {
        ctx.ui.warn("libpq before 14 has no target_session_attrs=prefer-standby: the read string may reach the primary");
    }
    if ctx
        .inv
        .routers
        .iter()
        .any(|r| r.kind == RouterKind::Pgbouncer)
    {
        ctx.ui
            .info("a PgBouncer route serves the databases its router lists (routers[].databases)");
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_strings_name_every_host_in_inventory_order_and_the_first_role_and_database() {
        let text = "cluster: main\npostgres:\n  version: 16\nreplication:\n  password_env: PW\nhosts:\n  - {name: b, address: 10.0.0.2, role: replica, upstream: a}\n  - {name: a, address: 10.0.0.1, port: 5433, role: primary}\nroles:\n  - {name: app, password_env: APP}\ndatabases:\n  - name: shop\ntls: off\n";
        let inv = crate::inventory::parse(text, std::path::Path::new("i.yml")).unwrap();
        let doc = build(&inv, &Options::default());
        let uris: Vec<(&str, &str, &str)> = doc
            .dsns
            .iter()
            .map(|d| (d.route, d.via.as_str(), d.uri.as_str()))
            .collect();
        assert_eq!(
            uris,
            [
                ("write", "libpq", "postgresql://app@10.0.0.2:5432,10.0.0.1:5433/shop?target_session_attrs=read-write&connect_timeout=10"),
                ("read", "libpq", "postgresql://app@10.0.0.2:5432,10.0.0.1:5433/shop?target_session_attrs=prefer-standby&load_balance_hosts=random&connect_timeout=10"),
            ]
        );
        let o = Options {
            dbname: Some("postgres".into()),
            user: Some("me".into()),
            libpq: Some(15),
        };
        let doc = build(&inv, &o);
        assert_eq!(doc.libpq_version, 15);
        assert!(
            doc.dsns[1].keywords.ends_with(
                "dbname=postgres user=me target_session_attrs=prefer-standby connect_timeout=10"
            ),
            "{}",
            doc.dsns[1].keywords
        );
    }

    #[test]
    fn with_tls_clients_verify_the_servers_directly_and_through_haproxy_only() {
        let text = "cluster: main\npostgres:\n  version: 16\nreplication:\n  password_env: PW\nhosts:\n  - {name: a, address: 10.0.0.1, role: primary}\nroles:\n  - {name: app, password_env: APP}\nrouters:\n  - {name: ha, kind: haproxy, address: 10.0.0.9, ports: {write: 5435}}\n  - {name: pb, kind: pgbouncer, address: 10.0.0.9, ports: {write: 6432}}\n";
        let inv = crate::inventory::parse(text, std::path::Path::new("/etc/pgrepl/i.yml")).unwrap();
        let doc = build(&inv, &Options::default());
        let tls = "sslmode=verify-full&sslrootcert=%2Fetc%2Fpgrepl%2Fmain.ca.crt";
        assert!(doc.dsns[0].uri.contains(tls), "{}", doc.dsns[0].uri);
        assert!(doc.dsns[0]
            .keywords
            .contains("sslmode=verify-full sslrootcert=/etc/pgrepl/main.ca.crt"));
        let via = |name: &str| doc.dsns.iter().find(|d| d.via == name).unwrap();
        assert!(via("ha").uri.contains(tls), "{}", via("ha").uri);
        assert!(!via("pb").uri.contains("sslmode"), "{}", via("pb").uri);
    }
}
