//! Cloning a replica with `pg_basebackup`, run on the replica's own host, into a staging
//! directory that replaces the data directory only when the copy is complete. The copy never
//! outlives the run (`Cmd::until_disconnect`); whether to clone is the caller's plan.
//!
//! The copy lands where the data really is: behind a symlinked data directory, in its target;
//! each tablespace outside the data directory is staged inside its own directory and swapped
//! like the data directory. What a standby must not inherit from its upstream's
//! `postgresql.auto.conf` is removed from the copy. A copy an earlier run left running (its WAL
//! streaming child holding the slot) is ended first, and said.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::db::Db;
use crate::error::{Error, OnStep};
use crate::inventory::{Host, Inventory};
use crate::pg::{autoconf, basebackup, datadir};
use crate::transport::{LineSink, Stream, Transport};
use crate::wait::{poll_until, Poll};

use super::exec::{install_file, run_step};

/// Where a clone put its copies, and so where the replaced ones are kept.
#[derive(Debug, Clone)]
pub struct Cloned {
    /// The data directory's real path (a symlink's target, else the inventory's path).
    pub data_dir: String,
    /// The directories of the tablespaces outside the data directory.
    pub tablespaces: Vec<String>,
}

impl Cloned {
    /// The replaced copies (the data directory's, then each tablespace's), kept until the new
    /// replica streams.
    pub fn old_copies(&self) -> Vec<String> {
        std::iter::once(datadir::old_dir(&self.data_dir))
            .chain(self.tablespaces.iter().map(|t| datadir::tablespace_old(t)))
            .collect()
    }
}

/// A fresh clone into `<data_dir>.pgrepl-new`, moved into place only when complete: a copy cut
/// short (connection lost, pgrepl interrupted) is never where PostgreSQL would start it, and
/// the next run clears it. The replaced directory is left at `<data_dir>.pgrepl-old` (and each
/// tablespace's contents in `<location>/.pgrepl-old`). [`stage`], then [`swap_in`].
pub async fn clone_via_staging(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
) -> Result<Cloned, Error> {
    let cloned = stage(ctx, inv, t, h).await?;
    swap_in(t, &cloned).await?;
    Ok(cloned)
}

/// The complete copy, staged beside the data directory (and inside each tablespace's
/// directory), marked as a standby. The data directory and the tablespaces are untouched: a
/// failure here leaves the old data startable.
pub async fn stage(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
) -> Result<Cloned, Error> {
    let up = inv
        .upstream_of(h)
        .ok_or_else(|| Error::step(&h.name, "pg_basebackup", "it has no upstream to clone from"))?;
    let real = run_step(
        t,
        &datadir::real_path(&h.data_dir),
        "resolve the data directory",
        None,
    )
    .await?
    .stdout
    .trim_end_matches('\n')
    .to_string();
    let udb = ctx.session(up, "end a leftover clone").await?;
    end_leftover_clones(ctx, t, h, up, &udb).await?;
    let tablespaces = udb
        .tablespace_locations()
        .await
        .on_step(&up.name, "list tablespaces")?;
    let cloned = Cloned {
        data_dir: real,
        tablespaces,
    };
    let staging = datadir::staging_dir(&cloned.data_dir);
    let step = "clear the staging directory";
    run_step(t, &datadir::remove_ours(&staging), step, None).await?;
    let mut mapping = Vec::new();
    for ts in &cloned.tablespaces {
        let into = datadir::tablespace_staging(ts);
        run_step(t, &datadir::remove_ours(&into), step, None).await?;
        mapping.push((ts.clone(), into));
    }
    clone(ctx, inv, t, h, up, &staging, &mapping).await?;
    clean_auto_conf(ctx, t, h, up, &staging).await?;
    if !mapping.is_empty() {
        let step = "point the copy at its tablespaces";
        run_step(t, &datadir::relink_tablespaces(&staging), step, None).await?;
    }
    // The copy goes into place already marked as a standby.
    install_file(
        t,
        &format!("{staging}/standby.signal"),
        "0600",
        "",
        "write standby.signal",
    )
    .await?;
    Ok(cloned)
}

/// Moves the complete copies [`stage`] made into place: each tablespace's, then the data
/// directory's; the replaced ones to their old-copy paths (cleared first).
pub async fn swap_in(t: &dyn Transport, cloned: &Cloned) -> Result<(), Error> {
    for old in cloned.old_copies() {
        run_step(t, &datadir::remove_ours(&old), "clear the old copy", None).await?;
    }
    for ts in &cloned.tablespaces {
        let step = "swap in the tablespace's copy";
        run_step(t, &datadir::tablespace_swap(ts), step, None).await?;
    }
    let step = "swap in the new copy";
    run_step(t, &datadir::swap_in(&cloned.data_dir), step, None).await?;
    Ok(())
}

