//! `pgrepl switchover <replica>`: a planned change of primary with no lost writes.
//!
//! Check (pure, `preflight`; every failure listed, before the first change): every node
//! reachable; exactly one primary; the candidate streams from it with lag under the warning
//! threshold and replay not paused; the old primary can be rewound if ever needed; the candidate
//! has WAL senders and slots for everyone who will follow it.
//!
//! Act (one method per `Step`): CHECKPOINT the primary; stop it (fast) so its final WAL reaches
//! the standbys; read that shutdown checkpoint's LSN; wait until the candidate has received and
//! replayed past it; promote; poll until writable. — point of no return — Point the siblings at
//! the new primary; start the old primary as its standby (pg_rewind only if it cannot follow);
//! verify all stream.
//!
//! Failure semantics: before the promotion, pgrepl rolls back — the old primary starts again as
//! primary, verified writable — and exits 8 ("failed, nothing changed"). After it, exit 7
//! ("incomplete") with each node's state and the next command.

mod after;
mod preflight;
mod rollback;

use std::time::{Duration, Instant};

use crate::db::Db;
use crate::error::{exit, Error, Incomplete, OnStep, StepFailure};
use crate::inventory::{Host, Inventory, Role, Secret};
use crate::pg::{ctl, datadir, Lsn};
use crate::steps::config::{converge_running, install_passfile};
use crate::steps::exec::run_step;
use crate::steps::probe::{collect, discover};
use crate::steps::record::keep_inventory_true;
use crate::steps::rewind::rewind_from;
use crate::steps::routers::{self, pause_writes};
use crate::steps::server::{
    control_data, fence, is_running, server, standby_signal, start, start_as_standby,
    stop_and_prove_down, wait_writable,
};
use crate::steps::slots::{drop_stale_slots, ensure_slot};
use crate::steps::streaming::verify_streaming;
use crate::topology::Topology;
use crate::transport::Transport;
use crate::ui::Format;
use crate::wait::{poll_until, Poll};

pub use preflight::{preflight, Plan, Shown, Step};

use super::Context;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// A host name, or `auto` (the most caught-up healthy replica).
    pub to: String,
    /// Check and print the plan; change nothing.
    pub dry_run: bool,
}

/// `pgrepl switchover`.
pub async fn run(ctx: &Context<'_>, o: Options) -> Result<u8, Error> {
    let started = Instant::now();
    // An unknown host fails as in promote and rebuild (exit 4), before anything is contacted.
    if o.to != "auto" {
        ctx.host_named(&o.to)?;
    }

    if !o.dry_run {
        ctx.ui.confirmable("switchover")?;
    }
    // The password is read (its file's mode checked) before anything is contacted.
    let password = ctx.inv.replication_password()?;
    crate::steps::routers::check_logins(&ctx.inv)?;
    // "No other pgrepl operation runs on this cluster" (a dry run holds it while it checks).
    ctx.lock("switchover").await?;
    let topo = discover(ctx, ctx.inv.timeouts.status).await;
    // The primary's archiver: a clean shutdown waits for it.
    let archiver = match topo.primary() {
        Some(p) => match ctx.session(p.host, "archiver").await {
            Ok(db) => db.archiver().await.ok(),
            Err(_) => None,
        },
        None => None,
    };
    let plan = preflight(&topo, &ctx.inv.thresholds, &o, archiver.as_ref())
        .map_err(|problems| Error::Preflight { problems })?;
    let (old, cand) = (plan.old, plan.candidate);
    if plan.auto {
        ctx.ui.info(format!(
            "switchover --to auto: {} is the most caught-up replica streaming from {}",
            cand.name, old.name
        ));
    }
    let described = after::described(&plan, &ctx.inv);
    if o.dry_run && ctx.ui.format() == Format::Json {
        let steps: Vec<String> = described.lines().map(str::to_string).collect();
        ctx.ui.json(&super::documents::SwitchoverPlanDocument {
            dry_run: true,
            old_primary: old.name.clone(),
            new_primary: cand.name.clone(),
            steps,
        });
        return Ok(exit::OK);
    }
    if o.dry_run {
        ctx.ui.data(&format!(
            "switchover {} -> {} (dry run: every check passed; nothing was changed)\n{}\n",
            old.name, cand.name, described
        ));
        return Ok(exit::OK);
    }
    ctx.ui.confirm(
        "switchover",
        &format!(
            "make {} the primary instead of {} ({} is stopped briefly)",
            cand.name, old.name, old.name
        ),
    )?;
    let to = ctx.kept(old).await.on_step(&old.name, "switchover")?;
    let cdb = ctx.session(cand, "switchover").await?;
    Switchover {
        ctx,
        plan: &plan,
        eff: switchover_intent(&topo, &plan),
        old_t: to.as_ref(),
        cdb: &cdb,
        password: &password,
    }
    .execute(started)
    .await
}

