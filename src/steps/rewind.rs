//! `pg_rewind` of a stopped node against the live primary: crash recovery first when needed, a
//! dry run, then the real rewind; the fence (standby.signal) is lifted for it and put back. The
//! argv and preconditions are `pg::rewind`'s; whether to rewind is the caller's plan.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::context::Context;
use crate::error::Error;
use crate::inventory::{Host, Inventory};
use crate::pg::{datadir, rewind, Lsn};
use crate::transport::{LineSink, Transport};

use super::exec::{install_file, run_step};
use super::server::{control_data, end_of_wal, standby_signal};

/// pg_rewind against the live primary: a dry run first, then the real one. A fenced, crashed
/// primary carries standby.signal, which pg_rewind's single-user crash recovery refuses: the
/// fence is lifted for the rewind only (the server is stopped) and always put back.
pub async fn rewind_from(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    src: &Host,
    inv: &Inventory,
) -> Result<Discarded, Error> {
    let signal = standby_signal(h);
    let fenced = t
        .run(&datadir::read_file(&signal), None)
        .await
        .map(|o| o.success())
        .unwrap_or(false);
    if fenced {
        run_step(
            t,
            &datadir::remove_file(&signal),
            "lift the fence for pg_rewind",
            None,
        )
        .await?;
    }
    let result = rewind_steps(ctx, t, h, src, inv).await;
    if fenced {
        install_file(t, &signal, "0600", "", "restore the fence").await?;
    }
    result
}

/// A target that stopped uncleanly first completes crash recovery (single-user mode).
async fn recover_if_unclean(ctx: &Context<'_>, t: &dyn Transport, h: &Host) -> Result<(), Error> {
    let cd = control_data(t, h).await?;
    if rewind::cleanly_shut_down(&cd) {
        return Ok(());
    }
    let t0 = Instant::now();
    run_step(
        t,
        &rewind::complete_crash_recovery(&h.bin_dir, &h.data_dir),
        "crash recovery (single-user mode)",
        None,
    )
    .await?;
    ctx.ui.done(
        &h.name,
        &format!(
            "completed crash recovery (the server had stopped {})",
            cd.cluster_state.as_deref().unwrap_or("uncleanly")
        ),
        t0.elapsed(),
    );
    Ok(())
}

async fn rewind_steps(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    src: &Host,
    inv: &Inventory,
) -> Result<Discarded, Error> {
    recover_if_unclean(ctx, t, h).await?;
    // Where the target's WAL ends (read while it is stopped): with the fork point the dry run
    // names, what the rewind throws away.
    let end = end_of_wal(t, h).await;
    let fork: Arc<Mutex<Option<(Lsn, u32)>>> = Arc::default();
    let mut discarded = Discarded::default();
    let tls = inv.tls_conninfo(h);
    for dry_run in [true, false] {
        let t0 = Instant::now();
        let cmd = rewind::cmd(&rewind::RewindSpec {
            bin_dir: &h.bin_dir,
            data_dir: &h.data_dir,
            source_address: &src.address,
            source_port: src.port,
            user: &inv.rewind_user,
            passfile: &h.passfile,
            dry_run,
            tls: &tls,
        });
        ctx.ui
            .detail(format!("{}: {}", h.name, cmd.logged_argv().join(" ")));
        let seen = fork.clone();
        let sink: LineSink = Arc::new(move |_, line| {
            if let Some(f) = rewind::parse_divergence(line) {
                *seen.lock().expect("not poisoned") = Some(f);
            }
        });
        let step = if dry_run {
            "pg_rewind --dry-run"
        } else {
            "pg_rewind"
        };
        run_step(t, &cmd, step, Some(sink)).await?;
        ctx.ui.done(
            &h.name,
            if dry_run {
                "pg_rewind --dry-run"
            } else {
                "rewound with pg_rewind"
            },
            t0.elapsed(),
        );
        if dry_run {
            let at = *fork.lock().expect("not poisoned");
            discarded = keep_discarded(t, h, at, end).await;
        }
    }
    Ok(discarded)
}

/// What a rewind threw away: the WAL the target wrote after the fork.
#[derive(Debug, Clone, Default)]
pub struct Discarded {
    /// Where the target left the source's history, and on which timeline.
    pub diverged_at: Option<(Lsn, u32)>,
    /// Where the target's WAL ended.
    pub end: Option<Lsn>,
    /// Bytes of WAL past the fork (end minus fork point), when both are known.
    pub bytes: Option<u64>,
    /// The directory on the target's host that keeps those WAL segments.
    pub kept_in: Option<String>,
    /// The transactions committed in that WAL (read with `pg_waldump`), when it could be read.
    pub commits: Option<crate::pg::waldump::Commits>,
}

/// Before the real rewind: copies the target's WAL segments from the fork on into
/// `<data_dir>.pgrepl-discarded-wal` (kept until the DBA removes it). Never fails the rebuild:
/// what it cannot keep, it says.
async fn keep_discarded(
    t: &dyn Transport,
    h: &Host,
    at: Option<(Lsn, u32)>,
    end: Option<Lsn>,
) -> Discarded {
    let mut d = Discarded {
        diverged_at: at,
        end,
        ..Discarded::default()
    };
    let Some((fork, tli)) = at else { return d };
    d.bytes = end.map(|e| fork.bytes_until(e));
    if d.bytes == Some(0) {
        return d;
    }
    // What those bytes were, in transactions: pg_waldump reads them (the server is stopped).
    let cmd = crate::pg::waldump::commits_cmd(&h.bin_dir, &h.data_dir, fork, end, tli);
    if let Ok(out) = t.run(&cmd, None).await {
        // It ends with an error where the WAL ends when `end` is unknown: the lines still count.
        if out.success() || end.is_none() {
            d.commits = Some(crate::pg::waldump::parse_commits(&out.stdout));
        }
    }
    let seg = control_data(t, h)
        .await
        .ok()
        .and_then(|c| c.wal_segment_size);
    let Ok(list) = t.run(&datadir::list_wal(&h.data_dir), None).await else {
        return d;
    };
    let files = rewind::segments_from(&list.stdout, tli, fork, seg.unwrap_or(16 << 20));
    if files.is_empty() {
        return d;
    }
    let into = datadir::discarded_dir(&h.data_dir);
    if run_step(
        t,
        &datadir::keep_wal(&h.data_dir, &files, &into),
        "keep the discarded WAL",
        None,
    )
    .await
    .is_ok()
    {
        d.kept_in = Some(into);
    }
    d
}
