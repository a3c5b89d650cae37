//! Keeping the inventory true after a command changed the cluster: the file's `role:` and
//! `upstream:` are updated in place (`inventory::write_back`), or — with
//! `--no-write-inventory`, or when the file cannot be edited — the exact edit is printed for the
//! DBA. Touches no host.

use crate::context::Context;
use crate::inventory::{edit_text, write_back, Inventory, Role};

/// Makes the inventory file describe `wanted` (the cluster as it stands after this run), and
/// says what changed, or prints the edit to make by hand.
pub fn keep_inventory_true(ctx: &Context<'_>, wanted: &Inventory) {
    let file = ctx.inv.file.display();
    // The edits as they would be made to the file itself (explicit keys included), else as a
    // DBA would describe them.
    let edits = std::fs::read_to_string(&ctx.inv.file)
        .ok()
        .and_then(|text| edit_text(&text, &ctx.inv.file, wanted).ok())
        .map(|(_, changes)| changes)
        .unwrap_or_else(|| described_edits(&ctx.inv, wanted));
    if edits.is_empty() {
        return;
    }
    if !ctx.write_inventory {
        ctx.ui.info(format!(
            "edit {file} (--no-write-inventory): {}",
            edits.join("; ")
        ));
        return;
    }
    match write_back(&ctx.inv.file, wanted) {
        Ok(changes) if changes.is_empty() => {}
        Ok(changes) => ctx
            .ui
            .info(format!("updated {file}: {}", changes.join("; "))),
        Err(why) => ctx.ui.warn(format!(
            "could not update {file} ({why}); edit it: {}",
            edits.join("; ")
        )),
    }
}

/// The edits, as a DBA would make them, that turn `now` into `wanted` (roles and upstreams; a
/// replica without `upstream:` follows the primary).
pub fn described_edits(now: &Inventory, wanted: &Inventory) -> Vec<String> {
    let mut edits = Vec::new();
    for w in &wanted.hosts {
        let Some(n) = now.host(&w.name) else { continue };
        if n.role != w.role {
            let role = match w.role {
                Role::Primary => "primary",
                Role::Replica => "replica",
            };
            edits.push(format!("role: {role} on {}", w.name));
        }
        // A replica that follows the primary needs no `upstream:`; compare the others.
        let cascade = |inv: &Inventory, name: &str| -> Option<String> {
            let h = inv.host(name)?;
            let u = inv.upstream_of(h)?;
            (h.role == Role::Replica && u.name != inv.primary().name).then(|| u.name.clone())
        };
        match w.role {
            Role::Primary if n.role == Role::Replica => {
                edits.push(format!("remove any upstream: from {}", w.name))
            }
            Role::Replica if cascade(now, &n.name) != cascade(wanted, &w.name) => {
                edits.push(match cascade(wanted, &w.name) {
                    Some(u) => format!("upstream: {u} on {}", w.name),
                    None => format!("remove upstream: from {} (it follows the primary)", w.name),
                })
            }
            _ => {}
        }
    }
    edits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edits_after_a_failover() {
        let inv = crate::topology::fixtures::inventory();
        let wanted = inv.with_primary("r1");
        assert_eq!(
            described_edits(&inv, &wanted),
            [
                "role: replica on p",
                "role: primary on r1",
                "remove any upstream: from r1"
            ]
        );
        assert!(described_edits(&inv, &inv).is_empty());
    }
}
