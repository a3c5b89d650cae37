//! `pgrepl status`: every host at once, each under its own deadline (`timeouts.status`), so a
//! dead or frozen host costs its timeout and delays no other. The live state is assessed by
//! `health` (pure) and printed as a table, JSON (`schemas/status.schema.json`) or Prometheus
//! text. `--wait` polls until healthy against a deadline; `--watch` redraws on a terminal.

use std::time::{Duration, Instant};

use crate::error::{exit, Error};
use crate::health::{self, ClusterView, NodeState, Probe, Severity, Thresholds};
use crate::inventory::Host;
use crate::report;
use crate::ui::Format;
use crate::wait::{poll_until, Poll, TimedOut};

use super::Context;

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Poll until healthy for at most this long (`--wait`).
    pub wait: Option<Duration>,
    /// Redraw the table on a terminal until Ctrl-C (`--watch`).
    pub watch: bool,
    /// Between refreshes of `watch` and polls of `wait`.
    pub interval: Duration,
    /// Each host's probe deadline; `None`: the inventory's `timeouts.status`.
    pub host_timeout: Option<Duration>,
    /// Replica lag in bytes that is a warning; `None`: the inventory's.
    pub lag_warning_bytes: Option<u64>,
    /// Replica lag in bytes that is critical; `None`: the inventory's.
    pub lag_critical_bytes: Option<u64>,
    /// Replay lag in seconds that is a warning; `None`: the inventory's.
    pub lag_warning_seconds: Option<f64>,
    /// Replay lag in seconds that is critical; `None`: the inventory's.
    pub lag_critical_seconds: Option<f64>,
}

/// The exit code of a view: 0 healthy, 10 warning, 11 critical.
pub fn code(v: &ClusterView) -> u8 {
    match v.severity {
        Severity::Ok => exit::OK,
        Severity::Warning => exit::DEGRADED,
        Severity::Critical => exit::CRITICAL,
    }
}

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

/// Probes every host concurrently, each bounded by `host_timeout`, and assesses the result.
pub async fn collect(ctx: &Context<'_>, host_timeout: Duration, t: &Thresholds) -> ClusterView {
    let t0 = Instant::now();
    let probes = probe_all(ctx, host_timeout).await;
    health::assess(&ctx.inv, &probes, t, t0.elapsed().as_secs_f64())
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

fn print(ctx: &Context<'_>, v: &ClusterView) {
    match ctx.ui.format() {
        Format::Json => ctx
            .ui
            .json(&serde_json::to_value(v).expect("the view serializes")),
        Format::Prometheus => ctx.ui.data(&report::prometheus(v)),
        Format::Text => ctx.ui.data(&report::text(v, &|s, t| ctx.ui.paint(s, t))),
    }
}

/// Probes the cluster once, or polls (`--wait`), or redraws (`--watch`); the exit code is the
/// view's (0, 10, 11).
pub async fn run(ctx: &Context<'_>, opts: Options) -> anyhow::Result<u8> {
    let inv = &ctx.inv;
    let mut t = inv.thresholds;
    t.lag_warning_bytes = opts.lag_warning_bytes.unwrap_or(t.lag_warning_bytes);
    t.lag_critical_bytes = opts.lag_critical_bytes.unwrap_or(t.lag_critical_bytes);
    t.lag_warning_seconds = opts.lag_warning_seconds.unwrap_or(t.lag_warning_seconds);
    t.lag_critical_seconds = opts.lag_critical_seconds.unwrap_or(t.lag_critical_seconds);
    let host_timeout = opts.host_timeout.unwrap_or(inv.timeouts.status);

    if opts.watch {
        if !ctx.ui.stdout_is_terminal() || ctx.ui.format() != Format::Text {
            return Err(Error::step(&inv.cluster, "status --watch", "--watch redraws a table on a terminal; stdout is not one (or --format is not text)")
                .with_hint("for scripts, use: pgrepl status --wait <seconds>")
                .into());
        }
        let mut tick = tokio::time::interval(opts.interval);
        loop {
            tick.tick().await;
            let v = collect(ctx, host_timeout, &t).await;
            ctx.ui.redraw(&report::text(&v, &|s, x| ctx.ui.paint(s, x)));
        }
    }

    let Some(wait) = opts.wait else {
        let v = collect(ctx, host_timeout, &t).await;
        print(ctx, &v);
        return Ok(code(&v));
    };

    let last = std::sync::Mutex::new(None::<ClusterView>);
    let waited = poll_until("status --wait", wait, opts.interval, || async {
        let v = collect(ctx, host_timeout, &t).await;
        let seen = v
            .findings
            .iter()
            .map(|f| format!("{} {}", f.code, f.host.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(", ");
        let healthy = v.healthy;
        *last.lock().expect("not poisoned") = Some(v.clone());
        Ok(if healthy {
            Poll::Ready(v)
        } else {
            Poll::Pending(seen)
        })
    })
    .await;
    match waited {
        Ok(v) => {
            print(ctx, &v);
            Ok(exit::OK)
        }
        Err(e) => {
            let to = e.downcast::<TimedOut>()?;
            let v = last
                .into_inner()
                .expect("not poisoned")
                .expect("polled at least once");
            print(ctx, &v);
            ctx.ui
                .error(&format!("cluster {} is not healthy: {to}", inv.cluster));
            Ok(code(&v))
        }
    }
}
