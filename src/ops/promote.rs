//! `pgrepl promote <host>`: failover that never makes two primaries.
//!
//! Check (pure, `preflight`): the target is a reachable standby; no reachable replica has more
//! WAL (else refuse unless --allow-data-loss); no other node accepts writes (else refuse unless
//! --force, which stops it and proves it down); every other node is either queried, fenceable
//! over its transport, or — unreachable — confirmed dead by the DBA. Act: fence, promote, poll
//! until writable, CHECKPOINT. Then point every reachable sibling at the new primary and verify
//! it streams on the new timeline.
//!
//! Failure semantics: a refusal changes nothing (exit 4/5). A failure after the promotion leaves
//! the new primary writable; the error names what is left (re-running promote on the new primary
//! is refused, so the next step is `pgrepl rebuild <sibling>`).

mod modes;
mod preflight;

use std::time::{Duration, Instant};

use crate::db::Db;
use crate::error::{exit, Error, OnStep};
use crate::inventory::{Host, Inventory};
use crate::pg::{datadir, Lsn};
use crate::steps::config::converge_running;
use crate::steps::probe::discover;
use crate::steps::record::keep_inventory_true;
use crate::steps::routers;
use crate::steps::server::{
    end_of_wal, fence, is_running, kill_and_prove_down, promote, stop_and_prove_down, wait_gone,
};
use crate::steps::slots::ensure_slot;
use crate::steps::streaming::verify_streaming;
use crate::topology::{NodeId, Topology};

pub use preflight::{preflight, Down, Plan, Step};

use super::Context;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The standby to promote.
    pub host: String,
    /// Stop a running primary (and prove it down) first, instead of refusing.
    pub force: bool,
    /// Promote even if another reachable standby has more WAL, or (under a synchronous rule)
    /// the target cannot be proven to hold every acknowledged commit.
    pub allow_data_loss: bool,
    /// Promote a delayed replica (`apply_delay`).
    pub allow_delayed: bool,
}

/// `pgrepl promote`.
pub async fn run(ctx: &Context<'_>, o: Options) -> Result<u8, Error> {
    let started = Instant::now();
    ctx.host_named(&o.host)?;
    // It always asks: without a terminal and without --yes, refuse before any work.
    if !ctx.dry_run {
        ctx.ui.confirmable("promote")?;
    }
    // The siblings and the old primary stream with the password file: it must be usable, and
    // it is checked before anything is contacted.
    ctx.inv.replication_password()?;
    crate::steps::routers::check_logins(&ctx.inv)?;
    ctx.lock("promote").await?;
    let topo = discover(ctx, ctx.inv.timeouts.status).await;
    let down = inspect_down(ctx, &topo, &o.host).await;
    let plan = preflight(&topo, &down, &o).map_err(|problems| Error::Preflight { problems })?;
    let shown: Vec<String> = plan.steps().iter().map(|s| s.to_string()).collect();
    if ctx.dry_run {
        return Ok(super::dry_run(
            ctx,
            &format!("promote {}", plan.target.name),
            &shown,
        ));
    }
    let asked = Instant::now();
    ctx.ui.confirm("promote", &shown.join("; "))?;
    // The time at the prompt is not pgrepl's.
    let started = started + asked.elapsed();
    let eff = topo.intent_after(&plan.target.name, &topo.standby_names(&[]));
    // PgBouncer's read list after the promotion holds the standbys that answer now.
    let mut up = eff.clone();
    up.hosts.retain(|h| {
        h.name == plan.target.name || topo.find(&h.name).is_some_and(|n| n.is_standby())
    });
    Promotion {
        ctx,
        plan: &plan,
        eff,
        up,
    }
    .execute(started)
    .await
}

/// For each host (but the target) whose server did not answer: can pgrepl fence it?
async fn inspect_down(ctx: &Context<'_>, topo: &Topology<'_>, target: &str) -> Vec<(NodeId, Down)> {
    let down: Vec<_> = topo.unreachable().filter(|n| n.name() != target).collect();
    let verdicts = futures_util::future::join_all(down.iter().map(|n| verdict(ctx, n.host))).await;
    down.iter().map(|n| n.id).zip(verdicts).collect()
}

