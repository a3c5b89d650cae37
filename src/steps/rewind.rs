//! `pg_rewind` of a stopped node against the live primary: crash recovery first when needed, a
//! dry run, then the real rewind; the fence (standby.signal) is lifted for it and put back. The
//! argv and preconditions are `pg::rewind`'s; whether to rewind is the caller's plan.

use std::time::Instant;

use crate::context::Context;
use crate::error::Error;
use crate::inventory::{Host, Inventory};
use crate::pg::{datadir, rewind};
use crate::transport::Transport;

use super::exec::{install_file, run_step};
use super::server::{control_data, standby_signal};

/// pg_rewind against the live primary: a dry run first, then the real one. A fenced, crashed
/// primary carries standby.signal, which pg_rewind's single-user crash recovery refuses: the
/// fence is lifted for the rewind only (the server is stopped) and always put back.
pub async fn rewind_from(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    src: &Host,
    inv: &Inventory,
) -> Result<(), Error> {
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

async fn rewind_steps(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    src: &Host,
    inv: &Inventory,
) -> Result<(), Error> {
    let cd = control_data(t, h).await?;
    if !rewind::cleanly_shut_down(&cd) {
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
    }
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
        });
        ctx.ui
            .detail(format!("{}: {}", h.name, cmd.logged_argv().join(" ")));
        run_step(
            t,
            &cmd,
            if dry_run {
                "pg_rewind --dry-run"
            } else {
                "pg_rewind"
            },
            None,
        )
        .await?;
        ctx.ui.done(
            &h.name,
            if dry_run {
                "pg_rewind --dry-run"
            } else {
                "rewound with pg_rewind"
            },
            t0.elapsed(),
        );
    }
    Ok(())
}
