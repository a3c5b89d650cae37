//! `pgrepl promote <host>`: failover that never makes two primaries.
//!
//! Check: the target is a reachable standby; no reachable replica has more WAL (else refuse
//! unless --allow-data-loss); no other node accepts writes (else refuse unless --force, which
//! stops it and proves it down); every other node is either queried, fenceable over its
//! transport, or — unreachable — confirmed dead by the DBA. Act: fence, promote, poll until
//! writable, CHECKPOINT. Then point every reachable sibling at the new primary and verify it
//! streams on the new timeline.
//!
//! Failure semantics: a refusal changes nothing (exit 4/5). A failure after the promotion leaves
//! the new primary writable; the error names what is left (re-running promote on the new primary
//! is refused, so the next step is `pgrepl rebuild <sibling>`).

use std::sync::Arc;
use std::time::Instant;

use crate::error::{exit, Error, Problem};
use crate::health::HostView;
use crate::inventory::{Host, Role};
use crate::pg::{datadir, Lsn};
use crate::transport::Transport;
use crate::ui::Format;

use crate::steps::config::converge_running;
use crate::steps::probe::collect;
use crate::steps::server::{fence, is_running, stop_and_prove_down, wait_writable};
use crate::steps::slots::ensure_slot;
use crate::steps::streaming::verify_streaming;

use super::Context;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    pub force: bool,
    pub allow_data_loss: bool,
}

fn wal_pos(h: &HostView) -> Option<Lsn> {
    let r = h.receive_lsn.as_deref().and_then(Lsn::parse);
    let p = h.replay_lsn.as_deref().and_then(Lsn::parse);
    r.max(p)
}

fn problem(host: &str, check: &str, message: String, hint: String) -> Problem {
    Problem::new(host, check, message, hint)
}