/// What pgrepl can do about one host whose server did not answer. A postmaster that is dying
/// (killed a moment ago) is waited for (`timeouts.status`); one that still runs then is frozen.
async fn verdict(ctx: &Context<'_>, h: &Host) -> Down {
    let Ok(t) = ctx.kept(h).await else {
        return Down::CannotFence;
    };
    let primary_dir = matches!(
        t.run(&datadir::probe(&h.data_dir), None)
            .await
            .ok()
            .and_then(|o| datadir::parse(&o.stdout)),
        Some(datadir::DirState::PgData { standby: false, .. })
    );
    let running = match is_running(t.as_ref(), h).await {
        Ok(true) => !wait_gone(ctx, t.as_ref(), h).await.unwrap_or(false),
        Ok(false) => false,
        Err(_) => return Down::CannotFence,
    };
    match (primary_dir, running) {
        (true, true) => Down::Frozen,
        (true, false) => Down::Fenceable,
        (false, _) => Down::Harmless,
    }
}

/// One promotion being carried out: the plan, and the inventory as it stands once the target is
/// the primary (what the hosts' configurations are rendered from).
struct Promotion<'a, 'c, 'i> {
    ctx: &'a Context<'c>,
    plan: &'a Plan<'i>,
    eff: Inventory,
    /// `eff` without the hosts that do not answer now (PgBouncer's read lists).
    up: Inventory,
}

/// What the promotion did, for the report.
struct Outcome {
    /// The old primary's last WAL position, when pgrepl stopped it.
    old_last: Option<(String, Lsn)>,
    promoted_at: Option<Lsn>,
    to_writable: Duration,
    new_timeline: Option<u32>,
    followers: Vec<String>,
}

