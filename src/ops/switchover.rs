//! `pgrepl switchover <replica>`: a planned change of primary with no lost writes.
//!
//! Check (all before the first change, every failure listed): every node reachable; exactly one
//! primary; the candidate streams from it with lag under the warning threshold and replay not
//! paused; the old primary can be rewound if ever needed (checksums or wal_log_hints); the
//! candidate has WAL senders and slots for everyone who will follow it.
//!
//! Act: CHECKPOINT the primary (short shutdown checkpoint); stop it (fast) so its final WAL,
//! shutdown checkpoint included, reaches the standbys; read that checkpoint's LSN with
//! pg_controldata; wait until the candidate has received and replayed past it; promote; poll
//! until writable. — point of no return — Start the old primary as a standby of the new one
//! (pg_rewind only if it cannot follow); point the siblings at the new primary; verify all
//! stream on the new timeline.
//!
//! Failure semantics: before the promotion, pgrepl rolls back — the old primary starts again as
//! primary, verified writable — and exits 8 ("failed, nothing changed"). After it, exit 7
//! ("incomplete") with each node's state and the next command.

use std::time::{Duration, Instant};

use crate::error::{exit, Error, Problem, StepFailure};
use crate::health::{NodeState, Probe};
use crate::inventory::{Host, Inventory, Role};
use crate::pg::{ctl, Lsn};
use crate::ui::Format;
use crate::wait::{poll_until, Poll};

use super::{
    controldata, converge_running, ensure_slot, init, rebuild, run_step, server, start,
    start_as_standby, status, wait_writable, Context,
};

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// A host name, or `auto` (the most caught-up healthy replica).
    pub to: String,
    pub dry_run: bool,
}

fn problem(host: &str, check: &str, message: String, hint: String) -> Problem {
    Problem::new(host, check, message, hint)
}

fn coded(code: u8, host: &str, step: &str, message: String, hint: String) -> anyhow::Error {
    Error::Coded(
        code,
        StepFailure {
            host: Some(host.into()),
            step: step.into(),
            message,
            stderr_tail: vec![],
            hint: Some(hint),
        },
    )
    .into()
}

