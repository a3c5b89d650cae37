//! Replication slots: create a replica's slot on its upstream (re-create an invalidated one), and
//! drop the stale slots a former primary kept for replicas that follow someone else now. Apart from
//! a slot that lost WAL, it never drops an active slot, a logical one, or one not named after an
//! inventory host's slot.

use crate::context::Context;
use crate::db::Db;
use crate::error::{Error, OnStep};
use crate::inventory::{Host, Inventory};
use crate::transport::Transport;

/// Creates `slot` on a server unless it exists; a slot that was invalidated (`wal_status`
/// `lost`: its WAL was removed, or on 18 it sat idle longer than
/// `idle_replication_slot_timeout`) is dropped and re-created. Returns whether it created one.
pub async fn ensure_slot(
    ctx: &Context<'_>,
    db: &Db,
    on: &str,
    slot: &str,
    for_host: &str,
) -> Result<bool, Error> {
    let step = "create replication slot";
    let state = db.node_state().await.on_step(on, step)?;
    match state.slots.iter().find(|s| s.name == slot) {
        Some(s) if s.wal_status.as_deref() != Some("lost") => return Ok(false),
        Some(s) => {
            db.drop_slot(slot).await.on_step(on, step)?;
            let why = match s.invalidation_reason.as_deref() {
                Some("idle_timeout") => {
                    "which idle_replication_slot_timeout had invalidated".to_string()
                }
                None | Some("wal_removed") => "which had lost WAL".to_string(),
                Some(other) => format!("which was invalidated ({other})"),
            };
            ctx.ui.info(format!("{on}: dropped slot {slot}, {why}"));
        }
        None => {}
    }
    db.create_physical_slot(slot)
        .await
        .map_err(|e| Error::step(on, "create replication slot", format!("slot {slot}: {e:#}")))?;
    ctx.ui.info(format!(
        "{on}: created physical replication slot {slot} for {for_host}"
    ));
    Ok(true)
}

/// Drops the slots `h` keeps for hosts that do not follow it now (a former primary keeps its
/// replicas' slots; a replica re-pointed elsewhere leaves its slot behind): only inactive
/// physical slots named after inventory hosts. Returns the slots dropped.
pub async fn drop_stale_slots(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
) -> Result<Vec<String>, Error> {
    let mut dropped = Vec::new();
    let step = "drop stale slots";
    let db = ctx.db(t, h).await.on_step(&h.name, step)?;
    let followers: Vec<&str> = inv.followers_of(&h.name).map(|f| f.slot.as_str()).collect();
    for s in db.node_state().await.on_step(&h.name, step)?.slots {
        let ours = inv.hosts.iter().any(|x| x.slot == s.name);
        if ours && !s.active && s.slot_type == "physical" && !followers.contains(&s.name.as_str()) {
            db.drop_slot(&s.name).await.on_step(&h.name, step)?;
            ctx.ui.info(format!(
                "{}: dropped stale slot {} (no host follows {} on it now)",
                h.name, s.name, h.name
            ));
            dropped.push(s.name);
        }
    }
    Ok(dropped)
}
