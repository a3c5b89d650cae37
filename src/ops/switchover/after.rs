//! The switchover's last steps: the routers re-pointed at the new primary (PgBouncer's paused
//! writes resumed), and the report.

use super::*;

/// The plan's lines, the routers' after them (what `--dry-run` prints).
pub(super) fn described(plan: &Plan<'_>, inv: &Inventory) -> String {
    [plan.describe()]
        .into_iter()
        .chain(routing_lines(inv, &plan.candidate.name))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the switchover does to the routers, for the plan: PgBouncer's write routes paused
/// around the change, every router re-pointed and verified.
fn routing_lines(inv: &Inventory, cand: &str) -> Vec<String> {
    let names = |pgb: bool| -> Vec<&str> {
        inv.routers
            .iter()
            .filter(|r| !pgb || r.kind == crate::inventory::RouterKind::Pgbouncer)
            .map(|r| r.name.as_str())
            .collect()
    };
    let mut out = Vec::new();
    if !names(true).is_empty() {
        out.push(format!(
            "   around 2-5: PgBouncer write routes paused (clients wait): {}",
            names(true).join(", ")
        ));
    }
    if !names(false).is_empty() {
        out.push(format!(
            "   after 5: routers re-pointed at {cand} and verified: {}",
            names(false).join(", ")
        ));
    }
    out
}

impl Switchover<'_, '_, '_> {
    /// Before the stop: every router's files for the new topology staged (`routers::stage`).
    pub(super) async fn stage_routes(&self) -> Result<routers::Staged, Error> {
        let mut up = self.eff.clone();
        up.hosts.retain(|h| h.name != self.plan.old.name);
        routers::stage(self.ctx, &self.eff, &up).await
    }

    /// Right after the promotion: every router re-pointed at the new primary (files rendered
    /// from the new topology, reloaded), then the paused PgBouncer write routes resumed, also
    /// when re-pointing failed (clients then get errors, not a hang). A failure is incomplete.
    pub(super) async fn reroute(
        &self,
        staged: &routers::Staged,
        paused: &[String],
    ) -> Result<(), Error> {
        if self.eff.routers.is_empty() {
            return Ok(());
        }
        let t0 = Instant::now();
        let applied = match routers::switch(self.ctx, staged).await {
            Ok(()) => Ok(Vec::new()),
            Err(e) => {
                self.ctx.ui.warn(format!(
                    "switching the routers' staged files failed ({e}); installing them again"
                ));
                routers::apply(self.ctx, &self.eff).await
            }
        };
        let resumed = match paused.is_empty() {
            true => Ok(()),
            false => routers::resume_writes(self.ctx, &self.eff).await,
        };
        let cand = self.plan.candidate;
        let next = format!(
            "{} is the primary; re-point the routers: pgrepl -i {} init",
            cand.name,
            self.ctx.inv.file.display()
        );
        if resumed.is_ok() && !paused.is_empty() {
            self.ctx
                .ui
                .info(format!("{}: writes resumed", paused.join(", ")));
        }
        if let Err(e) = applied.and(resumed) {
            return Err(self
                .incomplete("re-point routers", format!("{e}"), next)
                .await);
        }
        self.ctx.ui.done(
            &cand.name,
            "routers re-pointed at the new primary",
            t0.elapsed(),
        );
        Ok(())
    }

    /// The closing lines (and the JSON document with `--format json`).
    pub(super) fn report(&self, tli: Option<u32>, ckpt: Lsn, gap: Duration, started: Instant) {
        let (ctx, old, cand) = (self.ctx, self.plan.old, self.plan.candidate);
        ctx.ui.info(format!(
            "switchover: {} is the primary (timeline {}), {} follows it; writes were refused for {:.3}s; done in {:.1}s",
            cand.name,
            tli.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
            old.name,
            gap.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ));
        keep_inventory_true(ctx, &self.eff);
        ctx.result(&crate::ops::documents::SwitchoverDocument {
            old_primary: old.name.clone(),
            new_primary: cand.name.clone(),
            timeline: tli,
            shutdown_checkpoint_lsn: ckpt.to_string(),
            write_gap_seconds: gap.as_secs_f64(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }
}
