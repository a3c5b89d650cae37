//! Discovering the live topology: every host probed at once, each under its own deadline, so a
//! dead or frozen host costs its timeout and delays no other. Reads only and changes nothing; what
//! the state means is `health`'s.

use std::time::{Duration, Instant};

use crate::context::Context;
use crate::health::{self, ClusterView};
use crate::inventory::Host;
use crate::inventory::Thresholds;
use crate::pg::state::NodeState;
use crate::topology::{Probe, Topology};

/// One host's state through its kept connection.
async fn probe(ctx: &Context<'_>, h: &Host) -> anyhow::Result<NodeState> {
    let t0 = Instant::now();
    let t = ctx.kept(h).await?;
    let t1 = t0.elapsed();
    let result = async {
        let db = ctx.db(t.as_ref(), h).await?;
        let t2 = t0.elapsed();
        let s = db.node_state().await?;
        ctx.ui.detail(format!(
            "{}: reached in {:.3}s, server session at {:.3}s, state read at {:.3}s",
            h.name,
            t1.as_secs_f64(),
            t2.as_secs_f64(),
            t0.elapsed().as_secs_f64()
        ));
        Ok(s)
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

/// The live topology: every host probed concurrently, each bounded by `host_timeout`.
pub async fn discover<'c>(ctx: &'c Context<'_>, host_timeout: Duration) -> Topology<'c> {
    Topology::discover(&ctx.inv, probe_all(ctx, host_timeout).await)
}

/// The live topology (each probe bounded by `host_timeout`), assessed against `t`.
pub async fn collect(ctx: &Context<'_>, host_timeout: Duration, t: &Thresholds) -> ClusterView {
    let t0 = Instant::now();
    let topo = discover(ctx, host_timeout).await;
    let routers = super::routers::observe(ctx, &ctx.inv).await;
    let tls = tokio::time::timeout(host_timeout, super::tls::observe(ctx)).await;
    health::assess(&topo, t, t0.elapsed().as_secs_f64())
        .with_routers(&topo, routers)
        .with_tls(&ctx.inv, tls.unwrap_or_default())
}

/// Every host's state (in inventory order), each probe bounded by `host_timeout`.
pub async fn probe_all(ctx: &Context<'_>, host_timeout: Duration) -> Vec<Probe> {
    futures_util::future::join_all(ctx.inv.hosts.iter().map(|h| async move {
        let state = match tokio::time::timeout(host_timeout, probe(ctx, h)).await {
            Ok(r) => r.map_err(|e| format!("{e:#}")),
            Err(_) => {
                ctx.forget(h).await;
                Err(format!(
                    "no answer within {:.1}s (timeouts.status)",
                    host_timeout.as_secs_f64()
                ))
            }
        };
        Probe { state }
    }))
    .await
}
