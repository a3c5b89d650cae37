//! What a run that failed or was interrupted leaves behind, undone before pgrepl exits: the
//! slots it created for clones that did not finish, and a primary a switchover stopped before
//! it promoted the candidate (started again as the primary, so the cluster is never left
//! without a writable node).

use std::time::Duration;

use crate::context::Context;
use crate::error::{Error, OnStep};
use crate::inventory::Host;
use crate::pg::datadir;
use crate::wait::{poll_until, Poll};

use super::exec::run_step;
use super::server::{is_running, standby_signal, start, stop_and_prove_down};

/// Undoes what `ctx` recorded as unfinished. Never fails: what it cannot undo it says, with the
/// command that does it by hand.
pub async fn undo(ctx: &Context<'_>) {
    restart_stopped_primary(ctx).await;
    // Clients queued behind a paused PgBouncer are let through (to the primary started again
    // above, or, past a promotion, wherever the route points: `pgrepl init` re-points it).
    if ctx.take_writes_paused() {
        if let Err(e) = super::routers::resume_writes(ctx, &ctx.inv).await {
            let cmds: Vec<String> = ctx
                .inv
                .routers
                .iter()
                .filter(|r| r.kind == crate::inventory::RouterKind::Pgbouncer)
                .map(|r| {
                    format!(
                        "psql 'host={} port={} user={} dbname=pgbouncer' -c RESUME",
                        r.address, r.ports.write, ctx.inv.replication_user
                    )
                })
                .collect();
            ctx.ui.warn(format!(
                "PgBouncer write routes may still be paused: {e}; resume them: {}",
                cmds.join(" ; ")
            ));
        }
    }
    let replica = ctx.take_stopped_for_clone();
    for host in ctx.take_running_clones() {
        if let Some(h) = ctx.inv.host(&host) {
            end_clone(ctx, h).await;
        }
    }
    for (host, slot) in ctx.take_pending_slots() {
        let Some(h) = ctx.inv.host(&host) else {
            continue;
        };
        match drop_unfinished_slot(ctx, h, &slot).await {
            Ok(()) => ctx.ui.info(format!(
                "{host}: dropped slot {slot}, created by this run for a clone that did not finish"
            )),
            Err(e) => ctx.ui.warn(format!(
                "{host}: could not drop slot {slot} of an unfinished clone: {e}; \
                 re-run the command, or drop it: SELECT pg_drop_replication_slot('{slot}')"
            )),
        }
    }
    if let Some(h) = replica.and_then(|n| ctx.inv.host(&n)) {
        restart_on_previous_data(ctx, h).await;
    }
}

/// A replica a rebuild stopped for a clone that was cut short before its copy replaced the data
/// directory: started again on its previous data (its files untouched), so it keeps serving.
async fn restart_on_previous_data(ctx: &Context<'_>, h: &Host) {
    let r = async {
        let t = ctx.kept(h).await.on_step(&h.name, "start")?;
        if !is_running(t.as_ref(), h).await? {
            start(ctx, t.as_ref(), h).await?;
        }
        Ok::<(), Error>(())
    }
    .await;
    match r {
        Ok(()) => ctx.ui.info(format!(
            "{}: the clone was cut short; {} runs again on its previous data",
            h.name, h.name
        )),
        Err(e) => ctx.ui.warn(format!(
            "{}: the clone was cut short, and starting {} again on its previous data failed: {e}; \
             re-run the rebuild",
            h.name, h.name
        )),
    }
}

/// Makes sure no `pg_basebackup` of the cut-short clone of `h` runs there (its watcher stops it
/// when the connection closes; this verifies it, WAL streaming child included).
async fn end_clone(ctx: &Context<'_>, h: &Host) {
    let r = async {
        let t = ctx.kept(h).await?;
        let out = t.run(&datadir::end_clones_into(&h.data_dir), None).await?;
        anyhow::ensure!(out.success(), "{}", out.stderr_tail.join(" "));
        Ok(out.stdout)
    }
    .await;
    match r {
        Ok(ended) if ended.trim().is_empty() => ctx
            .ui
            .info(format!("{}: the interrupted pg_basebackup is gone", h.name)),
        Ok(ended) => ctx.ui.info(format!(
            "{}: ended what was left of the interrupted pg_basebackup: {}",
            h.name,
            ended.trim().replace('\n', "; ")
        )),
        Err(e) => ctx.ui.warn(format!(
            "{}: could not verify that the interrupted pg_basebackup is gone: {e:#}; \
             the next clone of {} ends it",
            h.name, h.name
        )),
    }
}

