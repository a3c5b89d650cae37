//! Replication slots: create a replica's slot on its upstream (re-create an invalidated one), and
//! drop the stale slots pgrepl made that no host follows any more (a former primary's replicas,
//! a replica re-pointed elsewhere, a renamed `slot:`, a replica removed from the inventory).
//!
//! Every slot pgrepl creates is written down in a record beside the server's data directory
//! ([`datadir::slots_record`]: `slot replica` per line), so a slot whose name is no longer in the
//! inventory is still known as pgrepl's. Apart from a slot that lost WAL, nothing here drops an
//! active slot, a logical one, or one pgrepl did not make (not in the record, not named after
//! an inventory host's slot).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::context::Context;
use crate::db::Db;
use crate::error::{Error, OnStep};
use crate::inventory::{Host, Inventory};
use crate::pg::datadir;
use crate::transport::Transport;
use crate::wait::{poll_until, Poll, WaitError};

use super::exec::install_file;

/// How long a stale slot of a replica that now streams elsewhere may stay active (its old WAL
/// sender ending) before it is left for the DBA.
const STALE_SLOT_RELEASE: Duration = Duration::from_secs(10);

/// Creates `slot` on `on` unless it exists, and records it as pgrepl's; a slot that was
/// invalidated (`wal_status` `lost`: its WAL was removed, or on 18 it sat idle longer than
/// `idle_replication_slot_timeout`) is dropped and re-created. Returns whether it created one.
pub async fn ensure_slot(
    ctx: &Context<'_>,
    db: &Db,
    on: &Host,
    slot: &str,
    for_host: &str,
) -> Result<bool, Error> {
    let step = "create replication slot";
    let state = db.node_state().await.on_step(&on.name, step)?;
    match state.slots.iter().find(|s| s.name == slot) {
        Some(s) if s.wal_status.as_deref() != Some("lost") => {
            remember(ctx, on, slot, for_host).await?;
            return Ok(false);
        }
        Some(s) => {
            db.drop_slot(slot).await.on_step(&on.name, step)?;
            let why = match s.invalidation_reason.as_deref() {
                Some("idle_timeout") => {
                    "which idle_replication_slot_timeout had invalidated".to_string()
                }
                None | Some("wal_removed") => "which had lost WAL".to_string(),
                Some(other) => format!("which was invalidated ({other})"),
            };
            ctx.ui
                .info(format!("{}: dropped slot {slot}, {why}", on.name));
        }
        None => {}
    }
    create_slot(ctx, db, on, slot, for_host).await?;
    Ok(true)
}

/// Creates `slot` on `on` (it does not exist) and records it as pgrepl's.
pub async fn create_slot(
    ctx: &Context<'_>,
    db: &Db,
    on: &Host,
    slot: &str,
    for_host: &str,
) -> Result<(), Error> {
    db.create_physical_slot(slot).await.map_err(|e| {
        Error::step(
            &on.name,
            "create replication slot",
            format!("slot {slot}: {e:#}"),
        )
    })?;
    ctx.ui.info(format!(
        "{}: created physical replication slot {slot} for {for_host}",
        on.name
    ));
    remember(ctx, on, slot, for_host).await
}

/// The record's entries: slot name → the replica it was made for. Lines that are not two
/// words (comments, blanks) are skipped.
pub fn parse_record(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (slot, host) = (w.next()?, w.next()?);
            w.next()
                .is_none()
                .then(|| (slot.to_string(), host.to_string()))
        })
        .collect()
}

/// The record's text for `entries`.
pub fn render_record(entries: &BTreeMap<String, String>) -> String {
    let mut text =
        String::from("# replication slots pgrepl created on this server: slot replica\n");
    for (slot, host) in entries {
        text.push_str(&format!("{slot} {host}\n"));
    }
    text
}

/// The record on `h` (empty when there is none or it cannot be read).
async fn read_record(t: &dyn Transport, h: &Host) -> BTreeMap<String, String> {
    match t
        .run(
            &datadir::read_file(&datadir::slots_record(&h.data_dir)),
            None,
        )
        .await
    {
        Ok(out) if out.success() => parse_record(&out.stdout),
        _ => BTreeMap::new(),
    }
}

