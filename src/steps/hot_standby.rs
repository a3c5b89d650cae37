//! A standby's hot-standby settings (`pg::hot_standby`) against what its control file recorded
//! from the primary: can it restart now with its rendered settings (raising: standbys first), or
//! must it first replay the primary's lower values (lowering: after the primary)? A standby that
//! is down because it refused a lower value (a cluster a failed run left broken) is started for
//! the time of that replay with the values its control file asks for, then stopped, so that the
//! caller starts it with its own settings. When to call this is `init`'s plan.

use std::time::Duration;

use crate::context::Context;
use crate::error::Error;
use crate::inventory::Host;
use crate::pg::{controldata, ctl, hot_standby};
use crate::render::Rendered;
use crate::transport::Transport;
use crate::wait::{poll_until, Poll, WaitError};

use super::exec::run_step;
use super::server::{server, server_up, stop_and_prove_down};

/// The settings of `r` below what `h`'s control file recorded (empty: it can start with them).
pub async fn too_low(
    t: &dyn Transport,
    h: &Host,
    r: &Rendered,
) -> Result<Vec<(&'static str, u64, u64)>, Error> {
    let out = run_step(
        t,
        &controldata::cmd(&h.bin_dir, &h.data_dir),
        "pg_controldata",
        None,
    )
    .await?;
    let recorded = hot_standby::from_controldata(&out.stdout);
    Ok(hot_standby::too_low(
        &hot_standby::from_conf(&r.postgresql_conf),
        &recorded,
    ))
}

/// Makes standby `h` ready to (re)start with `r`: when `r` sets a hot-standby setting below its
/// control file's, waits (`timeouts.streaming`) until it replayed the primary's lower values;
/// a standby that is down is started for that time with its recorded values, then stopped.
pub async fn replay_lower_values(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    r: &Rendered,
    running: bool,
) -> Result<(), Error> {
    let low = too_low(t, h, r).await?;
    if low.is_empty() {
        return Ok(());
    }
    let what = hot_standby::describe(&low);
    if !running {
        ctx.ui.info(format!(
            "{}: its control file records higher values than its settings ({what}): starting it with those until it replays the primary's",
            h.name
        ));
        let overrides: Vec<(&str, u64)> = low.iter().map(|(n, _, rec)| (*n, *rec)).collect();
        let cmd = ctl::start_overriding(&server(h), ctx.inv.timeouts.start.as_secs(), &overrides);
        server_up(t, h, &cmd, "start PostgreSQL with its recorded values").await?;
    } else {
        ctx.ui.detail(format!(
            "{}: waiting until it replays the primary's lower values ({what})",
            h.name
        ));
    }
    wait_replayed(ctx, t, h, r).await?;
    if !running {
        stop_and_prove_down(ctx, t, h).await?;
    }
    Ok(())
}

/// Polls `h`'s control file until `r`'s settings are no longer below it.
async fn wait_replayed(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    r: &Rendered,
) -> Result<(), Error> {
    let waited = poll_until(
        "timeouts.streaming",
        ctx.inv.timeouts.streaming,
        Duration::from_millis(200),
        || async {
            let low = too_low(t, h, r).await?;
            Ok(if low.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending(format!(
                    "its control file still records higher values than its settings ({})",
                    hot_standby::describe(&low)
                ))
            })
        },
    )
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(WaitError::Probe(e)) => Err(e.into()),
        Err(e) => Err(Error::step(
            &h.name,
            "replay the primary's lower hot-standby settings",
            format!("{e:#}"),
        )
        .with_hint(format!(
            "check that the primary runs with the new settings and that {} streams from it: pgrepl -i {} status",
            h.name,
            ctx.inv.file.display()
        ))),
    }
}
