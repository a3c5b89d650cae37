//! Verifying replication against PostgreSQL itself: each replica `streaming` in its upstream's
//! `pg_stat_replication`, its slot there active, polled against `timeouts.streaming`. Reads only
//! and changes nothing; it waits only through `wait::poll_until`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::context::Context;
use crate::db::Db;
use crate::error::{Error, OnStep};
use crate::inventory::{Host, Inventory};
use crate::wait::{poll_until, Poll};

/// A delayed replica (`apply_delay`) need not stream now: once its WAL receiver stopped (its
/// upstream restarted, say), PostgreSQL starts it again only when the delayed replay asks for
/// more WAL. It must run, in recovery; if it does not stream, that is said.
async fn delayed_replica_runs(ctx: &Context<'_>, h: &Host) -> Result<(), Error> {
    let step = "verify streaming";
    let db = ctx.session(h, step).await?;
    if !db.in_recovery().await.on_step(&h.name, step)? {
        return Err(Error::step(
            &h.name,
            step,
            format!("{} accepts writes: it is not a replica", h.name),
        ));
    }
    let state = db.node_state().await.on_step(&h.name, step)?;
    if state
        .receiver
        .as_ref()
        .is_none_or(|r| r.status != "streaming")
    {
        ctx.ui.info(format!(
            "{}: a delayed replica (apply_delay {}s) that does not stream now: its WAL receiver starts again when its delayed replay asks for WAL",
            h.name,
            h.apply_delay.unwrap_or(0)
        ));
    }
    Ok(())
}

/// Polls until each replica in `only` (all replicas of `inv` when empty) is `streaming` in its
/// upstream's `pg_stat_replication` and its slot there is active, or `timeouts.streaming` passes.
///
/// `inv` is the topology to verify (the inventory, or the live one after a change of primary).
/// Errors: a step failure on the first replica still not streaming at the deadline, with what
/// was last seen and the hint to read its server log. A delayed replica only has to run, in
/// recovery (see `delayed_replica_runs`).
pub async fn verify_streaming(
    ctx: &Context<'_>,
    inv: &Inventory,
    only: &[&str],
) -> Result<(), Error> {
    type Pairs<'a> = Vec<(&'a Host, &'a Host)>;
    let (delayed, wanted): (Pairs, Pairs) = inv
        .replicas()
        .filter(|h| only.is_empty() || only.contains(&h.name.as_str()))
        .filter_map(|h| Some((h, inv.upstream_of(h)?)))
        .partition(|(h, _)| h.apply_delay.is_some());
    for (h, _) in &delayed {
        delayed_replica_runs(ctx, h).await?;
    }
    let mut upstreams: BTreeMap<&str, Db> = BTreeMap::new();
    for (_, up) in &wanted {
        if !upstreams.contains_key(up.name.as_str()) {
            let t = ctx.kept(up).await.on_step(&up.name, "verify streaming")?;
            let db = ctx
                .db(t.as_ref(), up)
                .await
                .on_step(&up.name, "verify streaming")?;
            upstreams.insert(&up.name, db);
        }
    }
    // The first replica still waiting at the last poll: the one the error names.
    let first_waiting: Mutex<Option<&Host>> = Mutex::new(None);
    let result = poll_until(
        "timeouts.streaming",
        inv.timeouts.streaming,
        Duration::from_millis(200),
        || async {
            let waiting = not_streaming(&upstreams, &wanted).await?;
            *first_waiting.lock().expect("not poisoned") = waiting.first().map(|(h, _)| *h);
            Ok(if waiting.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending(
                    waiting
                        .iter()
                        .map(|(_, w)| w.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })
        },
    )
    .await;
    let Err(e) = result else { return Ok(()) };
    let h = first_waiting
        .into_inner()
        .expect("not poisoned")
        .unwrap_or(inv.primary());
    let message = e.to_string();
    Err(
        Error::step(&h.name, "verify streaming", message).with_hint(format!(
            "read the server log on {}: tail -n 50 {}; then pgrepl status -i {}",
            h.name,
            h.log_file,
            inv.file.display()
        )),
    )
}

/// The wanted replicas that are not streaming with an active slot yet, each with what its
/// upstream shows.
async fn not_streaming<'h>(
    upstreams: &BTreeMap<&str, Db>,
    wanted: &[(&'h Host, &'h Host)],
) -> anyhow::Result<Vec<(&'h Host, String)>> {
    let mut waiting = Vec::new();
    for (up, db) in upstreams {
        let rows = db.replication().await?;
        let slots = db.slots().await?;
        for (h, _) in wanted.iter().filter(|(_, u)| u.name == *up) {
            let state = rows
                .iter()
                .find(|r| r.application_name == h.name)
                .map(|r| r.state.as_str());
            let active = slots.iter().any(|s| s.name == h.slot && s.active);
            if state != Some("streaming") || !active {
                waiting.push((
                    *h,
                    format!(
                        "{}: {} in {up}'s pg_stat_replication, slot {} {}",
                        h.name,
                        state
                            .map(|s| format!("state {s}"))
                            .unwrap_or_else(|| "absent".into()),
                        h.slot,
                        if active { "active" } else { "inactive" }
                    ),
                ));
            }
        }
    }
    Ok(waiting)
}
