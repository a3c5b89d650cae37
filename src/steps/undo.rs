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
use super::server::{is_running, standby_signal, start};

/// Undoes what `ctx` recorded as unfinished. Never fails: what it cannot undo it says, with the
/// command that does it by hand.
pub async fn undo(ctx: &Context<'_>) {
    restart_stopped_primary(ctx).await;
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
    let step = "restart the primary";
    let r = async {
        let t = ctx.kept(h).await.on_step(&h.name, step)?;
        run_step(
            t.as_ref(),
            &datadir::remove_file(&standby_signal(h)),
            step,
            None,
        )
        .await?;
        if !is_running(t.as_ref(), h).await? {
            start(ctx, t.as_ref(), h).await?;
        }
        let db = ctx.db(t.as_ref(), h).await.on_step(&h.name, step)?;
        if db.in_recovery().await.on_step(&h.name, step)? {
            return Err(Error::step(&h.name, step, "it came back in recovery"));
        }
        db.write_check().await.on_step(&h.name, step)
    }
    .await;
    match r {
        Ok(()) => ctx.ui.warn(format!(
            "{}: the switchover stopped before the promotion; {} is the primary again, verified writable",
            h.name, h.name
        )),
        Err(e) => ctx.ui.warn(format!(
            "{}: the switchover stopped before the promotion, and starting {} again failed: {e}; \
             start it by hand on {}: rm {} && {}/pg_ctl start -D {} -l {}",
            h.name,
            h.name,
            h.name,
            standby_signal(h),
            h.bin_dir,
            h.data_dir,
            h.log_file
        )),
    }
}
