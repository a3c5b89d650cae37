//! Cloning a replica with `pg_basebackup`, run on the replica's own host, into a staging
//! directory that replaces the data directory only when the copy is complete. The copy never
//! outlives the run (`Cmd::until_disconnect`); whether to clone is the caller's plan.

use std::sync::Arc;
use std::time::Instant;

use crate::context::Context;
use crate::error::Error;
use crate::inventory::{Host, Inventory};
use crate::pg::{basebackup, datadir};
use crate::transport::{LineSink, Stream, Transport};

use super::exec::{install_file, run_step};

/// A fresh clone into `<data_dir>.pgrepl-new`, moved into place only when complete: a copy cut
/// short (connection lost, pgrepl interrupted) is never where PostgreSQL would start it, and
/// the next run clears it. The replaced directory is left at `<data_dir>.pgrepl-old`.
pub async fn clone_via_staging(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
) -> Result<(), Error> {
    let up = inv
        .upstream_of(h)
        .ok_or_else(|| Error::step(&h.name, "pg_basebackup", "it has no upstream to clone from"))?;
    let staging = datadir::staging_dir(&h.data_dir);
    let old = datadir::old_dir(&h.data_dir);
    run_step(
        t,
        &datadir::remove_ours(&staging),
        "clear the staging directory",
        None,
    )
    .await?;
    clone(ctx, inv, t, h, up, &staging).await?;
    // The copy goes into place already marked as a standby.
    install_file(
        t,
        &format!("{staging}/standby.signal"),
        "0600",
        "",
        "write standby.signal",
    )
    .await?;
    run_step(t, &datadir::remove_ours(&old), "clear the old copy", None).await?;
    run_step(
        t,
        &datadir::swap_in(&h.data_dir),
        "swap in the new copy",
        None,
    )
    .await?;
    Ok(())
}

/// `pg_basebackup` on `h`'s host into `into` (a staging directory), from `up`, on its slot,
/// with progress.
async fn clone(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
    up: &Host,
    into: &str,
) -> Result<(), Error> {
    let cmd = basebackup::clone_cmd(&basebackup::CloneSpec {
        bin_dir: &h.bin_dir,
        data_dir: into,
        upstream_address: &up.address,
        upstream_port: up.port,
        user: &inv.replication_user,
        slot: &h.slot,
        passfile: &h.passfile,
        application_name: &format!("pgrepl_clone_{}", h.slot),
    });
    ctx.ui
        .detail(format!("{}: {}", h.name, cmd.logged_argv().join(" ")));
    let progress = Arc::new(
        ctx.ui
            .progress(&h.name, &format!("pg_basebackup from {}", up.name)),
    );
    let p2 = progress.clone();
    let sink: LineSink = Arc::new(move |stream, line| {
        if stream == Stream::Stderr {
            if let Some(p) = basebackup::parse_progress(line) {
                p2.set(p.done_kb * 1024, p.total_kb * 1024);
            }
        }
    });
    let t0 = Instant::now();
    // Killed with its process group if pgrepl exits or the connection drops mid-copy.
    let out = t.run(&cmd.until_disconnect(), Some(sink)).await;
    progress.finish();
    let out = out.map_err(|e| Error::step(&h.name, "pg_basebackup", format!("{e:#}")))?;
    if !out.success() {
        let tail: Vec<String> = out
            .stderr_tail
            .iter()
            .filter(|l| basebackup::parse_progress(l).is_none())
            .cloned()
            .collect();
        return Err(Error::step(&h.name, "pg_basebackup", format!("cloning from {} {}", up.name, out.describe_status()))
            .with_stderr(tail)
            .with_hint(format!(
                "check that {} ({}:{}) accepts replication connections from {} ({}), then re-run pgrepl init -i {}",
                up.name,
                up.address,
                up.port,
                h.name,
                h.address,
                inv.file.display()
            )));
    }
    ctx.ui.done(
        &h.name,
        &format!("cloned from {} with pg_basebackup", up.name),
        t0.elapsed(),
    );
    Ok(())
}