/// Drops `slot` on `h` once no WAL sender uses it (the base backup was stopped when its
/// connection ended).
async fn drop_unfinished_slot(ctx: &Context<'_>, h: &Host, slot: &str) -> Result<(), Error> {
    let step = "drop an unfinished clone's slot";
    let db = ctx.session(h, step).await?;
    let exists = poll_until(
        "base backup's WAL sender gone (10s)",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            let slots = db.slots().await?;
            Ok(match slots.iter().find(|s| s.name == slot) {
                None => Poll::Ready(false),
                Some(s) if !s.active => Poll::Ready(true),
                Some(_) => Poll::Pending(format!("slot {slot} active")),
            })
        },
    )
    .await
    .map_err(|e| Error::step(&h.name, step, e.to_string()))?;
    if exists {
        db.drop_slot(slot).await.on_step(&h.name, step)?;
    }
    Ok(())
}

/// A switchover cut short after it stopped (and fenced) the primary and before it promoted the
/// candidate: lift the fence, start the old primary again and verify it accepts writes.
async fn restart_stopped_primary(ctx: &Context<'_>) {
    let Some(h) = ctx.take_pending_rollback().and_then(|n| ctx.inv.host(&n)) else {
        return;
    };
    let r = restart_as_primary(ctx, h).await;
    let r = match r {
        // Its replicas reconnect (a few seconds): the cluster is as it was, and the same
        // switchover can run again at once.
        Ok(()) => {
            let mut inv = ctx.inv.with_primary(&h.name);
            // Bounded short: the run is ending; status tells the rest.
            inv.timeouts.streaming = inv.timeouts.streaming.min(Duration::from_secs(15));
            let names: Vec<&str> = inv.followers_of(&h.name).map(|r| r.name.as_str()).collect();
            if let Err(e) = super::streaming::verify_streaming(ctx, &inv, &names).await {
                ctx.ui.warn(format!(
                    "{}: its replicas do not stream again yet: {e}",
                    h.name
                ));
            }
            Ok(())
        }
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => ctx.ui.warn(format!(
            "{}: the switchover stopped before the promotion; {} is the primary again, verified writable",
            h.name, h.name
        )),
        Err(e) => ctx.ui.warn(format!(
            "{}: the switchover stopped before the promotion, and starting {} again failed: {e}; \
             once it is stopped, start it by hand: {}",
            h.name,
            h.name,
            crate::health::fixes::Fixes::new(&ctx.inv).on(
                h,
                &format!(
                    "sh -c 'rm -f {} && {}/pg_ctl start -D {} -l {}'",
                    standby_signal(h),
                    h.bin_dir,
                    h.data_dir,
                    h.log_file
                )
            )
        )),
    }
}

/// Starts `h` again as the primary and verifies it accepts writes. The run was cut short in the
/// middle of things: its stop may still be under way (the server shuts down, accepting
/// nothing), and the fence written beside the catch-up may land after it was lifted (the
/// server then starts read-only). Either way the server is stopped (proven down), the fence
/// lifted again and the server started, twice at most.
async fn restart_as_primary(ctx: &Context<'_>, h: &Host) -> Result<(), Error> {
    let step = "restart the primary";
    let t = ctx.kept(h).await.on_step(&h.name, step)?;
    let t = t.as_ref();
    let lift = datadir::remove_file(&standby_signal(h));
    let mut last = String::new();
    for _ in 0..3 {
        run_step(t, &lift, step, None).await?;
        if is_running(t, h).await? {
            if writable(ctx, t, h).await {
                return Ok(());
            }
            // Shutting down, or up read-only: down for good, then up as the primary.
            stop_and_prove_down(ctx, t, h).await?;
            run_step(t, &lift, step, None).await?;
        }
        start(ctx, t, h).await?;
        if writable(ctx, t, h).await {
            return Ok(());
        }
        last = "it came back in recovery".into();
    }
    Err(Error::step(&h.name, step, last))
}

/// Whether `h`'s server answers, is out of recovery and takes a write.
async fn writable(ctx: &Context<'_>, t: &dyn crate::transport::Transport, h: &Host) -> bool {
    let Ok(db) = ctx.db(t, h).await else {
        return false;
    };
    matches!(db.in_recovery().await, Ok(false)) && db.write_check().await.is_ok()
}
