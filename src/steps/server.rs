//! The server's life on one host: is it running, start, stop and prove it down, read its
//! control data, fence it, promote it and wait until it accepts writes, start it as a standby. The
//! commands are `pg::ctl`'s; when to stop, fence or promote is the operation's plan.

use std::time::{Duration, Instant};

use crate::context::Context;
use crate::db::Db;
use crate::error::{Error, OnStep};
use crate::inventory::{Host, Inventory};
use crate::pg::controldata::{self, ControlData};
use crate::pg::{ctl, datadir};
use crate::transport::{Cmd, Transport};
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

/// Runs a `pg_ctl` command that starts a server (start, restart) as `step`; a failure quotes
/// the server log's FATAL line (and its cause) written by this start, and points at the log.
pub async fn server_up(t: &dyn Transport, h: &Host, cmd: &Cmd, step: &str) -> Result<(), Error> {
    let offset = match t.run(&ctl::log_size(&h.log_file), None).await {
        Ok(o) if o.success() => o.stdout.trim().parse().ok(),
        _ => None,
    };
    let Err(e) = run_step(t, cmd, step, None).await else {
        return Ok(());
    };
    let said = match offset {
        Some(at) => match t.run(&ctl::log_since(&h.log_file, at), None).await {
            Ok(o) => ctl::fatal_lines(&o.stdout),
            Err(_) => Vec::new(),
        },
        None => Vec::new(),
    };
    let e = if said.is_empty() {
        e
    } else {
        e.with_detail(format!("the server log says: {}", said.join(" / ")))
    };
    Err(e.with_hint(log_hint(h)))
}

/// Starts a stopped server and waits until it accepts connections (`timeouts.start`).
pub async fn start(ctx: &Context<'_>, t: &dyn Transport, h: &Host) -> Result<(), Error> {
    let t0 = Instant::now();
    let cmd = ctl::start(&server(h), ctx.inv.timeouts.start.as_secs());
    server_up(t, h, &cmd, "start PostgreSQL").await?;
    ctx.ui.done(&h.name, "started PostgreSQL", t0.elapsed());
    Ok(())
}

/// Stops a server (fast shutdown; immediate if that fails) and proves it is down: `pg_ctl status`
/// reports no server. A server that is already gone (a stale `postmaster.pid` after a crash:
/// "could not send stop signal") counts as stopped. Returns its control data afterwards (the
/// shutdown checkpoint).
pub async fn stop_and_prove_down(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
) -> Result<ControlData, Error> {
    let t0 = Instant::now();
    let secs = ctx.inv.timeouts.start.as_secs();
    let fast = t.run(&ctl::stop(&server(h), secs), None).await;
    if !fast.is_ok_and(|o| o.success()) && is_running(t, h).await? {
        let immediate = ctl::stop_immediate(&server(h), secs);
        if let Err(e) = run_step(t, &immediate, "stop PostgreSQL", None).await {
            if is_running(t, h).await? {
                return Err(e);
            }
        }
    }
    prove_down(ctx, t, h).await?;
    ctx.ui.done(&h.name, "stopped PostgreSQL", t0.elapsed());
    control_data(t, h).await
}

/// Polls `pg_ctl status` until no server runs on `h`'s data directory (a postmaster that was
/// killed or stopped can take a moment to be gone), for at most `timeouts.status`. Returns
/// whether it is gone.
pub async fn wait_gone(ctx: &Context<'_>, t: &dyn Transport, h: &Host) -> Result<bool, Error> {
    let gone = poll_until(
        "timeouts.status",
        ctx.inv.timeouts.status,
        Duration::from_millis(100),
        || async {
            Ok(if is_running(t, h).await? {
                Poll::Pending(format!("{} still has a running postmaster", h.name))
            } else {
                Poll::Ready(())
            })
        },
    )
    .await;
    match gone {
        Ok(()) => Ok(true),
        Err(WaitError::TimedOut(_)) => Ok(false),
        Err(WaitError::Probe(e)) => Err(e.into()),
    }
}

/// Fails (naming the way to stop it by hand) unless `h`'s server is gone, waiting for a dying
/// postmaster (`wait_gone`).
async fn prove_down(ctx: &Context<'_>, t: &dyn Transport, h: &Host) -> Result<(), Error> {
    if wait_gone(ctx, t, h).await? {
        return Ok(());
    }
    Err(Error::step(
        &h.name,
        "stop PostgreSQL",
        "pg_ctl stop returned, but the server still runs",
    )
    .with_hint(format!(
        "stop it by hand on {}: {}/pg_ctl stop -D {} -m immediate",
        h.name, h.bin_dir, h.data_dir
    )))
}

/// Stops a server that runs without answering (frozen: it cannot act on shutdown signals):
/// SIGKILL to its postmaster (`pg_ctl kill KILL`), then proves it down.
pub async fn kill_and_prove_down(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
) -> Result<(), Error> {
    let t0 = Instant::now();
    let step = "stop a server that does not answer";
    let pid_file = format!("{}/postmaster.pid", h.data_dir);
    let out = t
        .run(&datadir::read_file(&pid_file), None)
        .await
        .on_step(&h.name, step)?;
    if let Some(pid) = out
        .success()
        .then(|| ctl::parse_postmaster_pid(&out.stdout))
        .flatten()
    {
        if let Err(e) = run_step(t, &ctl::kill_postmaster(&h.bin_dir, pid), step, None).await {
            if is_running(t, h).await? {
                return Err(e);
            }
        }
    }
    prove_down(ctx, t, h).await?;
    ctx.ui.done(
        &h.name,
        "stopped PostgreSQL (SIGKILL to its postmaster, which did not answer)",
        t0.elapsed(),
    );
    Ok(())
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

/// How far a stopped server's WAL goes: `pg_waldump` from its last checkpoint until the WAL
/// ends. `None` when that cannot be read (the answer is then "unknown", never a guess).
pub async fn end_of_wal(t: &dyn Transport, h: &Host) -> Option<crate::pg::Lsn> {
    let cd = control_data(t, h).await.ok()?;
    let cmd =
        crate::pg::waldump::end_cmd(&h.bin_dir, &h.data_dir, cd.checkpoint_lsn?, cd.timeline?);
    let out = t.run(&cmd, None).await.ok()?;
    crate::pg::waldump::parse_end(&out.stderr_tail.join("\n")).max(cd.checkpoint_lsn)
}

/// The path of a data directory's `standby.signal`.
pub fn standby_signal(h: &Host) -> String {
    format!("{}/standby.signal", h.data_dir)
}

/// Writes `standby.signal` into a stopped server's data directory: if it starts again, it starts
/// read-only, as a standby, never as a second primary.
pub async fn fence(ctx: &Context<'_>, t: &dyn Transport, h: &Host) -> Result<(), Error> {
    // One remote command (no read first): a switchover writes it inside its write gap.
    run_step(
        t,
        &datadir::write_file(&standby_signal(h), "0600", Vec::new()),
        "fence (write standby.signal)",
        None,
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
