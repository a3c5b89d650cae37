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

/// Polls until each replica in `only` (all replicas of `inv` when empty) is `streaming` in its
/// upstream's `pg_stat_replication` and its slot there is active, or `timeouts.streaming` passes.
///
/// `inv` is the topology to verify (the inventory, or the live one after a change of primary).
/// Errors: a step failure on the first replica still not streaming at the deadline, with what
/// was last seen and the hint to read its server log.
pub async fn verify_streaming(
    ctx: &Context<'_>,
    inv: &Inventory,
    only: &[&str],
) -> Result<(), Error> {
    let wanted: Vec<(&Host, &Host)> = inv
        .replicas()
        .filter(|h| only.is_empty() || only.contains(&h.name.as_str()))
        .filter_map(|h| Some((h, inv.upstream_of(h)?)))
        .collect();
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
