//! `pgrepl status`: every host at once, each under its own deadline (`timeouts.status`), so a
//! dead or frozen host costs its timeout and delays no other. The live state is assessed by
//! `health` (pure) and printed as a table, JSON (`schemas/status.schema.json`) or Prometheus
//! text. `--wait` polls until healthy against a deadline; `--watch` redraws on a terminal.
//! Read-only: it changes nothing on any host and takes no lock.

use std::time::Duration;

use crate::error::{exit, Error};
use crate::health::{ClusterView, Severity};
use crate::report;
use crate::steps::probe::collect;
use crate::ui::Format;
use crate::ui::Tone;
use crate::wait::{poll_until, Poll, WaitError};

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

/// How a severity shows on a terminal.
fn tone(s: Severity) -> Tone {
    match s {
        Severity::Ok => Tone::Good,
        Severity::Notice => Tone::Warning,
        Severity::Warning => Tone::Warning,
        Severity::Critical => Tone::Bad,
    }
}

/// The exit code of a view: 0 healthy, 10 warning, 11 critical.
pub fn code(v: &ClusterView) -> u8 {
    match v.severity {
        Severity::Ok | Severity::Notice => exit::OK,
        Severity::Warning => exit::DEGRADED,
        Severity::Critical => exit::CRITICAL,
    }
}

fn print(ctx: &Context<'_>, v: &ClusterView) {
    match ctx.ui.format() {
        Format::Json => ctx.ui.json(v),
        Format::Prometheus => ctx.ui.data(&report::prometheus(v)),
        Format::Text => ctx
            .ui
            .data(&report::text(v, &|s, t| ctx.ui.paint(tone(s), t))),
    }
}

/// Probes the cluster once, or polls (`--wait`), or redraws (`--watch`); the exit code is the
/// view's (0, 10, 11).
pub async fn run(ctx: &Context<'_>, opts: Options) -> Result<u8, Error> {
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
                .with_hint("for scripts, use: pgrepl status --wait <seconds>"));
        }
        let mut tick = tokio::time::interval(opts.interval);
        loop {
            tick.tick().await;
            let v = collect(ctx, host_timeout, &t).await;
            ctx.ui
                .redraw(&report::text(&v, &|s, x| ctx.ui.paint(tone(s), x)));
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
        Err(WaitError::Probe(e)) => Err(e.into()),
        Err(WaitError::TimedOut(to)) => {
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