/// Writes the record on `h` with `change` applied; a failure is a warning (the slot itself is
/// fine, only a later clean-up may not know it).
async fn update_record(
    ctx: &Context<'_>,
    h: &Host,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> bool,
) {
    let t = match ctx.kept(h).await {
        Ok(t) => t,
        Err(e) => {
            ctx.ui
                .warn(format!("{}: could not record its slots: {e:#}", h.name));
            return;
        }
    };
    let mut entries = read_record(t.as_ref(), h).await;
    if !change(&mut entries) {
        return;
    }
    let path = datadir::slots_record(&h.data_dir);
    if let Err(e) = install_file(
        t.as_ref(),
        &path,
        "0600",
        &render_record(&entries),
        "record slots",
    )
    .await
    {
        ctx.ui
            .warn(format!("{}: could not update {path}: {e}", h.name));
    }
}

/// Records `slot` on `on` as made by pgrepl for `for_host`.
async fn remember(ctx: &Context<'_>, on: &Host, slot: &str, for_host: &str) -> Result<(), Error> {
    update_record(ctx, on, |e| {
        e.insert(slot.to_string(), for_host.to_string()).as_deref() != Some(for_host)
    })
    .await;
    Ok(())
}

/// Removes `slots` from `on`'s record.
pub async fn forget(ctx: &Context<'_>, on: &Host, slots: &[String]) {
    update_record(ctx, on, |e| {
        let before = e.len();
        e.retain(|slot, _| !slots.contains(slot));
        e.len() != before
    })
    .await;
}

/// A slot on a host that pgrepl made and no host follows there now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleSlot {
    /// The slot's name.
    pub slot: String,
    /// The replica it was made for (from the record, else the inventory host of that `slot:`).
    pub replica: String,
    /// A WAL sender uses it now.
    pub active: bool,
    /// The replica is still in the inventory (its slot was renamed or it was re-pointed).
    pub in_inventory: bool,
}

/// The stale slots among `slots` on `h`: physical, pgrepl's (in `record`, or named after an
/// inventory host's slot), and not the slot of a host that follows `h` in `inv`. Pure.
pub fn stale_slots(
    inv: &Inventory,
    h: &Host,
    record: &BTreeMap<String, String>,
    slots: &[crate::pg::state::Slot],
) -> Vec<StaleSlot> {
    let followers: Vec<&str> = inv.followers_of(&h.name).map(|f| f.slot.as_str()).collect();
    slots
        .iter()
        .filter(|s| s.slot_type == "physical" && !followers.contains(&s.name.as_str()))
        .filter_map(|s| {
            let replica = record.get(&s.name).cloned().or_else(|| {
                inv.hosts
                    .iter()
                    .find(|x| x.slot == s.name)
                    .map(|x| x.name.clone())
            })?;
            Some(StaleSlot {
                slot: s.name.clone(),
                in_inventory: inv.host(&replica).is_some(),
                replica,
                active: s.active,
            })
        })
        .collect()
}

/// Drops the stale slots on `h` (see [`stale_slots`]) and returns them. An active one of an
/// inventory replica (re-pointed or renamed in this run, its old WAL sender about to end) is
/// waited for, briefly; an active one that stays active, or of a replica no longer in the
/// inventory, is kept and said, with the command that drops it.
pub async fn drop_stale_slots(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
) -> Result<Vec<String>, Error> {
    let step = "drop stale slots";
    let db = ctx.db(t, h).await.on_step(&h.name, step)?;
    let record = read_record(t, h).await;
    let live = db.node_state().await.on_step(&h.name, step)?.slots;
    let mut dropped = Vec::new();
    for s in stale_slots(inv, h, &record, &live) {
        let in_use = s.active && !(s.in_inventory && released(&db, &s.slot).await);
        // Still used though its replica was re-pointed or renamed: dropped on confirmation
        // (ending that WAL sender); a removed replica's slot only once inactive.
        let confirmed = in_use
            && s.in_inventory
            && ctx
                .ui
                .confirm(
                    "init",
                    &format!(
                        "drop slot {} on {}: {} no longer uses it, but a WAL sender still does (it is ended)",
                        s.slot, h.name, s.replica
                    ),
                )
                .is_ok();
        if in_use && !confirmed {
            ctx.ui.warn(format!(
                "{}: kept slot {}, which {} but a WAL sender still uses; once nothing streams from it: pgrepl -i {} slot drop {} {}",
                h.name,
                s.slot,
                if s.in_inventory {
                    format!("{} no longer uses", s.replica)
                } else {
                    format!("was made for {}, no longer in the inventory,", s.replica)
                },
                inv.file.display(),
                h.name,
                s.slot
            ));
            continue;
        }
        if confirmed {
            force_drop(&db, &s.slot)
                .await
                .map_err(|e| Error::step(&h.name, step, e.to_string()))?;
        } else {
            db.drop_slot(&s.slot).await.on_step(&h.name, step)?;
        }
        ctx.ui.info(format!(
            "{}: dropped stale slot {} (made for {}, which {})",
            h.name,
            s.slot,
            s.replica,
            if s.in_inventory {
                format!("does not use it on {} now", h.name)
            } else {
                "is no longer in the inventory".into()
            }
        ));
        dropped.push(s.slot);
    }
    if !dropped.is_empty() {
        forget(ctx, h, &dropped).await;
    }
    Ok(dropped)
}

