//! What each route of each router points at, as the router itself reports it (`status`):
//! HAProxy's stats CSV (`/;csv` on the stats port), PgBouncer's console (`SHOW DATABASES`).
//! The parsing is `router`'s; here only the reading.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::context::Context;
use crate::inventory::{Inventory, Router, RouterKind};
use crate::render::{routes, Route};
use crate::router::{parse_haproxy_csv, parse_pgbouncer_databases, RouteTarget, RouterState};

/// Every route of every router of `inv`: reachable or not, and the nodes it points at.
pub async fn observe(ctx: &Context<'_>, inv: &Inventory) -> Vec<RouterState> {
    let mut out = Vec::new();
    for r in &inv.routers {
        let csv = match (r.kind, r.ports.stats) {
            (RouterKind::Haproxy, Some(p)) => {
                Some(http_get(&r.address, p, "/;csv", ctx.inv.timeouts.connect).await)
            }
            _ => None,
        };
        for (route, port) in routes(r) {
            let res = match (&csv, r.kind) {
                (Some(Ok(csv)), _) => Ok(haproxy_targets(inv, csv, route)),
                (Some(Err(e)), _) => Err(e.clone()),
                (None, RouterKind::Haproxy) => {
                    Err("no stats port to read the route from".to_string())
                }
                (None, RouterKind::Pgbouncer) => pgbouncer_targets(ctx, inv, r, port).await,
            };
            out.push(RouterState {
                router: r.name.clone(),
                kind: r.kind,
                route,
                port,
                reachable: res.is_ok(),
                error: res.as_ref().err().cloned(),
                targets: res.unwrap_or_default(),
            });
        }
    }
    out
}

/// The inventory host at `address:port`, if any.
fn host_at(inv: &Inventory, address: &str, port: u16) -> Option<String> {
    inv.hosts
        .iter()
        .find(|h| h.address == address && h.port == port)
        .map(|h| h.name.clone())
}

fn haproxy_targets(inv: &Inventory, csv: &str, route: Route) -> Vec<RouteTarget> {
    parse_haproxy_csv(csv, route.as_str())
        .into_iter()
        // HAProxy's CSV leaves `addr` empty without `stats show-legends`: the server's name is
        // the inventory host's (render names them so).
        .map(|(name, address, port, status)| {
            match (host_at(inv, &address, port), inv.host(&name)) {
                (Some(h), _) => RouteTarget {
                    host: Some(h),
                    address,
                    port,
                    status: Some(status),
                },
                (None, Some(h)) if address.is_empty() => RouteTarget {
                    host: Some(h.name.clone()),
                    address: h.address.clone(),
                    port: h.port,
                    status: Some(status),
                },
                _ => RouteTarget {
                    host: None,
                    address,
                    port,
                    status: Some(status),
                },
            }
        })
        .collect()
}

async fn pgbouncer_targets(
    ctx: &Context<'_>,
    inv: &Inventory,
    r: &Router,
    port: u16,
) -> Result<Vec<RouteTarget>, String> {
    let password = ctx.inv.replication_password().map_err(|e| e.to_string())?;
    let rows = async {
        let db = crate::db::connect_tcp(
            &r.name,
            (&r.address, port),
            (&ctx.inv.replication_user, password.expose()),
            "pgbouncer",
            ctx.inv.timeouts.connect,
        )
        .await?;
        db.simple_rows("SHOW DATABASES").await
    }
    .await
    .map_err(|e| format!("{e:#}"))?;
    Ok(parse_pgbouncer_databases(&rows)
        .into_iter()
        .map(|(address, port)| RouteTarget {
            host: host_at(inv, &address, port),
            address,
            port,
            status: None,
        })
        .collect())
}

/// The body of `GET path` (HTTP/1.0) from `address:port`, within `timeout`.
async fn http_get(
    address: &str,
    port: u16,
    path: &str,
    timeout: Duration,
) -> Result<String, String> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect((address, port)).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
            .await?;
        let mut buf = Vec::new();
        s.take(16 << 20).read_to_end(&mut buf).await?;
        std::io::Result::Ok(buf)
    };
    let raw = tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| {
            format!(
                "no answer from {address}:{port} within {}s",
                timeout.as_secs()
            )
        })?
        .map_err(|e| format!("{address}:{port}: {e}"))?;
    crate::router::http_body(&raw).map_err(|e| format!("stats page on {address}:{port}: {e}"))
}
