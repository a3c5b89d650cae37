//! `pgrepl rebuild <host>`: bring a broken, lagging, diverged or former primary back as a
//! replica of the live topology — by pg_rewind when its preconditions hold, by a fresh clone
//! otherwise, with the reason said.
//!
//! Never touches a writable node (the live primary, or a zombie primary: stop it first). Every
//! check runs before the first change (pure, `preflight`); the DBA confirms (or `--yes`). A
//! clone goes into `<data_dir>.pgrepl-new` and replaces the data directory only when the copy is
//! complete; the old data stays in `<data_dir>.pgrepl-old` until the new replica streams (then
//! it is removed, unless `--keep-old`). pg_rewind runs with `--dry-run` first; with `--method
//! auto` a failed rewind (or a rewound node that does not start or stream) falls back to a clone.

mod preflight;

use std::sync::Arc;
use std::time::Instant;

use crate::error::{exit, Error};
use crate::inventory::{Host, Inventory, Secret};
use crate::pg::{datadir, rewind};
use crate::steps::clone::{stage, swap_in, Cloned};
use crate::steps::config::install_passfile;
use crate::steps::exec::run_step;
use crate::steps::probe::discover;
use crate::steps::record::keep_inventory_true;
use crate::steps::rewind::{rewind_from, Discarded};
use crate::steps::server::{control_data, is_running, start_as_standby, stop_and_prove_down};
use crate::steps::slots::{drop_stale_slots, ensure_slot};
use crate::steps::streaming::verify_streaming;
use crate::transport::Transport;

pub use preflight::{plan, source, HostFacts, Plan, Step};

use super::documents::{RebuildDocument, RebuiltBy};
use super::Context;

/// How to rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// pg_rewind when its preconditions hold, else (or if it fails) a fresh clone.
    Auto,
    /// pg_rewind only: refused when its preconditions do not hold, no fallback to a clone.
    Rewind,
    /// A fresh pg_basebackup clone via `<data_dir>.pgrepl-new`, even when pg_rewind is possible.
    Clone,
}

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The host to rebuild as a replica.
    pub host: String,
    /// `--method`: how to rebuild (default [`Method::Auto`]).
    pub method: Method,
    /// Keep `<data_dir>.pgrepl-old` after a clone.
    pub keep_old: bool,
}

/// `pgrepl rebuild`.
pub async fn run(ctx: &Context<'_>, o: Options) -> Result<u8, Error> {
    let started = Instant::now();
    let h = ctx.host_named(&o.host)?;
    if !ctx.dry_run {
        ctx.ui.confirmable(&format!("rebuild {}", h.name))?;
    }
    // The password is read (its file's mode checked) before anything is contacted.
    let secret = ctx.inv.replication_password()?;
    crate::steps::routers::check_logins(&ctx.inv)?;
    let certs = crate::steps::tls::ca::load(&ctx.inv, false)?;
    ctx.lock("rebuild").await?;
    let topo = discover(ctx, ctx.inv.timeouts.status).await;
    let primary = source(&topo, &o).map_err(|problems| Error::Preflight { problems })?;
    let eff = topo.intent_after(primary.name(), &[o.host.as_str()]);
    let t = ctx.kept(h).await;
    let password = t.as_ref().ok().map(|_| secret);
    let facts = match &t {
        Ok(t) => host_facts(t.as_ref(), h).await,
        Err(e) => HostFacts {
            unreachable: Some(format!("{e:#}")),
            dir: None,
            running: false,
            rewind_blocker: None,
        },
    };
    let plan = plan(&eff, &topo, &facts, &o).map_err(|problems| Error::Preflight { problems })?;
    // The plan refuses an unreachable host, so both are there.
    let (Ok(t), Some(password)) = (t, password) else {
        return Err(Error::refused(
            &h.name,
            "reachable",
            format!("{} cannot be reached", h.name),
            "rebuild needs to reach the host itself".into(),
        ));
    };
    if ctx.dry_run {
        let steps: Vec<String> = plan.describe().lines().map(str::to_string).collect();
        return Ok(super::dry_run(
            ctx,
            &format!("rebuild {}", plan.host.name),
            &steps,
        ));
    }
    ctx.ui
        .confirm(&format!("rebuild {}", plan.host.name), &plan.describe())?;
    Rebuild {
        ctx,
        plan: &plan,
        eff: &eff,
        t,
        password: &password,
        certs: certs.as_ref(),
    }
    .execute(started)
    .await
}