/// Drops slot `name` although a connection uses it: ends that WAL sender and drops, again until
/// the drop wins over the replica reconnecting (10 s at most).
pub async fn force_drop(db: &Db, name: &str) -> Result<(), WaitError> {
    poll_until(
        "slot release (10 s)",
        STALE_SLOT_RELEASE,
        Duration::from_millis(100),
        || async {
            db.terminate_slot_user(name).await?;
            match db.drop_slot(name).await {
                Ok(()) => Ok(Poll::Ready(())),
                // Still there (its WAL sender had not exited yet, or the replica reconnected):
                // again, until the deadline.
                Err(e) if db.slots().await?.iter().any(|s| s.name == name) => {
                    Ok(Poll::Pending(format!("slot {name} not dropped yet: {e:#}")))
                }
                // Gone meanwhile: dropped is dropped.
                Err(_) => Ok(Poll::Ready(())),
            }
        },
    )
    .await
}

/// Whether the slot `name` becomes inactive within [`STALE_SLOT_RELEASE`].
async fn released(db: &Db, name: &str) -> bool {
    poll_until(
        "stale slot release (10 s)",
        STALE_SLOT_RELEASE,
        Duration::from_millis(200),
        || async {
            Ok(if db.slot_active(name).await? {
                Poll::Pending(format!("slot {name} active"))
            } else {
                Poll::Ready(())
            })
        },
    )
    .await
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::topology::fixtures::slot;

    #[test]
    fn the_record_round_trips_and_skips_what_is_not_an_entry() {
        let mut e = BTreeMap::new();
        e.insert("r1".to_string(), "r1".to_string());
        e.insert("old_name".to_string(), "r2".to_string());
        let text = render_record(&e);
        assert!(text.starts_with("# "), "{text}");
        assert_eq!(parse_record(&text), e);
        assert!(parse_record("\n# c\nthree words here\n").is_empty());
    }

    #[test]
    fn stale_means_ours_and_followed_by_nobody() {
        let inv = crate::topology::fixtures::inventory();
        let p = inv.primary();
        let r1 = &inv.replicas().next().unwrap().slot;
        let mut record = BTreeMap::new();
        record.insert("renamed".to_string(), "r2".to_string());
        record.insert("gone".to_string(), "r9".to_string());
        let live = [
            slot(r1, true),
            slot("renamed", false),
            slot("gone", true),
            slot("barman", false),
        ];
        let stale = stale_slots(&inv, p, &record, &live);
        assert_eq!(
            stale,
            [
                StaleSlot {
                    slot: "renamed".into(),
                    replica: "r2".into(),
                    active: false,
                    in_inventory: true
                },
                StaleSlot {
                    slot: "gone".into(),
                    replica: "r9".into(),
                    active: true,
                    in_inventory: false
                },
            ]
        );
        // A logical slot is never pgrepl's to drop.
        let mut logical = slot("renamed", false);
        logical.slot_type = "logical".into();
        assert!(stale_slots(&inv, p, &record, &[logical]).is_empty());
    }
}
