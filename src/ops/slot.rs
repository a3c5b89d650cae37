//! `pgrepl slot drop HOST SLOT`: drop one replication slot on one host, through the inventory's
//! own transport (its ssh user, key, port, known_hosts), so a `status` fix can name a command
//! that works when pasted. The pure preflight ([`decide`]) refuses a slot in use (an active WAL
//! sender, or the slot of an inventory replica that follows this host) unless `--force`;
//! dropping asks, or needs `--yes`. A slot that is not there is nothing to do (exit 0).

use crate::error::{exit, Error, OnStep};
use crate::inventory::Inventory;
use crate::pg::state::Slot;
use crate::steps::slots::{force_drop, forget};

use super::Context;

/// What `slot drop` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The inventory host the slot is on.
    pub host: String,
    /// The slot's name.
    pub slot: String,
    /// Drop it even when in use: end the WAL sender using it first.
    pub force: bool,
}

/// What to do, decided from the slot as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The slot is not there.
    Absent,
    /// Drop it; end its WAL sender first when `terminate`.
    Drop {
        /// A WAL sender uses it now (only with `--force`).
        terminate: bool,
    },
}

/// The preflight: `slot` (None: not on the server) on `host` of `inv`, with `force`. Refuses a
/// slot an inventory replica following `host` is configured to use, and an active slot, unless
/// `force`. Pure.
pub fn decide(
    inv: &Inventory,
    host: &str,
    slot: Option<&Slot>,
    force: bool,
) -> Result<Decision, Error> {
    let Some(s) = slot else {
        return Ok(Decision::Absent);
    };
    let user = inv.followers_of(host).find(|r| r.slot == s.name);
    let refuse = |why: String| {
        Error::refused(
            host,
            "slot in use",
            why,
            format!(
                "add --force to drop it all the same: pgrepl -i {} slot drop {host} {} --force",
                inv.file.display(),
                s.name
            ),
        )
    };
    if !force {
        if let Some(r) = user {
            return Err(refuse(format!(
                "{} follows {host} with slot {}: without it {host} may recycle WAL {} needs",
                r.name, s.name, r.name
            )));
        }
        if s.active {
            return Err(refuse(format!(
                "slot {} is active: a WAL sender streams from it now",
                s.name
            )));
        }
    }
    Ok(Decision::Drop {
        terminate: s.active,
    })
}

/// `pgrepl slot drop`.
pub async fn drop(ctx: &Context<'_>, o: Options) -> Result<u8, Error> {
    let h = ctx.host_named(&o.host)?;
    let step = "drop replication slot";
    let db = ctx.session(h, step).await?;
    let state = db.node_state().await.on_step(&h.name, step)?;
    let slot = state.slots.iter().find(|s| s.name == o.slot);
    let decision = decide(&ctx.inv, &h.name, slot, o.force)?;
    let Decision::Drop { terminate } = decision else {
        ctx.ui.info(format!(
            "{}: no slot {} there; nothing to drop",
            h.name, o.slot
        ));
        if ctx.dry_run {
            return Ok(super::dry_run(ctx, "slot drop", &[]));
        }
        return report(ctx, &h.name, &o.slot, false);
    };
    if ctx.dry_run {
        let what = format!(
            "{}: drop replication slot {}{}",
            h.name,
            o.slot,
            if terminate {
                ", ending the WAL sender that uses it"
            } else {
                ""
            }
        );
        return Ok(super::dry_run(ctx, "slot drop", &[what]));
    }
    ctx.lock("slot drop").await?;
    ctx.ui.confirm(
        "slot drop",
        &format!(
            "drop replication slot {} on {}{}",
            o.slot,
            h.name,
            if terminate {
                ", ending the WAL sender that uses it"
            } else {
                ""
            }
        ),
    )?;
    if terminate {
        force_drop(&db, &o.slot)
            .await
            .map_err(|e| Error::step(&h.name, step, e.to_string()))?;
    } else {
        db.drop_slot(&o.slot).await.on_step(&h.name, step)?;
    }
    forget(ctx, h, std::slice::from_ref(&o.slot)).await;
    ctx.ui.info(format!("{}: dropped slot {}", h.name, o.slot));
    report(ctx, &h.name, &o.slot, true)
}

fn report(ctx: &Context<'_>, host: &str, slot: &str, dropped: bool) -> Result<u8, Error> {
    ctx.result(&super::documents::SlotDropDocument {
        host: host.to_string(),
        slot: slot.to_string(),
        dropped,
    });
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::topology::fixtures::slot;

    #[test]
    fn a_slot_in_use_is_refused_without_force() {
        let inv = crate::topology::fixtures::inventory();
        let used = slot(&inv.host("r1").unwrap().slot, false);
        let e = decide(&inv, "p", Some(&used), false).unwrap_err();
        assert_eq!(e.code(), exit::PREFLIGHT);
        assert!(e.to_string().contains("r1 follows p"), "{e}");
        assert!(e.to_string().contains("slot drop p r1 --force"), "{e}");
        let e = decide(&inv, "p", Some(&slot("x", true)), false).unwrap_err();
        assert!(e.to_string().contains("is active"), "{e}");
        assert_eq!(
            decide(&inv, "p", Some(&slot("x", true)), true).unwrap(),
            Decision::Drop { terminate: true }
        );
    }

    #[test]
    fn a_stale_slot_drops_and_a_missing_one_is_nothing_to_do() {
        let inv = crate::topology::fixtures::inventory();
        assert_eq!(
            decide(&inv, "p", Some(&slot("old", false)), false).unwrap(),
            Decision::Drop { terminate: false }
        );
        // r1's slot on r2 is not in use there: r1 follows p.
        let r1 = slot(&inv.host("r1").unwrap().slot, false);
        assert_eq!(
            decide(&inv, "r2", Some(&r1), false).unwrap(),
            Decision::Drop { terminate: false }
        );
        assert_eq!(decide(&inv, "p", None, false).unwrap(), Decision::Absent);
    }
}