/// What the host itself says: its data directory, its server, whether pg_rewind could run.
async fn host_facts(t: &dyn Transport, h: &Host) -> HostFacts {
    let dir = t
        .run(&datadir::probe(&h.data_dir), None)
        .await
        .ok()
        .and_then(|o| datadir::parse(&o.stdout));
    let running = is_running(t, h).await.unwrap_or(false);
    let rewind_blocker = match &dir {
        Some(datadir::DirState::PgData { .. }) => match control_data(t, h).await {
            Ok(cd) => rewind::blocker(&cd),
            Err(e) => Some(format!("pg_controldata failed: {e}")),
        },
        other => Some(format!("there is no data directory to rewind ({other:?})")),
    };
    HostFacts {
        unreachable: None,
        dir,
        running,
        rewind_blocker,
    }
}

/// One rebuild being carried out.
struct Rebuild<'a, 'c, 'e> {
    ctx: &'a Context<'c>,
    plan: &'a Plan<'e>,
    eff: &'e Inventory,
    t: Arc<dyn Transport>,
    password: &'a Secret,
    /// The TLS certificates' source (None with `tls: off`): the rebuilt host gets its files.
    certs: Option<&'a crate::steps::tls::ca::Certs>,
}

impl Rebuild<'_, '_, '_> {
    /// Walks the plan; a rewind that fails, or a rewound node that does not start or stream,
    /// falls back to a clone with `--method auto`.
    async fn execute(&self, started: Instant) -> Result<u8, Error> {
        let (ctx, h, up) = (self.ctx, self.plan.host, self.plan.upstream);
        let t = self.t.as_ref();
        if self.plan.running {
            stop_and_prove_down(ctx, t, h).await?;
        }
        install_passfile(ctx, t, h, self.password).await?;
        if let Some(certs) = self.certs {
            crate::steps::tls::install(ctx, self.eff, t, h, certs, false).await?;
        }
        let udb = ctx.session(up, "create replication slot").await?;
        ensure_slot(ctx, &udb, up, &h.slot, &h.name).await?;
        let (mut used, mut why) = (self.plan.method, self.plan.reason.clone());
        let mut discarded = Discarded::default();
        let mut cloned = None;
        if used == Method::Rewind {
            match rewind_from(ctx, t, h, self.plan.primary, self.eff).await {
                Ok(d) => discarded = d,
                Err(e) if !self.plan.fallback => return Err(e),
                Err(e) => {
                    ctx.ui.warn(format!(
                        "{}: pg_rewind failed, falling back to a fresh clone: {e}",
                        h.name
                    ));
                    used = Method::Clone;
                    why = format!("pg_rewind failed: {}", first_line(&e));
                }
            }
        }
        if used == Method::Clone {
            cloned = Some(
                self.clone_or_restart(self.plan.method == Method::Clone)
                    .await?,
            );
        }
        let t0 = Instant::now();
        if let Err(e) = self.join().await {
            if used != Method::Rewind || !self.plan.fallback {
                return Err(self.with_old_copy_hint(e, cloned.as_ref()));
            }
            // A rewound node that does not start or stream (a broken file pg_rewind left
            // alone): a fresh clone replaces it, the old data kept until the clone streams.
            ctx.ui.warn(format!("{}: after the rewind it does not start or stream ({}); falling back to a fresh clone", h.name, first_line(&e)));
            if is_running(t, h).await? {
                stop_and_prove_down(ctx, t, h).await?;
            }
            used = Method::Clone;
            why = format!(
                "the rewound data directory did not start or stream: {}",
                first_line(&e)
            );
            let c = self.clone_or_restart(false).await?;
            self.join()
                .await
                .map_err(|e| self.with_old_copy_hint(e, Some(&c)))?;
            cloned = Some(c);
        }
        ctx.ui.done(
            &h.name,
            &format!("streaming from {}, slot {} active", up.name, h.slot),
            t0.elapsed(),
        );
        drop_stale_slots(ctx, self.eff, t, h).await?;
        // The routers' read routes take it back; their write routes stay on the primary.
        crate::steps::routers::settle(ctx, self.eff).await?;
        if let Some(c) = cloned.filter(|_| !self.plan.keep_old) {
            for old in c.old_copies() {
                run_step(t, &datadir::remove_ours(&old), "remove the old copy", None).await?;
            }
        }
        self.report(used, &why, &discarded, started);
        Ok(exit::OK)
    }

    /// Starts the host as a standby and verifies it streams with its slot active.
    async fn join(&self) -> Result<(), Error> {
        let h = self.plan.host;
        start_as_standby(self.ctx, self.eff, self.t.as_ref(), h).await?;
        verify_streaming(self.ctx, self.eff, &[h.name.as_str()]).await
    }

    /// A fresh clone. If the copy fails (nothing was moved: the data directory is untouched)
    /// and `restart` (the run stopped the server, nothing else changed the data), the server is
    /// started again on its previous data, so a failed clone leaves the replica running.
    async fn clone_or_restart(&self, restart: bool) -> Result<Cloned, Error> {
        let (ctx, h, t) = (self.ctx, self.plan.host, self.t.as_ref());
        if restart && self.plan.running {
            // Interrupted before the swap, the run starts it again on its data (steps::undo).
            ctx.stopped_for_clone(Some(&h.name));
        }
        let staged = stage(ctx, self.eff, t, h).await;
        ctx.stopped_for_clone(None);
        let e = match staged {
            Ok(c) => return swap_in(t, &c).await.map(|()| c),
            Err(e) => e,
        };
        if restart && self.plan.running && !is_running(t, h).await.unwrap_or(true) {
            match start_as_standby(ctx, self.eff, t, h).await {
                Ok(()) => ctx.ui.warn(format!(
                    "{}: the clone failed; {} runs again on its previous data",
                    h.name, h.name
                )),
                Err(e2) => ctx.ui.warn(format!(
                    "{}: the clone failed, and starting it again on its previous data failed too: {e2}",
                    h.name
                )),
            }
        }
        Err(e)
    }

    /// After a clone, a failure says where the previous data still is.
    fn with_old_copy_hint(&self, e: Error, cloned: Option<&Cloned>) -> Error {
        match cloned {
            Some(c) => e.with_hint(format!(
                "the previous data is still in {} on {}",
                c.old_copies().join(", "),
                self.plan.host.name
            )),
            None => e,
        }
    }

    /// The closing line (and the JSON document with `--format json`); the inventory then says
    /// what the cluster is.
    fn report(&self, used: Method, why: &str, lost: &Discarded, started: Instant) {
        let (ctx, h, up) = (self.ctx, self.plan.host, self.plan.upstream);
        keep_inventory_true(ctx, self.eff);
        let (by, m) = if used == Method::Rewind {
            (RebuiltBy::Rewind, "rewind")
        } else {
            (RebuiltBy::Clone, "clone")
        };
        ctx.ui.info(format!(
            "rebuild: {} is a replica of {} again, by {m} ({why}), in {:.1}s",
            h.name,
            up.name,
            started.elapsed().as_secs_f64()
        ));
        if let (Some(b), Some((at, tli))) = (lost.bytes.filter(|b| *b > 0), lost.diverged_at) {
            let txns = match &lost.commits {
                Some(c) if c.count > 0 => format!(
                    " ({} committed transactions, the last at {})",
                    c.count,
                    c.last_at.as_deref().unwrap_or("?")
                ),
                Some(_) => " (no committed transaction)".into(),
                None => {
                    " (the transactions in it could not be counted: pg_waldump could not read it)"
                        .into()
                }
            };
            ctx.ui.warn(format!(
                "{}: pg_rewind discarded {b} bytes of WAL{txns} {} wrote after it left timeline {tli} at {at}; {}",
                h.name,
                h.name,
                match &lost.kept_in {
                    Some(d) => format!("they are kept in {d} on {} until you remove it", h.name),
                    None => "they could not be kept aside".into(),
                }
            ));
        }
        ctx.result(&RebuildDocument {
            host: h.name.clone(),
            upstream: up.name.clone(),
            method: by,
            reason: why.to_string(),
            seconds: started.elapsed().as_secs_f64(),
            old_copy_kept: used == Method::Clone && self.plan.keep_old,
            diverged_at: lost.diverged_at.map(|(l, _)| l.to_string()),
            discarded_bytes: lost.bytes,
            discarded_transactions: lost.commits.as_ref().map(|c| c.count),
            last_discarded_commit: lost.commits.as_ref().and_then(|c| c.last_at.clone()),
            discarded_wal_kept_in: lost.kept_in.clone(),
        });
    }
}

/// The first line of an error's rendering (for a one-line reason).
fn first_line(e: &Error) -> String {
    e.to_string().lines().next().unwrap_or("").to_string()
}