pub async fn run(ctx: &Context<'_>, o: Options) -> anyhow::Result<u8> {
    let inv = &ctx.inv;
    let inv_path = inv.file.display().to_string();
    let started = Instant::now();
    // An unknown host fails as in promote and rebuild (exit 4), before anything is contacted.
    if o.to != "auto" {
        ctx.host_named(&o.to)?;
    }

    // The password is read (its file's mode checked) before anything is contacted.
    let password = inv.replication_password()?;
    // "No other pgrepl operation runs on this cluster" (a dry run holds it while it checks).
    ctx.lock("switchover").await?;

    // 1. Preflight.
    let probes = status::probe_all(ctx, inv.timeouts.status).await;
    let view = crate::health::assess(inv, &probes, &inv.thresholds, 0.0);
    let st = |n: &str| -> Option<&NodeState> {
        inv.hosts
            .iter()
            .position(|h| h.name == n)
            .and_then(|i| probes[i].state.as_ref().ok())
    };
    let mut problems = Vec::new();
    for (h, p) in inv.hosts.iter().zip(&probes) {
        if let Probe { state: Err(e) } = p {
            problems.push(problem(
                &h.name,
                "reachable",
                format!("{} cannot be queried: {e}", h.name),
                "a switchover needs every node; fix it first, or fail over with pgrepl promote"
                    .into(),
            ));
        }
    }
    let writable: Vec<&Host> = inv
        .hosts
        .iter()
        .filter(|h| st(&h.name).is_some_and(|s| !s.in_recovery))
        .collect();
    let old = match writable.as_slice() {
        [p] => Some(*p),
        _ => {
            problems.push(problem(
                &inv.cluster,
                "primary",
                format!(
                    "{} nodes accept writes; a switchover needs exactly one",
                    writable.len()
                ),
                format!("pgrepl -i {inv_path} status"),
            ));
            None
        }
    };
    let candidate: Option<&Host> = match (old, o.to.as_str()) {
        (None, _) => None,
        (Some(p), "auto") => {
            let best = view
                .replicas
                .iter()
                .filter(|r| r.streaming && r.upstream.as_deref() == Some(p.name.as_str()))
                .min_by_key(|r| r.behind_bytes.unwrap_or(u64::MAX))
                .and_then(|r| inv.host(&r.host));
            if let Some(b) = best {
                ctx.ui.info(format!(
                    "switchover --to auto: {} is the most caught-up replica streaming from {}",
                    b.name, p.name
                ));
            } else {
                problems.push(problem(
                    &p.name,
                    "candidate",
                    "no replica streams from the primary".into(),
                    format!("pgrepl -i {inv_path} status"),
                ));
            }
            best
        }
        (Some(_), name) => match inv.host(name) {
            Some(h) => Some(h),
            None => {
                problems.push(problem(
                    name,
                    "candidate",
                    format!("{name} is not a host of {inv_path}"),
                    format!(
                        "use one of: {}",
                        inv.hosts
                            .iter()
                            .map(|h| h.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                None
            }
        },
    };
    if let (Some(p), Some(c)) = (old, candidate) {
        let rv = view.replicas.iter().find(|r| r.host == c.name);
        match rv {
            None => problems.push(problem(
                &c.name,
                "candidate",
                format!("{} is not a standby", c.name),
                format!("pgrepl -i {inv_path} status"),
            )),
            Some(r) => {
                if !(r.streaming && r.upstream.as_deref() == Some(p.name.as_str())) {
                    problems.push(problem(
                        &c.name,
                        "candidate",
                        format!(
                            "{} does not stream from the primary {} (upstream {}, state {})",
                            c.name,
                            p.name,
                            r.upstream.as_deref().unwrap_or("none"),
                            r.state.as_deref().unwrap_or("none")
                        ),
                        format!("pgrepl -i {inv_path} status"),
                    ));
                }
                let behind = r.behind_bytes.unwrap_or(u64::MAX);
                if behind > inv.thresholds.lag_warning_bytes {
                    problems.push(problem(&c.name, "lag", format!("{} is {} bytes behind {} (the limit is status.lag_warning_bytes, {})", c.name, behind, p.name, inv.thresholds.lag_warning_bytes), "wait for it to catch up (pgrepl status --wait), or choose another candidate".into()));
                }
            }
        }
        if let Some(cs) = st(&c.name) {
            if cs.replay_paused {
                problems.push(problem(
                    &c.name,
                    "replay",
                    format!("WAL replay is paused on {}", c.name),
                    format!("resume it on {}: SELECT pg_wal_replay_resume()", c.name),
                ));
            }
            let need = inv.hosts.len().saturating_sub(1) as i32;
            if cs.max_wal_senders < need || cs.max_replication_slots < need {
                problems.push(problem(&c.name, "capacity", format!("{} has max_wal_senders {} and max_replication_slots {}; {} hosts will follow it", c.name, cs.max_wal_senders, cs.max_replication_slots, need), format!("raise them (pgrepl init -i {inv_path} renders enough) and restart {}", c.name)));
            }
        }
        if let Some(ps) = st(&p.name) {
            if !ps.rewindable {
                problems.push(problem(&p.name, "rewind", format!("{} has neither data checksums nor wal_log_hints: if it could not follow, it could not be rewound", p.name), format!("set wal_log_hints = on (pgrepl init -i {inv_path}) and restart {}", p.name)));
            }
        }
        if c.name == p.name {
            problems.push(problem(
                &c.name,
                "candidate",
                format!("{} is already the primary", c.name),
                format!("pgrepl -i {inv_path} status"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Preflight { problems }.into());
    }
    let (old, cand) = (old.expect("checked"), candidate.expect("checked"));
    let eff = inv.with_primary(&cand.name);

    // The plan (printed by --dry-run; every step printed as it runs).
    let stop_cmd = ctl::stop(&server(old), inv.timeouts.start.as_secs());
    let plan = [
        format!("1. CHECKPOINT on {}", old.name),
        format!("2. stop {} (fast): {}", old.name, stop_cmd.full_argv().join(" ")),
        format!("3. read its shutdown checkpoint LSN: {}", crate::pg::controldata::cmd(&old.bin_dir, &old.data_dir).full_argv().join(" ")),
        format!("4. wait until {} has received and replayed it (timeouts.promote, {}s)", cand.name, inv.timeouts.promote.as_secs()),
        format!("5. promote {}: SELECT pg_promote(false); poll pg_is_in_recovery() until false", cand.name),
        format!("6. start {} as a standby of {} (slot {}, primary_conninfo with passfile=, standby.signal); pg_rewind only if it cannot follow", old.name, cand.name, old.slot),
        format!("7. point {} at {}; verify every replica streams on the new timeline", eff.replicas().filter(|h| h.name != old.name).map(|h| h.name.as_str()).collect::<Vec<_>>().join(", "), cand.name),
    ];
    if o.dry_run {
        ctx.ui.data(&format!(
            "switchover {} -> {} (dry run: every check passed; nothing was changed)\n{}\n",
            old.name,
            cand.name,
            plan.join("\n")
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

    // 2. Act, up to the point of no return.
    let to = ctx.kept(old).await?;
    let tc = ctx.kept(cand).await?;
    let cdb = ctx.db(tc.as_ref(), cand).await?;
    let t0 = Instant::now();
    ctx.db(to.as_ref(), old)
        .await?
        .execute("CHECKPOINT")
        .await?;
    ctx.ui.done(&old.name, "1. CHECKPOINT", t0.elapsed());
    let gap_start = Instant::now();
    let t0 = Instant::now();
    if let Err(e) = run_step(to.as_ref(), &stop_cmd, "stop PostgreSQL", None).await {
        return Err(rollback(
            ctx,
            to.as_ref(),
            old,
            &format!("stopping {} failed: {e:#}", old.name),
        )
        .await);
    }
    ctx.ui.done(&old.name, "2. stopped (fast)", t0.elapsed());
    let t0 = Instant::now();
    let ckpt: Lsn = match controldata(to.as_ref(), old)
        .await
        .map(|c| (c.cluster_state.clone(), c.checkpoint_lsn))
    {
        Ok((Some(s), Some(l))) if s == "shut down" => l,
        other => {
            return Err(rollback(
                ctx,
                to.as_ref(),
                old,
                &format!("{} did not shut down cleanly ({other:?})", old.name),
            )
            .await)
        }
    };
    ctx.ui.done(
        &old.name,
        &format!("3. shutdown checkpoint at {ckpt}"),
        t0.elapsed(),
    );
    let t0 = Instant::now();
    let caught_up = poll_until(
        "timeouts.promote",
        inv.timeouts.promote,
        Duration::from_millis(10),
        || async {
            let s = cdb.node_state().await?;
            Ok(match (s.receive_lsn, s.replay_lsn) {
                (Some(r), Some(p)) if r > ckpt && p > ckpt => Poll::Ready(()),
                (r, p) => Poll::Pending(format!(
                    "{} received {:?}, replayed {:?}, needs past {ckpt}",
                    cand.name,
                    r.map(|l| l.to_string()),
                    p.map(|l| l.to_string())
                )),
            })
        },
    )
    .await;
    if let Err(e) = caught_up {
        return Err(rollback(
            ctx,
            to.as_ref(),
            old,
            &format!("{} did not catch up: {e:#}", cand.name),
        )
        .await);
    }
    ctx.ui.done(
        &cand.name,
        &format!("4. received and replayed past {ckpt}"),
        t0.elapsed(),
    );
    let t0 = Instant::now();
    if let Err(e) = cdb
        .execute(&format!(
            "SELECT pg_catalog.pg_promote(false, {})",
            inv.timeouts.promote.as_secs()
        ))
        .await
    {
        if cdb.in_recovery().await.unwrap_or(false) {
            return Err(rollback(
                ctx,
                to.as_ref(),
                old,
                &format!("promoting {} failed: {e:#}", cand.name),
            )
            .await);
        }
    }
    let writable = wait_writable(inv, &cdb).await;
    // — point of no return: the candidate may be writable from here on —
    if let Err(e) = writable {
        return Err(incomplete(
            ctx,
            &cand.name,
            "promote",
            format!("{e:#}"),
            format!(
                "read {}'s server log: tail -n 50 {}",
                cand.name, cand.log_file
            ),
        )
        .await);
    }
    let gap = gap_start.elapsed();
    ctx.ui.done(
        &cand.name,
        &format!(
            "5. promoted: accepts writes ({:.3}s after {} stopped taking them)",
            gap.as_secs_f64(),
            old.name
        ),
        t0.elapsed(),
    );

    // 3. After the point of no return: the old primary follows, siblings follow, verify.
    let result = finish(ctx, &eff, old, cand, &cdb, &password).await;
    if let Err(e) = result {
        return Err(incomplete(ctx, &cand.name, "rejoin", format!("{e:#}"), format!("{} is the primary and accepts writes; complete the switchover with: pgrepl -i {inv_path} rebuild {}", cand.name, old.name)).await);
    }
    let tli = cdb.node_state().await?.timeline;
    ctx.ui.info(format!(
        "switchover: {} is the primary (timeline {}), {} follows it; writes were refused for {:.3}s; done in {:.1}s",
        cand.name,
        tli.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
        old.name,
        gap.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
    ctx.ui.info(format!(
        "update {inv_path}: set role: primary on {} and role: replica on {}",
        cand.name, old.name
    ));
    if ctx.ui.format() == Format::Json {
        ctx.ui.json(&serde_json::json!({ "old_primary": old.name, "new_primary": cand.name, "timeline": tli, "shutdown_checkpoint_lsn": ckpt.to_string(), "write_gap_seconds": gap.as_secs_f64(), "seconds": started.elapsed().as_secs_f64() }));
    }
    Ok(exit::OK)
}

/// The old primary rejoins as a standby (pg_rewind only if it cannot follow); every other
/// replica follows the new primary; all verified streaming.
async fn finish(
    ctx: &Context<'_>,
    eff: &Inventory,
    old: &Host,
    cand: &Host,
    cdb: &crate::db::Db,
    password: &crate::inventory::Secret,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    cdb.execute("CHECKPOINT").await?;
    // Siblings first: healthy and quick; if the old primary then fails to rejoin, only it is
    // left to rebuild.
    let siblings: Vec<&Host> = eff.replicas().filter(|h| h.name != old.name).collect();
    for s in &siblings {
        if s.upstream.as_deref() == Some(cand.name.as_str()) {
            ensure_slot(ctx, cdb, &cand.name, &s.slot, &s.name).await?;
        }
        let t = ctx.kept(s).await?;
        converge_running(ctx, eff, t.as_ref(), s).await?;
    }
    ctx.ui.done(
        &cand.name,
        &format!(
            "6. siblings re-pointed: {}",
            siblings
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        t0.elapsed(),
    );
    let t0 = Instant::now();
    let to = ctx.kept(old).await?;
    let oh = eff.host(&old.name).expect("host");
    init::install_passfile(ctx, to.as_ref(), oh, password, &|_| {}).await?;
    ensure_slot(ctx, cdb, &cand.name, &oh.slot, &oh.name).await?;
    start_as_standby(ctx, eff, to.as_ref(), oh).await?;
    ctx.ui.done(
        &old.name,
        &format!("7. started as a standby of {}", cand.name),
        t0.elapsed(),
    );
    let mut tr = std::collections::BTreeMap::new();
    for h in &eff.hosts {
        tr.insert(h.name.clone(), ctx.kept(h).await?);
    }
    let t0 = Instant::now();
    let old_streams =
        init::verify_streaming(ctx, eff, &[old.name.as_str()], &|n| tr[n].clone()).await;
    if old_streams.is_err() {
        ctx.ui.warn(format!(
            "{} does not follow {}; rewinding it",
            old.name, cand.name
        ));
        super::stop_and_prove_down(ctx, to.as_ref(), oh).await?;
        rebuild::rewind_from(ctx, to.as_ref(), oh, eff.primary(), eff).await?;
        start_as_standby(ctx, eff, to.as_ref(), oh).await?;
    }
    init::verify_streaming(ctx, eff, &[], &|n| tr[n].clone()).await?;
    // As a primary it kept its replicas' slots; they would retain WAL there for nobody.
    rebuild::drop_stale_slots(ctx, eff, to.as_ref(), oh).await?;
    ctx.ui.done(
        &cand.name,
        "every replica streams from the new primary",
        t0.elapsed(),
    );
    Ok(())
}

/// Before the point of no return: start the old primary again, verify it writable, and fail
/// with "switchover failed, nothing changed" (exit 8).
async fn rollback(
    ctx: &Context<'_>,
    to: &dyn crate::transport::Transport,
    old: &Host,
    why: &str,
) -> anyhow::Error {
    ctx.ui.warn(format!(
        "switchover failed before the promotion ({why}); starting {} again as primary",
        old.name
    ));
    let restarted = async {
        if !super::is_running(to, old).await? {
            start(ctx, to, old).await?;
        }
        let db = ctx.db(to, old).await?;
        anyhow::ensure!(
            !db.in_recovery().await?,
            "{} came back in recovery",
            old.name
        );
        db.execute("CREATE TEMPORARY TABLE pgrepl_write_check(x int)")
            .await?;
        Ok(())
    }
    .await;
    match restarted {
        Ok(()) => coded(
            exit::SWITCHOVER_ROLLED_BACK,
            &old.name,
            "switchover",
            format!(
                "{why}; rolled back: {} is the primary again, verified writable; nothing changed",
                old.name
            ),
            "pgrepl status; fix the cause, then retry the switchover".into(),
        ),
        Err(e) => coded(
            exit::SWITCHOVER_INCOMPLETE,
            &old.name,
            "switchover rollback",
            format!("{why}; and restarting {} failed: {e:#}", old.name),
            format!(
                "start it by hand: {}/pg_ctl start -D {} -l {}",
                old.bin_dir, old.data_dir, old.log_file
            ),
        ),
    }
}

/// After the point of no return: exit 7 with each node's state and the next command.
async fn incomplete(
    ctx: &Context<'_>,
    host: &str,
    step: &str,
    why: String,
    next: String,
) -> anyhow::Error {
    let view = status::collect(ctx, ctx.inv.timeouts.status, &ctx.inv.thresholds).await;
    let states: Vec<String> = view
        .hosts
        .iter()
        .map(|h| {
            format!(
                "{}: {}",
                h.name,
                match (h.reachable, h.role) {
                    (false, _) => "unreachable".to_string(),
                    (true, Some(Role::Primary)) => "primary (accepts writes)".into(),
                    (true, _) => {
                        let r = view.replicas.iter().find(|r| r.host == h.name);
                        match r.and_then(|r| r.upstream.clone()) {
                            Some(u) => format!("replica streaming from {u}"),
                            None => "replica, not streaming".into(),
                        }
                    }
                }
            )
        })
        .collect();
    coded(
        exit::SWITCHOVER_INCOMPLETE,
        host,
        step,
        format!("switchover incomplete: {why}; now: {}", states.join("; ")),
        next,
    )
}
