//! `pgrepl unlock`: clear a cluster lock whose holder is gone.
//!
//! A lock normally needs no clearing: the kernel drops it when its pgrepl exits or is killed.
//! One can stay behind when a host still believes a dead client's connection is open. unlock
//! names each holder; one that runs on this machine and is alive is refused outright; the rest
//! are stopped after confirmation (`--yes`), and the lock is verified free afterwards.

use crate::error::{exit, Error};
use crate::lock::{self, Holder, Liveness};

use super::documents::{ClearedLock, UnlockDocument};
use super::Context;
use crate::steps::lock::{attempt, clear_and_take, me, now, start_of, Attempt};

/// `pgrepl unlock`.
pub async fn run(ctx: &Context<'_>) -> Result<u8, Error> {
    let me = me("unlock");
    let held = holders(ctx, &me).await?;
    if held.is_empty() && ctx.dry_run {
        return Ok(super::dry_run(ctx, "unlock", &[]));
    }
    if held.is_empty() {
        ctx.ui.info("the cluster is not locked");
        return Ok(report(ctx, Vec::new()));
    }
    let lines: Vec<String> = held
        .iter()
        .map(|(h, x)| format!("{} (held by {})", h.name, x.describe(now())))
        .collect();
    if ctx.dry_run {
        let steps: Vec<String> = lines
            .iter()
            .map(|l| format!("clear the lock on {l}"))
            .collect();
        return Ok(super::dry_run(ctx, "unlock", &steps));
    }
    let what = lines.join("; ");
    ctx.ui.confirm(
        "unlock",
        &format!("clear the cluster lock on {what}; do this only if that pgrepl no longer runs"),
    )?;
    let mut cleared = Vec::new();
    for (h, holder) in held {
        cleared.push(ClearedLock {
            host: h.name.clone(),
            holder: holder.describe(now()),
        });
        let t = ctx.kept(h).await?;
        let l = clear_and_take(ctx, t.as_ref(), h, &holder, &me).await?;
        l.release().await;
        ctx.ui.info(format!(
            "{}: cleared the lock held by {}",
            h.name,
            holder.describe(now())
        ));
    }
    Ok(report(ctx, cleared))
}

/// Each reachable host's lock holder that is gone (or on another machine): what unlock may
/// clear. A holder that still runs here, or one that left no record, is an error.
async fn holders<'c>(
    ctx: &'c Context<'_>,
    me: &crate::lock::Holder,
) -> Result<Vec<(&'c crate::inventory::Host, Holder)>, Error> {
    let mut held: Vec<(&crate::inventory::Host, Holder)> = Vec::new();
    for h in &ctx.inv.hosts {
        let t = match ctx.kept(h).await {
            Ok(t) => t,
            Err(e) => {
                ctx.ui
                    .warn(format!("{}: unreachable, lock not checked: {e:#}", h.name));
                continue;
            }
        };
        match attempt(ctx, t.as_ref(), h, me).await? {
            Attempt::Taken(l, _) => {
                l.release().await;
                ctx.ui.detail(format!("{}: not locked", h.name));
            }
            Attempt::Busy(None) => {
                return Err(Error::step(
                    &h.name,
                    "unlock",
                    format!(
                        "{} is held by a process that left no record",
                        lock::lock_file(&h.data_dir)
                    ),
                )
                .with_hint(format!(
                    "find it on {}: fuser -v {}",
                    h.name,
                    lock::lock_file(&h.data_dir)
                )))
            }
            Attempt::Busy(Some(holder)) => {
                if lock::liveness(&holder, me, start_of) == Liveness::Alive {
                    return Err(still_running(ctx, h, &holder));
                }
                held.push((h, holder));
            }
        }
    }
    Ok(held)
}

/// The lock of a holder that still runs on this machine: not "clear it with pgrepl unlock"
/// (that is this command), but wait for it.
fn still_running(ctx: &Context<'_>, h: &crate::inventory::Host, holder: &Holder) -> Error {
    match ctx.locked_error(h, Some(holder)) {
        Error::Locked {
            host, file, holder, ..
        } => Error::Locked {
            hint: format!(
                "that pgrepl still runs on this machine: wait for it to finish (pgrepl status -i {})",
                ctx.inv.file.display()
            ),
            host,
            file,
            holder,
        },
        e => e,
    }
}

/// The JSON document (`--format json`): the locks cleared, each with its former holder.
fn report(ctx: &Context<'_>, cleared: Vec<ClearedLock>) -> u8 {
    if ctx.ui.format() == crate::ui::Format::Json {
        ctx.ui.json(&UnlockDocument { cleared });
    }
    exit::OK
}
