//! The server's life on one host: is it running, start, stop and prove it down, read its
//! control data, fence it, promote it and wait until it accepts writes, start it as a standby. The
//! commands are `pg::ctl`'s; when to stop, fence or promote is the operation's plan.

use std::time::{Duration, Instant};

use crate::context::Context;
use crate::db::Db;
use crate::error::{Error, OnStep};
use crate::inventory::{Host, Inventory};
use crate::pg::controldata::{self, ControlData};
use crate::pg::ctl;
use crate::transport::Transport;
use crate::wait::{poll_until, Poll, WaitError};

use super::config::install_configs;
use super::exec::{install_file, run_step};

/// The pg_ctl view of one host.
pub fn server(h: &Host) -> ctl::Server<'_> {
    ctl::Server {
        bin_dir: &h.bin_dir,
        data_dir: &h.data_dir,
        log_file: &h.log_file,
    }
}

/// The hint for a server that did not start or stop as asked: its log.
pub fn log_hint(h: &Host) -> String {
    format!(
        "read the server log on {}: tail -n 50 {}",
        h.name, h.log_file
    )
}

/// Is the server of `h` running (`pg_ctl status`)? Errors when the host cannot run the command.
pub async fn is_running(t: &dyn Transport, h: &Host) -> Result<bool, Error> {
    let out = t
        .run(&ctl::status(&server(h)), None)
        .await
        .on_step(&h.name, "pg_ctl status")?;
    Ok(out.success())
}

/// Starts a stopped server and waits until it accepts connections (`timeouts.start`).
pub async fn start(ctx: &Context<'_>, t: &dyn Transport, h: &Host) -> Result<(), Error> {
    let t0 = Instant::now();
    run_step(
        t,
        &ctl::start(&server(h), ctx.inv.timeouts.start.as_secs()),
        "start PostgreSQL",
        None,
    )
    .await
    .map_err(|e| e.with_hint(log_hint(h)))?;
    ctx.ui.done(&h.name, "started PostgreSQL", t0.elapsed());
    Ok(())
}

/// Stops a server (fast shutdown; immediate if that fails) and proves it is down: `pg_ctl status`
/// reports no server. Returns its control data afterwards (the shutdown checkpoint).
pub async fn stop_and_prove_down(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
) -> Result<ControlData, Error> {
    let t0 = Instant::now();
    let secs = ctx.inv.timeouts.start.as_secs();
    let fast = t.run(&ctl::stop(&server(h), secs), None).await;
    if !fast.is_ok_and(|o| o.success()) {
        run_step(
            t,
            &ctl::stop_immediate(&server(h), secs),
            "stop PostgreSQL",
            None,
        )
        .await?;
    }
    if is_running(t, h).await? {
        return Err(Error::step(
            &h.name,
            "stop PostgreSQL",
            "pg_ctl stop returned, but the server still runs",
        )
        .with_hint(format!(
            "stop it by hand on {}: {}/pg_ctl stop -D {} -m immediate",
            h.name, h.bin_dir, h.data_dir
        )));
    }
    ctx.ui.done(&h.name, "stopped PostgreSQL", t0.elapsed());
    control_data(t, h).await
}

/// `pg_controldata` of a host's data directory.
pub async fn control_data(t: &dyn Transport, h: &Host) -> Result<ControlData, Error> {
    let out = run_step(
        t,
        &controldata::cmd(&h.bin_dir, &h.data_dir),
        "pg_controldata",
        None,
    )
    .await?;
    Ok(controldata::parse(&out.stdout))
}

/// The path of a data directory's `standby.signal`.
pub fn standby_signal(h: &Host) -> String {
    format!("{}/standby.signal", h.data_dir)
}

/// Writes `standby.signal` into a stopped server's data directory: if it starts again, it starts
/// read-only, as a standby, never as a second primary.
pub async fn fence(ctx: &Context<'_>, t: &dyn Transport, h: &Host) -> Result<(), Error> {
    install_file(
        t,
        &standby_signal(h),
        "0600",
        "",
        "fence (write standby.signal)",
    )
    .await?;
    ctx.ui.info(format!(
        "{}: fenced: standby.signal written, it can only start read-only",
        h.name
    ));
    Ok(())
}

/// Installs a standby's rendered configuration (from `inv`, the live topology) and
/// `standby.signal`, then starts it.
pub async fn start_as_standby(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
) -> Result<(), Error> {
    let r = ctx.renderer.render(inv, h).on_step(&h.name, "render")?;
    install_configs(t, h, &r).await?;
    install_file(t, &standby_signal(h), "0600", "", "write standby.signal").await?;
    start(ctx, t, h).await
}

/// Polls `pg_is_in_recovery()` until the promoted server accepts writes (`timeouts.promote`).
pub async fn wait_writable(inv: &Inventory, db: &Db) -> Result<(), WaitError> {
    poll_until(
        "timeouts.promote",
        inv.timeouts.promote,
        Duration::from_millis(10),
        || async {
            Ok(if db.in_recovery().await? {
                Poll::Pending("still in recovery".into())
            } else {
                Poll::Ready(())
            })
        },
    )
    .await
}

/// Asks a standby to promote (`pg_promote(false, …)`, not waiting server-side) and polls until
/// it accepts writes. Returns how long that took. A failed request to a server that then turns
/// out writable anyway counts as promoted.
pub async fn promote(ctx: &Context<'_>, db: &Db, h: &Host) -> Result<Duration, Error> {
    let t0 = Instant::now();
    let asked = db.promote(ctx.inv.timeouts.promote).await;
    if let Err(e) = asked {
        if db.in_recovery().await.unwrap_or(true) {
            return Err(Error::step(&h.name, "promote", format!("{e:#}")));
        }
    }
    wait_writable(&ctx.inv, db)
        .await
        .map_err(|e| Error::step(&h.name, "promote", format!("{e:#}")).with_hint(log_hint(h)))?;
    Ok(t0.elapsed())
}