pub async fn run(ctx: &Context<'_>, o: Options) -> Result<u8, Error> {
    let inv = &ctx.inv;
    let started = Instant::now();
    let target = ctx.host_named(&o.host)?;
    let inv_path = inv.file.display().to_string();
    ctx.lock("promote").await?;

    // 1. Preflight: the live state of every host.
    let view = collect(ctx, inv.timeouts.status, &inv.thresholds).await;
    let hv = |n: &str| {
        view.hosts
            .iter()
            .find(|h| h.name == n)
            .expect("every host is probed")
    };
    let tv = hv(&target.name);
    let mut problems = Vec::new();
    if !tv.reachable {
        problems.push(problem(
            &target.name,
            "target",
            format!(
                "{} cannot be queried: {}",
                target.name,
                tv.error.as_deref().unwrap_or("")
            ),
            "promote a reachable replica (pgrepl status shows them)".into(),
        ));
    } else if tv.role == Some(Role::Primary) {
        problems.push(problem(
            &target.name,
            "target",
            format!(
                "{} already accepts writes: there is nothing to promote",
                target.name
            ),
            format!("pgrepl -i {inv_path} status"),
        ));
    }
    let mine = wal_pos(tv);
    if tv.reachable && tv.role == Some(Role::Replica) {
        let better = view
            .hosts
            .iter()
            .filter(|h| h.name != target.name && h.reachable && h.role == Some(Role::Replica))
            .filter_map(|h| wal_pos(h).map(|l| (h, l)))
            .filter(|(_, l)| Some(*l) > mine)
            .max_by_key(|(_, l)| *l);
        if let (Some((b, bl)), false) = (better, o.allow_data_loss) {
            problems.push(problem(
                &target.name,
                "candidate",
                format!(
                    "{} has WAL up to {bl} (received {}, replayed {}), {} only up to {} (received {}, replayed {}): promoting {} would lose {} bytes",
                    b.name,
                    b.receive_lsn.as_deref().unwrap_or("-"),
                    b.replay_lsn.as_deref().unwrap_or("-"),
                    target.name,
                    mine.map(|l| l.to_string()).unwrap_or_else(|| "unknown".into()),
                    tv.receive_lsn.as_deref().unwrap_or("-"),
                    tv.replay_lsn.as_deref().unwrap_or("-"),
                    target.name,
                    mine.map(|m| m.bytes_until(bl)).unwrap_or(0)
                ),
                format!("promote the better candidate: pgrepl -i {inv_path} promote {}; or accept the loss with --allow-data-loss", b.name),
            ));
        }
    }
    let writable: Vec<&Host> = view
        .hosts
        .iter()
        .filter(|h| h.name != target.name && h.reachable && h.role == Some(Role::Primary))
        .map(|h| inv.host(&h.name).expect("inventory host"))
        .collect();
    if !o.force {
        for p in &writable {
            problems.push(problem(
                &p.name,
                "fencing",
                format!("{} is a running primary: promoting {} now would make two primaries", p.name, target.name),
                format!("for a planned change of primary, use a switchover; to stop {} and promote anyway: pgrepl -i {inv_path} promote {} --force", p.name, target.name),
            ));
        }
    }
    // Nodes whose server did not answer: fence them through their transport when we can.
    /// What can be done about one host whose server did not answer.
    enum Fence {
        /// Down, a primary's data directory: write standby.signal through this connection.
        Signal(Arc<dyn Transport>),
        /// Down and already a standby (or no data): nothing to do.
        Nothing,
        /// Unreachable, or running but not answering: pgrepl cannot fence it.
        Cannot,
    }
    let down: Vec<&Host> = inv
        .hosts
        .iter()
        .filter(|h| h.name != target.name && !hv(&h.name).reachable)
        .collect();
    let verdicts = futures_util::future::join_all(down.iter().map(|h| async move {
        let Ok(t) = ctx.kept(h).await else {
            return Fence::Cannot;
        };
        let state = t
            .run(&datadir::probe(&h.data_dir), None)
            .await
            .ok()
            .and_then(|o| datadir::parse(&o.stdout));
        if is_running(t.as_ref(), h).await.unwrap_or(true) {
            return Fence::Cannot;
        }
        match state {
            Some(datadir::DirState::PgData { standby: false, .. }) => Fence::Signal(t),
            _ => Fence::Nothing,
        }
    }))
    .await;
    let mut to_fence: Vec<(&Host, Arc<dyn Transport>)> = Vec::new();
    let mut unfenced: Vec<&Host> = Vec::new();
    for (h, v) in down.into_iter().zip(verdicts) {
        match v {
            Fence::Signal(t) => to_fence.push((h, t)),
            Fence::Cannot => unfenced.push(h),
            Fence::Nothing => {}
        }
    }
    if !problems.is_empty() {
        return Err(Error::Preflight { problems }.into());
    }

    // 2. Confirm.
    let mut plan = vec![format!(
        "promote {} (WAL up to {})",
        target.name,
        mine.map(|l| l.to_string())
            .unwrap_or_else(|| "unknown".into())
    )];
    plan.extend(writable.iter().map(|p| {
        format!(
            "first stop the running primary {} and prove it down",
            p.name
        )
    }));
    plan.extend(to_fence.iter().map(|(h, _)| {
        format!(
            "fence {} (its server is down): write standby.signal so it can only restart read-only",
            h.name
        )
    }));
    plan.extend(unfenced.iter().map(|h| format!("{} cannot be fenced (its host is unreachable, or its server still runs without answering): you confirm it is down for good", h.name)));
    ctx.ui.confirm("promote", &plan.join("; "))?;

    // 3. Fence.
    let mut old_last: Option<(String, Lsn)> = None;
    for p in &writable {
        let t = ctx.kept(p).await?;
        let cd = stop_and_prove_down(ctx, t.as_ref(), p).await?;
        fence(ctx, t.as_ref(), p).await?;
        if let Some(l) = cd.checkpoint_lsn {
            old_last = Some((p.name.clone(), l));
        }
    }
    for (h, t) in &to_fence {
        fence(ctx, t.as_ref(), h).await?;
    }

    // 4. Promote, poll until writable, checkpoint.
    let tt = ctx.kept(target).await?;
    let tdb = ctx.db(tt.as_ref(), target).await?;
    // The position at promotion: read after fencing, so a cleanly stopped primary's final WAL counts.
    let before = tdb.node_state().await?;
    let at_promotion = before.receive_lsn.max(before.replay_lsn).or(mine);
    let t_promote = Instant::now();
    tdb.promote(inv.timeouts.promote)
        .await
        .map_err(|e| Error::step(&target.name, "promote", format!("{e:#}")))?;
    wait_writable(inv, &tdb).await.map_err(|e| {
        Error::step(&target.name, "promote", format!("{e:#}")).with_hint(format!(
            "read its server log: tail -n 50 {}",
            target.log_file
        ))
    })?;
    let to_writable = t_promote.elapsed();
    ctx.ui
        .done(&target.name, "promoted: accepts writes", to_writable);
    tdb.checkpoint().await?;
    let st = tdb.node_state().await?;
    let new_tli = st.timeline;

    // 5. The new primary's own configuration, then its siblings follow it.
    let eff = inv.with_primary(&target.name);
    converge_running(
        ctx,
        &eff,
        tt.as_ref(),
        eff.host(&target.name).expect("host"),
    )
    .await?;
    let siblings: Vec<&Host> = eff
        .replicas()
        .filter(|h| hv(&h.name).reachable && hv(&h.name).role == Some(Role::Replica))
        .collect();
    for s in &siblings {
        let up = s.upstream.as_deref().expect("replica");
        if up == target.name {
            ensure_slot(ctx, &tdb, up, &s.slot, &s.name).await?;
        } else {
            let uh = eff.host(up).expect("validated");
            let udb = ctx.db(ctx.kept(uh).await?.as_ref(), uh).await?;
            ensure_slot(ctx, &udb, up, &s.slot, &s.name).await?;
        }
        let t = ctx.kept(s).await?;
        converge_running(ctx, &eff, t.as_ref(), s).await?;
    }
    let names: Vec<&str> = siblings.iter().map(|h| h.name.as_str()).collect();
    if !names.is_empty() {
        let t0 = Instant::now();
        verify_streaming(ctx, &eff, &names).await.map_err(|e| {
            e.with_hint(format!("{} is the new primary and accepts writes; re-clone a sibling that does not follow with: pgrepl -i {inv_path} rebuild <sibling>", target.name))
        })?;
        for s in &siblings {
            let sdb = ctx.db(ctx.kept(s).await?.as_ref(), s).await?;
            let tli = sdb.node_state().await?.timeline;
            if tli != new_tli {
                return Err(Error::step(
                    &s.name,
                    "follow the new primary",
                    format!("streams on timeline {tli:?}, the new primary is on {new_tli:?}"),
                )
                .with_hint(format!("pgrepl -i {inv_path} rebuild {}", s.name))
                .into());
            }
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
    }

    // 6. Report.
    let lost = match (&old_last, at_promotion) {
        (Some((_, old)), Some(m)) => Some(m.bytes_until(*old)),
        _ => None,
    };
    let old_primary = inv.primary();
    ctx.ui.info(format!(
        "promote: {} is the primary on timeline {} (was {}), promoted at {}; {}; writable {:.2}s after pgrepl started",
        target.name,
        new_tli.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
        tv.timeline.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
        at_promotion.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
        match (&old_last, lost) {
            (Some((n, l)), Some(b)) => format!("{n}'s last WAL position {l}: {b} bytes may be lost"),
            _ => "the old primary's last WAL position is unknown (it was not stopped by pgrepl)".into(),
        },
        (t_promote - started + to_writable).as_secs_f64()
    ));
    if old_primary.name != target.name {
        ctx.ui.info(format!(
            "update {inv_path}: set role: primary on {} and role: replica on {}; then bring {} back as a replica: pgrepl -i {inv_path} rebuild {}",
            target.name, old_primary.name, old_primary.name, old_primary.name
        ));
    }
    if ctx.ui.format() == Format::Json {
        ctx.ui.json(&serde_json::json!({
            "promoted": target.name,
            "old_timeline": tv.timeline,
            "new_timeline": new_tli,
            "promoted_lsn": at_promotion.map(|l| l.to_string()),
            "old_primary_last_lsn": old_last.as_ref().map(|(_, l)| l.to_string()),
            "bytes_maybe_lost": lost,
            "seconds_to_writable": (t_promote - started + to_writable).as_secs_f64(),
            "siblings_following": names,
            "unfenced": unfenced.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        }));
    }
    Ok(exit::OK)
}
