//! `pgrepl status` (minimal): every host at once, each under its own deadline; one line per
//! host with its live role, reachability, whether it streams and its lag in bytes. The live
//! state is the truth: roles come from `pg_is_in_recovery()`, streaming from the WAL senders'
//! `pg_stat_replication`.

use std::time::Duration;

use serde::Serialize;

use crate::db::ReplicationRow;
use crate::error::exit;
use crate::inventory::{Host, Role};
use crate::pg::Lsn;
use crate::ui::Format;

use super::Context;

/// Version of the JSON document `status --format json` prints.
pub const JSON_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
struct Probe {
    in_recovery: bool,
    wal_lsn: Option<String>,
    senders: Vec<ReplicationRow>,
}

#[derive(Debug, Serialize)]
struct HostStatus {
    name: String,
    address: String,
    port: u16,
    inventory_role: Role,
    reachable: bool,
    error: Option<String>,
    /// Live role: "primary" or "replica", from pg_is_in_recovery().
    role: Option<Role>,
    wal_lsn: Option<String>,
    /// Replicas: streaming in some host's pg_stat_replication.
    streaming: Option<bool>,
    /// Replicas: the host whose WAL sender serves it.
    upstream: Option<String>,
    /// Replicas: upstream's WAL position minus this replica's replay position.
    lag_bytes: Option<u64>,
}

async fn probe(ctx: &Context<'_>, h: &Host) -> anyhow::Result<Probe> {
    let t = ctx.connect(h).await?;
    let db = ctx.db(t.as_ref(), h).await?;
    Ok(Probe {
        in_recovery: db.in_recovery().await?,
        wal_lsn: db.wal_lsn().await?.map(|l| l.to_string()),
        senders: db.replication().await?,
    })
}

pub async fn run(ctx: &Context<'_>) -> anyhow::Result<u8> {
    let inv = &ctx.inv;
    let deadline = inv.timeouts.connect + Duration::from_secs(5);
    let probes = futures_util::future::join_all(inv.hosts.iter().map(|h| async move {
        match tokio::time::timeout(deadline, probe(ctx, h)).await {
            Ok(r) => r.map_err(|e| format!("{e:#}")),
            Err(_) => Err(format!("no answer within {}s", deadline.as_secs())),
        }
    }))
    .await;

    let mut rows = Vec::new();
    for (h, p) in inv.hosts.iter().zip(&probes) {
        let mut s = HostStatus {
            name: h.name.clone(),
            address: h.address.clone(),
            port: h.port,
            inventory_role: h.role,
            reachable: p.is_ok(),
            error: p.as_ref().err().cloned(),
            role: None,
            wal_lsn: None,
            streaming: None,
            upstream: None,
            lag_bytes: None,
        };
        if let Ok(p) = p {
            s.role = Some(if p.in_recovery {
                Role::Replica
            } else {
                Role::Primary
            });
            s.wal_lsn = p.wal_lsn.clone();
            if p.in_recovery {
                let sender = inv.hosts.iter().zip(&probes).find_map(|(u, up)| {
                    let up = up.as_ref().ok()?;
                    up.senders
                        .iter()
                        .find(|r| r.application_name == h.name)
                        .map(|r| (u, up, r))
                });
                s.streaming = Some(sender.is_some_and(|(_, _, r)| r.state == "streaming"));
                if let Some((u, up, r)) = sender {
                    s.upstream = Some(u.name.clone());
                    let upstream_pos = up.wal_lsn.as_deref().and_then(Lsn::parse);
                    let replay = r.replay_lsn.as_deref().and_then(Lsn::parse);
                    if let (Some(a), Some(b)) = (replay, upstream_pos) {
                        s.lag_bytes = Some(a.bytes_until(b));
                    }
                }
            }
        }
        rows.push(s);
    }

    let primaries = rows
        .iter()
        .filter(|r| r.role == Some(Role::Primary))
        .count();
    let degraded = rows
        .iter()
        .any(|r| !r.reachable || r.streaming == Some(false));
    let code = if primaries == 0 {
        exit::CRITICAL
    } else if degraded || primaries > 1 {
        exit::DEGRADED
    } else {
        exit::OK
    };

    match ctx.ui.format() {
        Format::Json => ctx.ui.json(&serde_json::json!({
            "format_version": JSON_FORMAT_VERSION,
            "cluster": inv.cluster,
            "healthy": code == exit::OK,
            "hosts": rows,
        })),
        Format::Text => {
            let mut out = format!(
                "{:<12} {:<8} {:<9} {:<9} {:<10} {:>10}\n",
                "HOST", "ROLE", "REACHABLE", "STREAMING", "UPSTREAM", "LAG_BYTES"
            );
            for r in &rows {
                let role = match r.role {
                    Some(Role::Primary) => "primary",
                    Some(Role::Replica) => "replica",
                    None => "-",
                };
                let streaming = match r.streaming {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "-",
                };
                out.push_str(&format!(
                    "{:<12} {:<8} {:<9} {:<9} {:<10} {:>10}\n",
                    r.name,
                    role,
                    if r.reachable { "yes" } else { "no" },
                    streaming,
                    r.upstream.as_deref().unwrap_or("-"),
                    r.lag_bytes
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "-".into())
                ));
            }
            ctx.ui.data(&out);
            for r in rows.iter().filter(|r| !r.reachable) {
                ctx.ui.warn(format!(
                    "{}: unreachable: {}",
                    r.name,
                    r.error.as_deref().unwrap_or("")
                ));
            }
        }
    }
    Ok(code)
}
