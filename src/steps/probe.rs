//! Discovering the live topology: every host probed at once, each under its own deadline, so a
//! dead or frozen host costs its timeout and delays no other. Reads only and changes nothing; what
//! the state means is `health`'s. `status` reads as the monitor role (`collect`); the commands
//! that change the cluster read as the superuser (`discover`).

use std::time::{Duration, Instant};

use crate::context::{Context, Login};
use crate::health::{self, ClusterView};
use crate::inventory::Host;
use crate::inventory::Thresholds;
use crate::pg::datadir;
use crate::pg::state::NodeState;
use crate::topology::{Probe, Topology};

/// One host's state through its kept connection, read as `login`; with the server's refusal of
/// the monitor login when it was read as the superuser instead.
async fn probe(
    ctx: &Context<'_>,
    login: Login,
    h: &Host,
) -> anyhow::Result<(NodeState, Option<String>)> {
    let t0 = Instant::now();
    let t = ctx.kept(h).await?;
    let t1 = t0.elapsed();
    let result = async {
        let r = ctx.reading_db(login, t.as_ref(), h).await?;
        let t2 = t0.elapsed();
        let s = r.db.node_state().await?;
        ctx.ui.detail(format!(
            "{}: reached in {:.3}s, server session at {:.3}s, state read at {:.3}s",
            h.name,
            t1.as_secs_f64(),
            t2.as_secs_f64(),
            t0.elapsed().as_secs_f64()
        ));
        Ok((s, r.monitor_refused))
    }
    .await;
    // A server that does not answer through a working connection (it is down) keeps the
    // connection for the rest of the run (promote fences through it); a broken one is dropped.
    if result.is_err()
        && !t
            .run(&crate::transport::Cmd::new("true"), None)
            .await
            .is_ok_and(|o| o.success())
    {
        ctx.forget(h).await;
    }
    result
}

/// The live topology as the superuser reads it (the commands that change the cluster): every
/// host probed concurrently, each bounded by `host_timeout`.
pub async fn discover<'c>(ctx: &'c Context<'_>, host_timeout: Duration) -> Topology<'c> {
    Topology::discover(
        &ctx.inv,
        probe_all(ctx, Login::Superuser, host_timeout).await,
    )
}

/// `status`'s view: the live topology read as the monitor role (each probe bounded by
/// `host_timeout`), assessed against `t`.
pub async fn collect(ctx: &Context<'_>, host_timeout: Duration, t: &Thresholds) -> ClusterView {
    let t0 = Instant::now();
    let probes = probe_all(ctx, Login::Monitor, host_timeout).await;
    let topo = Topology::discover(&ctx.inv, probes);
    let routers = super::routers::observe(ctx, &ctx.inv).await;
    let tls = tokio::time::timeout(host_timeout, super::tls::observe(ctx)).await;
    health::assess(&topo, t, t0.elapsed().as_secs_f64())
        .with_routers(&topo, routers)
        .with_tls(&ctx.inv, tls.unwrap_or_default())
}

/// Every host's state read as `login` (in inventory order), each probe bounded by
/// `host_timeout`.
pub async fn probe_all(ctx: &Context<'_>, login: Login, host_timeout: Duration) -> Vec<Probe> {
    let mut probes = futures_util::future::join_all(ctx.inv.hosts.iter().map(|h| async move {
        match tokio::time::timeout(host_timeout, probe(ctx, login, h)).await {
            Ok(Ok((s, monitor_refused))) => Probe {
                state: Ok(s),
                monitor_refused,
            },
            Ok(Err(e)) => Probe {
                state: Err(format!("{e:#}")),
                monitor_refused: None,
            },
            Err(_) => {
                ctx.forget(h).await;
                Probe {
                    state: Err(format!(
                        "no answer within {:.1}s (timeouts.status)",
                        host_timeout.as_secs_f64()
                    )),
                    monitor_refused: None,
                }
            }
        }
    }))
    .await;
    timeline_histories(ctx, &mut probes, host_timeout).await;
    probes
}

/// When more than one node accepts writes, the timeline history file of each (past timeline 1),
/// which `health` reads to say what a rebuild would discard. Read through the transport, not
/// SQL: `pg_read_file` would have to be granted to the monitor role, and it reads every file of
/// the data directory. A file that cannot be read leaves the history unknown.
async fn timeline_histories(ctx: &Context<'_>, probes: &mut [Probe], within: Duration) {
    let writable = |p: &Probe| p.state.as_ref().is_ok_and(|s| !s.in_recovery);
    if probes.iter().filter(|p| writable(p)).count() < 2 {
        return;
    }
    let reads = ctx.inv.hosts.iter().zip(probes.iter()).map(|(h, p)| {
        let tli = p
            .state
            .as_ref()
            .ok()
            .filter(|s| !s.in_recovery)
            .and_then(|s| s.timeline)
            .filter(|t| *t > 1);
        async move {
            let path = format!("{}/pg_wal/{:08X}.history", h.data_dir, tli?);
            let read = async {
                let out = ctx
                    .kept(h)
                    .await
                    .ok()?
                    .run(&datadir::read_file(&path), None)
                    .await;
                out.ok().filter(|o| o.success()).map(|o| o.stdout)
            };
            tokio::time::timeout(within, read).await.ok().flatten()
        }
    });
    let histories = futures_util::future::join_all(reads).await;
    for (p, history) in probes.iter_mut().zip(histories) {
        if let (Ok(s), Some(text)) = (&mut p.state, history) {
            s.timeline_history = Some(text);
        }
    }
}