/// The inventory once the candidate is the primary: every standby it re-points follows a live
/// standby or the candidate, and the old primary follows the candidate directly.
fn switchover_intent(topo: &Topology<'_>, plan: &Plan<'_>) -> Inventory {
    let mut moved = topo.standby_names(&[]);
    moved.push(&plan.old.name);
    let mut eff = topo.intent_after(&plan.candidate.name, &moved);
    if let Some(h) = eff.hosts.iter_mut().find(|h| h.name == plan.old.name) {
        h.upstream = Some(plan.candidate.name.clone());
    }
    eff
}

/// One switchover being carried out.
struct Switchover<'a, 'c, 'i> {
    ctx: &'a Context<'c>,
    plan: &'a Plan<'i>,
    /// The inventory as it stands once the candidate is the primary.
    eff: Inventory,
    /// The old primary's host.
    old_t: &'a dyn Transport,
    /// A session on the candidate.
    cdb: &'a Db,
    password: &'a Secret,
}

impl Switchover<'_, '_, '_> {
    /// Narrates a finished step with its number and duration.
    fn done(&self, host: &Host, step: Step, what: &str, t0: Instant) {
        self.ctx.ui.done(
            &host.name,
            &format!("{}. {what}", step.number()),
            t0.elapsed(),
        );
    }

    /// Steps 1–5, then (past the point of no return) 6–7, then the report.
    async fn execute(&self, started: Instant) -> Result<u8, Error> {
        let (old, cand) = (self.plan.old, self.plan.candidate);
        let t0 = Instant::now();
        self.checkpoint().await?;
        self.done(old, Step::Checkpoint, "CHECKPOINT", t0);
        // The routers' files for the new topology, written beside the current ones (the old
        // primary out of PgBouncer's read list: it is about to stop). Then PgBouncer's write
        // routes hold new transactions (clients wait, they see no error) from before the stop
        // until the new primary takes them.
        let staged = self.stage_routes().await?;
        let paused = pause_writes(self.ctx, &self.ctx.inv).await?;
        let gap_start = Instant::now();
        if !paused.is_empty() {
            self.ctx
                .ui
                .info(format!("{}: writes paused", paused.join(", ")));
        }
        let ckpt = self.stop_old().await?;
        let t0 = Instant::now();
        self.fence_and_catch_up(ckpt).await?;
        self.done(
            cand,
            Step::CatchUp,
            &format!("received and replayed past {ckpt}"),
            t0,
        );
        let t0 = Instant::now();
        self.promote().await?;
        let gap = gap_start.elapsed();
        self.done(
            cand,
            Step::Promote,
            &format!(
                "promoted: accepts writes ({:.3}s after {} stopped taking them)",
                gap.as_secs_f64(),
                old.name
            ),
            t0,
        );
        self.reroute(&staged, &paused).await?;
        if let Err(e) = self.finish().await {
            let inv_path = self.ctx.inv.file.display();
            return Err(self.incomplete("rejoin", format!("{e}"), format!("{} is the primary and accepts writes; complete the switchover with: pgrepl -i {inv_path} rebuild {}", cand.name, old.name)).await);
        }
        if let Err(e) = routers::settle(self.ctx, &self.eff).await {
            return Err(self
                .incomplete(
                    "verify routers",
                    format!("{e}"),
                    format!(
                        "{} is the primary; re-point the routers: pgrepl -i {} init",
                        cand.name,
                        self.ctx.inv.file.display()
                    ),
                )
                .await);
        }
        let tli = self
            .cdb
            .node_state()
            .await
            .on_step(&cand.name, "switchover")?
            .timeline;
        self.report(tli, ckpt, gap, started);
        Ok(exit::OK)
    }

    /// Step 1: a CHECKPOINT, so the shutdown checkpoint is short.
    async fn checkpoint(&self) -> Result<(), Error> {
        let old = self.plan.old;
        let db = self
            .ctx
            .db(self.old_t, old)
            .await
            .on_step(&old.name, "CHECKPOINT")?;
        db.checkpoint().await.on_step(&old.name, "CHECKPOINT")
    }

    /// Steps 2 and 3: stop the old primary (fast) and read its shutdown checkpoint's LSN. A
    /// failure rolls back.
    async fn stop_old(&self) -> Result<Lsn, Error> {
        let old = self.plan.old;
        let t0 = Instant::now();
        // From here until the promotion, an interrupted run starts it again (`steps::undo`):
        // also while the stop itself runs.
        self.ctx.rollback_pending(&old.name);
        let stop = ctl::stop(&server(old), self.plan.stop_timeout.as_secs());
        if let Err(e) = run_step(self.old_t, &stop, "stop PostgreSQL", None).await {
            if let Err(e) = self.finish_held_up_stop(e).await {
                return Err(self
                    .rollback(&format!("stopping {} failed: {e}", old.name))
                    .await);
            }
        }
        self.done(old, Step::StopOld, "stopped (fast)", t0);
        let t0 = Instant::now();
        let ckpt = match control_data(self.old_t, old)
            .await
            .map(|c| (c.cluster_state.clone(), c.checkpoint_lsn))
        {
            Ok((Some(s), Some(l))) if s == "shut down" => l,
            other => {
                let why = format!("{} did not shut down cleanly ({other:?})", old.name);
                return Err(self.rollback(&why).await);
            }
        };
        self.done(
            old,
            Step::ReadShutdownCheckpoint,
            &format!("shutdown checkpoint at {ckpt}"),
            t0,
        );
        Ok(ckpt)
    }

    /// A fast shutdown that did not end within its deadline: when the shutdown checkpoint is
    /// written (`pg_controldata` says `shut down`), the server accepts nothing any more and only
    /// its last processes (a stuck archiver, WAL senders) hold it up: it is stopped `immediate`
    /// (the checkpoint stays the last record) and the switchover goes on. Otherwise `Err` (the
    /// caller rolls back).
    async fn finish_held_up_stop(&self, e: Error) -> Result<(), Error> {
        let old = self.plan.old;
        let cd = control_data(self.old_t, old).await?;
        if cd.cluster_state.as_deref() != Some("shut down") || cd.checkpoint_lsn.is_none() {
            return Err(e);
        }
        self.ctx.ui.warn(format!(
            "{}: the fast shutdown wrote its checkpoint but did not end within {}s (timeouts.start; a stuck archive_command or WAL sender holds it); stopping what is left (immediate)",
            old.name,
            self.plan.stop_timeout.as_secs()
        ));
        let secs = self.plan.stop_timeout.as_secs();
        run_step(
            self.old_t,
            &ctl::stop_immediate(&server(old), secs),
            "stop PostgreSQL (immediate)",
            None,
        )
        .await?;
        Ok(())
    }

    /// Step 4, with the fence: the old primary is fenced (`standby.signal`) while the candidate
    /// catches up — both before the promotion, so however this run ends from here on, a restart
    /// of the old primary (a boot script) gives a standby, never a second primary; done side by
    /// side, the fence costs the write gap nothing. Either failing rolls back.
    async fn fence_and_catch_up(&self, ckpt: Lsn) -> Result<(), Error> {
        let old = self.plan.old;
        let (fenced, caught_up) =
            tokio::join!(fence(self.ctx, self.old_t, old), self.catch_up(ckpt));
        let why = match (fenced, caught_up) {
            (Ok(()), Ok(())) => return Ok(()),
            (Err(e), _) => format!("fencing {} failed: {e}", old.name),
            (_, Err(why)) => why,
        };
        Err(self.rollback(&why).await)
    }

    /// Step 4: wait (`timeouts.promote`) until the candidate received and replayed past `ckpt`;
    /// `Err` says why it did not.
    async fn catch_up(&self, ckpt: Lsn) -> Result<(), String> {
        let cand = &self.plan.candidate.name;
        let caught_up = poll_until(
            "timeouts.promote",
            self.plan.promote_timeout,
            Duration::from_millis(10),
            || async {
                Ok(match self.cdb.received_and_replayed().await? {
                    (Some(r), Some(p)) if r > ckpt && p > ckpt => Poll::Ready(()),
                    (r, p) => Poll::Pending(format!(
                        "{cand} received {:?}, replayed {:?}, needs past {ckpt}",
                        r.map(|l| l.to_string()),
                        p.map(|l| l.to_string())
                    )),
                })
            },
        )
        .await;
        caught_up.map_err(|e| format!("{cand} did not catch up: {e:#}"))
    }

    /// Step 5: promote the candidate. A refused request while it is still in recovery rolls
    /// back; once it may be writable (the point of no return), a failure is "incomplete".
    async fn promote(&self) -> Result<(), Error> {
        let cand = self.plan.candidate;
        // The old primary stays fenced from here on: an interruption must not restart it.
        self.ctx.take_pending_rollback();
        // An interruption from here on is finished by other commands than this one.
        let inv_path = self.ctx.inv.file.display();
        let old = self.plan.old;
        self.ctx.interrupted_after(StepFailure {
            host: Some(cand.name.clone()),
            step: "switchover".into(),
            message: format!(
                "{} was promoted (or was being promoted: pgrepl status says which); {} is stopped and fenced (it can only start read-only); the other replicas may still follow {}",
                cand.name, old.name, old.name
            ),
            hint: Some(format!(
                "finish the switchover: pgrepl -i {inv_path} rebuild {} --yes && pgrepl -i {inv_path} init --yes (re-points the other replicas and updates the inventory)",
                old.name
            )),
            ..StepFailure::default()
        });
        if let Err(e) = self.cdb.promote(self.plan.promote_timeout).await {
            if self.cdb.in_recovery().await.unwrap_or(false) {
                let why = format!("promoting {} failed: {e:#}", cand.name);
                return Err(self.rollback(&why).await);
            }
        }
        // — point of no return: the candidate may be writable from here on —
        if let Err(e) = wait_writable(&self.ctx.inv, self.cdb).await {
            let next = format!(
                "read {}'s server log: tail -n 50 {}",
                cand.name, cand.log_file
            );
            return Err(self.incomplete("promote", format!("{e:#}"), next).await);
        }
        Ok(())
    }

    /// Steps 6 and 7, after the point of no return: the siblings follow the new primary, the old
    /// primary rejoins as a standby (pg_rewind only if it cannot follow); all verified.
    async fn finish(&self) -> Result<(), Error> {
        let (ctx, eff, cand) = (self.ctx, &self.eff, self.plan.candidate);
        let old = eff.host(&self.plan.old.name).unwrap_or(self.plan.old);
        let t0 = Instant::now();
        self.cdb
            .checkpoint()
            .await
            .on_step(&cand.name, "CHECKPOINT")?;
        // The new primary's own files: rendered as a primary's (no primary_conninfo, no slot).
        let new_primary = eff.host(&cand.name).unwrap_or(cand);
        let tc = ctx
            .kept(new_primary)
            .await
            .on_step(&cand.name, "reconfigure")?;
        converge_running(ctx, eff, tc.as_ref(), new_primary).await?;
        // Siblings first: healthy and quick; if the old primary then fails to rejoin, only it is
        // left to rebuild.
        let siblings: Vec<&Host> = eff.replicas().filter(|h| h.name != old.name).collect();
        for s in &siblings {
            if eff.upstream_of(s).is_some_and(|u| u.name == cand.name) {
                ensure_slot(ctx, self.cdb, cand, &s.slot, &s.name).await?;
            }
            let t = ctx
                .kept(s)
                .await
                .on_step(&s.name, "follow the new primary")?;
            converge_running(ctx, eff, t.as_ref(), s).await?;
        }
        let names: Vec<&str> = siblings.iter().map(|h| h.name.as_str()).collect();
        ctx.ui.done(
            &cand.name,
            &format!("6. siblings re-pointed: {}", names.join(", ")),
            t0.elapsed(),
        );
        let t0 = Instant::now();
        install_passfile(ctx, self.old_t, old, self.password).await?;
        ensure_slot(ctx, self.cdb, cand, &old.slot, &old.name).await?;
        start_as_standby(ctx, eff, self.old_t, old).await?;
        ctx.ui.done(
            &old.name,
            &format!("7. started as a standby of {}", cand.name),
            t0.elapsed(),
        );
        let t0 = Instant::now();
        if verify_streaming(ctx, eff, &[old.name.as_str()])
            .await
            .is_err()
        {
            ctx.ui.warn(format!(
                "{} does not follow {}; rewinding it",
                old.name, cand.name
            ));
            stop_and_prove_down(ctx, self.old_t, old).await?;
            rewind_from(ctx, self.old_t, old, eff.primary(), eff).await?;
            start_as_standby(ctx, eff, self.old_t, old).await?;
        }
        verify_streaming(ctx, eff, &[]).await?;
        // As a primary it kept its replicas' slots; they would retain WAL there for nobody.
        drop_stale_slots(ctx, eff, self.old_t, old).await?;
        ctx.ui.done(
            &cand.name,
            "every replica streams from the new primary",
            t0.elapsed(),
        );
        Ok(())
    }
}