/// Ends what an earlier run's clone of `h` left running: `pg_basebackup` processes still
/// copying into its staging directory on `h` (the WAL streaming child outlives its parent), and
/// a base backup of `h`'s (by its `application_name`) still holding `h`'s slot on `up` — from a
/// host pgrepl cannot see. Names what it ended; a slot held by anything else is refused.
async fn end_leftover_clones(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    up: &Host,
    db: &Db,
) -> Result<(), Error> {
    let step = "end a leftover clone";
    let out = run_step(t, &datadir::end_clones_into(&h.data_dir), step, None).await?;
    for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
        ctx.ui.warn(format!(
            "{}: ended a clone an earlier run left running (pid, argv): {line}",
            h.name
        ));
    }
    let Some((pid, app, addr)) = db.slot_holder(&h.slot).await.on_step(&up.name, step)? else {
        return Ok(());
    };
    if app != clone_application_name(h) {
        return Err(Error::step(&up.name, step, format!("slot {} is active for pid {pid} ({app} from {addr}): something else streams on {}'s slot", h.slot, h.name))
            .with_hint(format!("find out what pid {pid} on {} is (SELECT * FROM pg_stat_replication WHERE pid = {pid}) and stop it, then re-run", up.name)));
    }
    db.terminate_slot_user(&h.slot)
        .await
        .on_step(&up.name, step)?;
    poll_until(
        "the leftover clone's WAL sender gone (10s)",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            Ok(match db.slot_holder(&h.slot).await? {
                None => Poll::Ready(()),
                Some((p, ..)) => Poll::Pending(format!("slot {} active for pid {p}", h.slot)),
            })
        },
    )
    .await
    .map_err(|e| Error::step(&up.name, step, e.to_string()))?;
    ctx.ui.warn(format!(
        "{}: ended a leftover clone of {} that held slot {} (WAL sender pid {pid}, from {addr})",
        up.name, h.name, h.slot
    ));
    Ok(())
}

/// The `application_name` of `h`'s base backup (recognisable in `pg_stat_replication`).
fn clone_application_name(h: &Host) -> String {
    format!("pgrepl_clone_{}", h.slot)
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
    tablespace_mapping: &[(String, String)],
) -> Result<(), Error> {
    let tls = inv.tls_conninfo(h);
    let cmd = basebackup::clone_cmd(&basebackup::CloneSpec {
        bin_dir: &h.bin_dir,
        data_dir: into,
        upstream_address: &up.address,
        upstream_port: up.port,
        user: &inv.replication_user,
        slot: &h.slot,
        passfile: &h.passfile,
        application_name: &clone_application_name(h),
        tablespace_mapping,
        tls: &tls,
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
    // Killed with its process group if pgrepl exits or the connection drops mid-copy; if the
    // run is cut short, `undo` verifies it gone.
    ctx.clone_running(&h.name);
    let out = t.run(&cmd.until_disconnect(), Some(sink)).await;
    ctx.clone_ended(&h.name);
    progress.finish();
    let out = out.map_err(|e| Error::step(&h.name, "pg_basebackup", format!("{e:#}")))?;
    if !out.success() {
        return Err(failed(inv, h, up, out));
    }
    ctx.ui.done(
        &h.name,
        &format!("cloned from {} with pg_basebackup", up.name),
        t0.elapsed(),
    );
    Ok(())
}

/// A failed `pg_basebackup` as a step error: its stderr without progress lines, and a hint from
/// what it said (a directory on the replica), else about the connection to the upstream.
fn failed(inv: &Inventory, h: &Host, up: &Host, out: crate::transport::Output) -> Error {
    let tail: Vec<String> = out
        .stderr_tail
        .iter()
        .filter(|l| basebackup::parse_progress(l).is_none())
        .cloned()
        .collect();
    let hint = basebackup::failure_hint(&tail).unwrap_or_else(|| {
        format!(
            "check that {} ({}:{}) accepts replication connections from {} ({}), then re-run the same pgrepl command (-i {})",
            up.name,
            up.address,
            up.port,
            h.name,
            h.address,
            inv.file.display()
        )
    });
    Error::step(
        &h.name,
        "pg_basebackup",
        format!("cloning from {} {}", up.name, out.describe_status()),
    )
    .with_stderr(tail)
    .with_hint(hint)
}

/// Removes from the fresh copy's `postgresql.auto.conf` the entries a standby must not inherit
/// from `up` (`pg::autoconf`): they would override the `postgresql.conf` pgrepl installs. Says
/// what it removed, by line, and how to remove it at the source.
async fn clean_auto_conf(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    up: &Host,
    copy: &str,
) -> Result<(), Error> {
    let step = "clean postgresql.auto.conf";
    let path = format!("{copy}/{}", autoconf::FILE);
    let cur = t
        .run(&datadir::read_file(&path), None)
        .await
        .on_step(&h.name, step)?;
    match cur.code {
        Some(0) => {}
        Some(datadir::READ_ABSENT) => return Ok(()),
        _ => {
            return Err(Error::step(&h.name, step, format!("could not read {path}"))
                .with_stderr(cur.stderr_tail))
        }
    }
    let Some((kept, removed)) = autoconf::clean(&cur.stdout) else {
        return Ok(());
    };
    run_step(
        t,
        &datadir::write_file(&path, "0600", kept.into_bytes()),
        step,
        None,
    )
    .await?;
    for r in removed {
        ctx.ui.warn(format!(
            "{}: removed `{}` from the copy of {}'s {} (line {}): a standby must not inherit {} \
             (pgrepl's postgresql.conf sets what it needs); on {} it still overrides postgresql.conf: \
             ALTER SYSTEM RESET {}",
            h.name,
            r.text,
            up.name,
            autoconf::FILE,
            r.line,
            r.name,
            up.name,
            r.name
        ));
    }
    Ok(())
}