impl Promotion<'_, '_, '_> {
    /// Walks the plan: fence, promote, re-point the siblings, verify; then reports.
    async fn execute(&self, started: Instant) -> Result<u8, Error> {
        let target = self.plan.target;
        // The routers' new files are prepared while the promotion runs (it waits for nothing).
        let (promoted, staged) = tokio::join!(self.fence_and_promote(), self.stage());
        let (old_last, promoted_at, db, t_promote, to_writable) = promoted?;
        self.reroute(&staged).await?;
        db.checkpoint().await.on_step(&target.name, "CHECKPOINT")?;
        let new_timeline = db
            .node_state()
            .await
            .on_step(&target.name, "promote")?
            .timeline;
        let followers = self.follow(&db, new_timeline).await?;
        routers::settle(self.ctx, &self.eff).await?;
        self.report(Outcome {
            old_last,
            promoted_at,
            to_writable: t_promote - started + to_writable,
            new_timeline,
            followers,
        });
        Ok(exit::OK)
    }

    /// Fences, then promotes the target: (the old primary's end, the position at promotion, a
    /// session on the new primary, when the promotion started, how long it took).
    async fn fence_and_promote(
        &self,
    ) -> Result<
        (
            Option<(String, Lsn)>,
            Option<Lsn>,
            crate::db::Db,
            Instant,
            Duration,
        ),
        Error,
    > {
        let old_last = self.stop_and_fence().await?;
        let target = self.plan.target;
        let db = self.ctx.session(target, "promote").await?;
        // The position at promotion: read after fencing, so a cleanly stopped primary's final
        // WAL counts.
        let before = db.node_state().await.on_step(&target.name, "promote")?;
        let promoted_at = before
            .receive_lsn
            .max(before.replay_lsn)
            .or(self.plan.target_lsn);
        let t_promote = Instant::now();
        let to_writable = promote(self.ctx, &db, target).await?;
        self.ctx
            .ui
            .done(&target.name, "promoted: accepts writes", to_writable);
        Ok((old_last, promoted_at, db, t_promote, to_writable))
    }

    /// The routers' files for `eff` written beside the current ones; a router that cannot be
    /// reached must not stop a failover (it is installed after the promotion, or the end of
    /// the run says it was not).
    async fn stage(&self) -> routers::Staged {
        match routers::stage(self.ctx, &self.eff, &self.up).await {
            Ok(s) => s,
            Err(e) => {
                self.ctx.ui.warn(format!("the routers' files could not be prepared ({e}); they are installed after the promotion"));
                routers::Staged::default()
            }
        }
    }

    /// Right after the promotion, the routers follow (the siblings can wait for them): the
    /// staged files renamed into place and reloaded, or, if that fails, installed again.
    async fn reroute(&self, staged: &routers::Staged) -> Result<(), Error> {
        if self.eff.routers.is_empty() {
            return Ok(());
        }
        let t0 = Instant::now();
        let switched = match staged.is_empty() {
            true => Err(None),
            false => routers::switch(self.ctx, staged).await.map_err(Some),
        };
        if let Err(why) = switched {
            if let Some(e) = why {
                self.ctx.ui.warn(format!(
                    "switching the routers' staged files failed ({e}); installing them again"
                ));
            }
            // Not fatal here: the siblings follow first; the end of the run checks the routes.
            if let Err(e) = routers::apply(self.ctx, &self.eff).await {
                self.ctx.ui.warn(format!("routers not re-pointed yet: {e}"));
                return Ok(());
            }
        }
        let target = &self.plan.target.name;
        self.ctx.ui.done(
            target,
            &format!("routers re-pointed at {target}"),
            t0.elapsed(),
        );
        Ok(())
    }

    /// Stops (--force) and fences each running primary, then fences each stopped one. Returns
    /// the last stopped primary's shutdown checkpoint.
    async fn stop_and_fence(&self) -> Result<Option<(String, Lsn)>, Error> {
        let mut ends: Vec<(String, Lsn)> = Vec::new();
        for p in &self.plan.stop {
            let t = self.ctx.kept(p).await.on_step(&p.name, "stop PostgreSQL")?;
            let cd = stop_and_prove_down(self.ctx, t.as_ref(), p).await?;
            fence(self.ctx, t.as_ref(), p).await?;
            ends.extend(cd.checkpoint_lsn.map(|l| (p.name.clone(), l)));
        }
        for h in self.plan.kill.iter().chain(&self.plan.fence) {
            let t = self.ctx.kept(h).await.on_step(&h.name, "fence")?;
            if self.plan.kill.iter().any(|k| k.name == h.name) {
                kill_and_prove_down(self.ctx, t.as_ref(), h).await?;
            }
            // How far the old primary wrote (its WAL, read while it is down): what the new
            // timeline may not have.
            ends.extend(end_of_wal(t.as_ref(), h).await.map(|l| (h.name.clone(), l)));
            fence(self.ctx, t.as_ref(), h).await?;
        }
        Ok(ends.into_iter().max_by_key(|(_, l)| *l))
    }

    /// The host of `id` as the inventory stands after the promotion.
    fn after(&self, id: NodeId) -> &Host {
        &self.eff.hosts[id.0]
    }

    /// The new primary's own configuration, then every sibling follows it (its slot on its
    /// upstream, its configuration re-rendered); verified streaming on the new timeline.
    async fn follow(&self, tdb: &Db, new_tli: Option<u32>) -> Result<Vec<String>, Error> {
        let (ctx, eff) = (self.ctx, &self.eff);
        let target = self.after(self.plan.target_id);
        let tt = ctx
            .kept(target)
            .await
            .on_step(&target.name, "reconfigure")?;
        converge_running(ctx, eff, tt.as_ref(), target).await?;
        for &id in &self.plan.siblings {
            let s = self.after(id);
            let up = eff.upstream_of(s).unwrap_or(target);
            if up.name == target.name {
                ensure_slot(ctx, tdb, up, &s.slot, &s.name).await?;
            } else {
                let udb = ctx.session(up, "create replication slot").await?;
                ensure_slot(ctx, &udb, up, &s.slot, &s.name).await?;
            }
            let t = ctx
                .kept(s)
                .await
                .on_step(&s.name, "follow the new primary")?;
            converge_running(ctx, eff, t.as_ref(), s).await?;
        }
        let names: Vec<&str> = self
            .plan
            .siblings
            .iter()
            .map(|&id| self.after(id).name.as_str())
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let t0 = Instant::now();
        let inv_path = ctx.inv.file.display();
        verify_streaming(ctx, eff, &names).await.map_err(|e| {
            e.with_hint(format!("{} is the new primary and accepts writes; re-clone a sibling that does not follow with: pgrepl -i {inv_path} rebuild <sibling>", target.name))
        })?;
        for &id in &self.plan.siblings {
            self.check_timeline(self.after(id), new_tli).await?;
        }
        ctx.ui.done(
            &target.name,
            &format!(
                "{} streaming from it on timeline {}",
                names.join(", "),
                new_tli.unwrap_or(0)
            ),
            t0.elapsed(),
        );
        Ok(names.iter().map(|s| s.to_string()).collect())
    }

    /// A sibling that streams must reach the new primary's timeline: one that was behind first
    /// streams the rest of the old timeline from it, then switches; polled until it has, for at
    /// most `timeouts.streaming`.
    async fn check_timeline(&self, s: &Host, new_tli: Option<u32>) -> Result<(), Error> {
        let step = "follow the new primary";
        let sdb = self.ctx.session(s, step).await?;
        let reached = crate::wait::poll_until(
            "timeouts.streaming",
            self.ctx.inv.timeouts.streaming,
            Duration::from_millis(100),
            || async {
                let tli = sdb.node_state().await?.timeline;
                Ok(if tli == new_tli {
                    crate::wait::Poll::Ready(())
                } else {
                    crate::wait::Poll::Pending(format!(
                        "streams on timeline {}, the new primary is on {}",
                        tli.map_or("?".into(), |t| t.to_string()),
                        new_tli.map_or("?".into(), |t| t.to_string())
                    ))
                })
            },
        )
        .await;
        reached.map_err(|e| {
            Error::step(&s.name, step, e.to_string()).with_hint(format!(
                "pgrepl -i {} rebuild {}",
                self.ctx.inv.file.display(),
                s.name
            ))
        })
    }

    /// The closing lines (and the JSON document with `--format json`).
    fn report(&self, o: Outcome) {
        let (ctx, plan) = (self.ctx, self.plan);
        let inv_path = ctx.inv.file.display().to_string();
        let target = &plan.target.name;
        let lost = match (&o.old_last, o.promoted_at) {
            (Some((_, old)), Some(m)) => Some(m.bytes_until(*old)),
            _ => None,
        };
        let opt = |t: Option<u32>| t.map(|t| t.to_string()).unwrap_or_else(|| "?".into());
        ctx.ui.info(format!(
            "promote: {target} is the primary on timeline {} (was {}), promoted at {}; {}; writable {:.2}s after pgrepl started",
            opt(o.new_timeline),
            opt(plan.old_timeline),
            o.promoted_at.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
            match (&o.old_last, lost) {
                (Some((n, l)), Some(b)) => format!("{n}'s last WAL position {l}: {b} bytes may be lost"),
                _ => "the old primary's last WAL position is unknown (its host could not be reached)".into(),
            },
            o.to_writable.as_secs_f64()
        ));
        for h in &plan.unfenced {
            ctx.ui.warn(format!(
                "{} was not fenced (its host is unreachable): keep it down; when it is back, make it a replica before anything writes to it: pgrepl -i {inv_path} rebuild {}",
                h.name, h.name
            ));
        }
        keep_inventory_true(ctx, &self.eff);
        for h in plan.stop.iter().chain(&plan.kill).chain(&plan.fence) {
            ctx.ui.info(format!(
                "{} is fenced; bring it back as a replica of {target}: pgrepl -i {inv_path} rebuild {}",
                h.name, h.name
            ));
        }
        ctx.result(&super::documents::PromoteDocument {
            promoted: target.clone(),
            old_timeline: plan.old_timeline,
            new_timeline: o.new_timeline,
            promoted_lsn: o.promoted_at.map(|l| l.to_string()),
            old_primary_last_lsn: o.old_last.as_ref().map(|(_, l)| l.to_string()),
            bytes_maybe_lost: lost,
            seconds_to_writable: o.to_writable.as_secs_f64(),
            siblings_following: o.followers,
            unfenced: plan.unfenced.iter().map(|h| h.name.clone()).collect(),
        });
    }
}
