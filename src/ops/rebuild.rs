//! `pgrepl rebuild <host>`: bring a broken, lagging, diverged or former primary back as a
//! replica of the live topology — by pg_rewind when its preconditions hold, by a fresh clone
//! otherwise, with the reason said.
//!
//! Never touches a writable node (the live primary, or a zombie primary: stop it first). Every
//! check runs before the first change; the DBA confirms (or `--yes`). A clone goes into
//! `<data_dir>.pgrepl-new` and replaces the data directory only when the copy is complete; the
//! old data stays in `<data_dir>.pgrepl-old` until the new replica streams (then it is removed,
//! unless `--keep-old`). pg_rewind runs with `--dry-run` first; with `--method auto` a failed
//! rewind falls back to a clone.

use std::sync::Arc;
use std::time::Instant;

use crate::error::{exit, Error, Problem};
use crate::inventory::{Host, Inventory, Role};
use crate::pg::{datadir, rewind};
use crate::transport::Transport;
use crate::ui::Format;

use crate::steps::clone::clone_via_staging;
use crate::steps::config::install_passfile;
use crate::steps::exec::run_step;
use crate::steps::probe::collect;
use crate::steps::rewind::rewind_from;
use crate::steps::server::{control_data, is_running, start_as_standby, stop_and_prove_down};
use crate::steps::slots::{drop_stale_slots, ensure_slot};
use crate::steps::streaming::verify_streaming;

use super::Context;

/// How to rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Auto,
    Rewind,
    Clone,
}

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    pub method: Method,
    pub keep_old: bool,
}

fn problem(host: &str, check: &str, message: String, hint: String) -> Problem {
    Problem::new(host, check, message, hint)
}

pub async fn run(ctx: &Context<'_>, o: Options) -> Result<u8, Error> {
    let inv = &ctx.inv;
    let inv_path = inv.file.display().to_string();
    let started = Instant::now();
    ctx.host_named(&o.host)?;
    ctx.lock("rebuild").await?;

    // 1. Preflight on the live topology.
    let view = collect(ctx, inv.timeouts.status, &inv.thresholds).await;
    let writable: Vec<&str> = view
        .hosts
        .iter()
        .filter(|h| h.role == Some(Role::Primary))
        .map(|h| h.name.as_str())
        .collect();
    let mut problems = Vec::new();
    if writable.contains(&o.host.as_str()) {
        let h = inv.host(&o.host).expect("checked");
        problems.push(problem(
            &o.host,
            "target",
            format!("{} accepts writes: rebuild never touches a writable node{}", o.host, if writable.len() > 1 { " (and more than one node accepts writes: split-brain)" } else { "" }),
            format!("if {} is a stale primary, stop it first: {}/pg_ctl stop -m fast -D {} (on {}); then re-run rebuild", o.host, h.bin_dir, h.data_dir, o.host),
        ));
    }
    let primary = match writable
        .iter()
        .filter(|p| **p != o.host)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [p] => Some(p.to_string()),
        [] => {
            problems.push(problem(
                &o.host,
                "primary",
                "no other node accepts writes: there is nothing to rebuild from".into(),
                format!("promote a replica first: pgrepl -i {inv_path} promote <replica>"),
            ));
            None
        }
        many => {
            problems.push(problem(
                &o.host,
                "primary",
                format!(
                    "several nodes accept writes ({}): split-brain",
                    many.iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "stop every writable node but one first (pgrepl status shows how)".into(),
            ));
            None
        }
    };
    if !problems.is_empty() {
        return Err(Error::Preflight { problems }.into());
    }
    let eff: Inventory = inv.with_primary(primary.as_deref().expect("one primary"));
    let h = eff.host(&o.host).expect("checked").clone();
    let up = eff
        .host(
            h.upstream
                .as_deref()
                .expect("a replica in the live topology"),
        )
        .expect("validated")
        .clone();
    let upv = view
        .hosts
        .iter()
        .find(|x| x.name == up.name)
        .expect("probed");
    if !upv.reachable {
        return Err(Error::Preflight {
            problems: vec![problem(
                &up.name,
                "upstream",
                format!("{}'s upstream {} cannot be queried", h.name, up.name),
                format!("pgrepl -i {inv_path} status"),
            )],
        }
        .into());
    }
    let t = ctx.kept(&h).await.map_err(|e| Error::Preflight {
        problems: vec![problem(
            &h.name,
            "reachable",
            format!("{e:#}"),
            "rebuild needs to reach the host itself".into(),
        )],
    })?;
    let password = inv.replication_password()?;
    let state = t
        .run(&datadir::probe(&h.data_dir), None)
        .await
        .ok()
        .and_then(|o| datadir::parse(&o.stdout));
    if matches!(
        state,
        Some(
            datadir::DirState::Other
                | datadir::DirState::NotADirectory
                | datadir::DirState::Unreadable
        )
    ) {
        return Err(Error::Preflight {
            problems: vec![problem(
                &h.name,
                "data_dir",
                format!("{} holds files that are not a PostgreSQL data directory; rebuild never replaces them", h.data_dir),
                format!("move them aside yourself (mv {dir} {dir}.saved on {}), then re-run rebuild", h.name, dir = h.data_dir),
            )],
        }
        .into());
    }
    let running = is_running(t.as_ref(), &h).await?;
    let rewind_blocker = match &state {
        Some(datadir::DirState::PgData { .. }) => match control_data(t.as_ref(), &h).await {
            Ok(cd) => rewind::blocker(&cd),
            Err(e) => Some(format!("pg_controldata failed: {e:#}")),
        },
        other => Some(format!("there is no data directory to rewind ({other:?})")),
    };
    let (method, reason) = match (o.method, &rewind_blocker) {
        (Method::Clone, _) => (Method::Clone, "--method clone".to_string()),
        (Method::Rewind, Some(b)) => {
            return Err(Error::Preflight {
                problems: vec![problem(
                    &h.name,
                    "rewind",
                    format!("pg_rewind is not possible: {b}"),
                    format!("pgrepl -i {inv_path} rebuild {} --method clone", h.name),
                )],
            }
            .into());
        }
        (_, None) => (
            Method::Rewind,
            "data checksums or wal_log_hints are on and the data directory is intact".to_string(),
        ),
        (Method::Auto, Some(b)) => (Method::Clone, format!("pg_rewind is not possible: {b}")),
    };

    // 2. Confirm.
    let what = match method {
        Method::Rewind => format!("rewind {} on {} to follow {} (falls back to a fresh clone if the rewind fails)", h.data_dir, h.name, up.name),
        _ => format!("replace {} on {} with a fresh clone of {} (the old data is kept in {} until the new replica streams)", h.data_dir, h.name, up.name, datadir::old_dir(&h.data_dir)),
    };
    ctx.ui.confirm(
        &format!("rebuild {}", h.name),
        &format!(
            "{what}; {}",
            if running {
                "its server will be stopped"
            } else {
                "its server is stopped"
            }
        ),
    )?;

    // 3. Act.
    if running {
        stop_and_prove_down(ctx, t.as_ref(), &h).await?;
    }
    install_passfile(ctx, t.as_ref(), &h, &password).await?;
    let udb = ctx.db(ctx.kept(&up).await?.as_ref(), &up).await?;
    ensure_slot(ctx, &udb, &up.name, &h.slot, &h.name).await?;

    let mut used = method;
    let mut why = reason;
    if method == Method::Rewind {
        // pg_rewind's source must be a writable server: the live primary.
        let src = eff.primary().clone();
        if let Err(e) = rewind_from(ctx, t.as_ref(), &h, &src, &eff).await {
            if o.method == Method::Rewind {
                return Err(e);
            }
            ctx.ui.warn(format!(
                "{}: pg_rewind failed, falling back to a fresh clone: {e:#}",
                h.name
            ));
            used = Method::Clone;
            why = format!(
                "pg_rewind failed: {}",
                format!("{e:#}").lines().next().unwrap_or("")
            );
        }
    }
    if used == Method::Clone {
        clone_via_staging(ctx, &eff, t.as_ref(), &h).await?;
    }
    let mut tr: std::collections::BTreeMap<String, Arc<dyn Transport>> =
        std::collections::BTreeMap::new();
    for x in [&h, &up] {
        tr.insert(x.name.clone(), ctx.kept(x).await?);
    }
    let t0 = Instant::now();
    let mut joined = join_as_standby(ctx, &eff, t.as_ref(), &h).await;
    if let (Err(e), Method::Rewind, Method::Auto) = (&joined, used, o.method) {
        // A rewound node that does not start or stream (a broken file pg_rewind left alone):
        // in auto mode, a fresh clone replaces it, the old data kept until the clone streams.
        ctx.ui.warn(format!(
            "{}: after the rewind it does not start or stream ({}); falling back to a fresh clone",
            h.name,
            format!("{e:#}").lines().next().unwrap_or("")
        ));
        if is_running(t.as_ref(), &h).await? {
            stop_and_prove_down(ctx, t.as_ref(), &h).await?;
        }
        used = Method::Clone;
        why = format!(
            "the rewound data directory did not start or stream: {}",
            format!("{e:#}").lines().next().unwrap_or("")
        );
        clone_via_staging(ctx, &eff, t.as_ref(), &h).await?;
        joined = join_as_standby(ctx, &eff, t.as_ref(), &h).await;
    }
    joined.map_err(|e| match used {
        Method::Clone => e.with_hint(format!(
            "the previous data is still in {} on {}",
            datadir::old_dir(&h.data_dir),
            h.name
        )),
        _ => e,
    })?;
    ctx.ui.done(
        &h.name,
        &format!("streaming from {}, slot {} active", up.name, h.slot),
        t0.elapsed(),
    );
    drop_stale_slots(ctx, &eff, tr[&h.name].as_ref(), &h).await?;
    if used == Method::Clone && !o.keep_old {
        run_step(
            t.as_ref(),
            &datadir::remove_ours(&datadir::old_dir(&h.data_dir)),
            "remove the old copy",
            None,
        )
        .await?;
    }
    let m = if used == Method::Rewind {
        "rewind"
    } else {
        "clone"
    };
    ctx.ui.info(format!(
        "rebuild: {} is a replica of {} again, by {m} ({why}), in {:.1}s",
        h.name,
        up.name,
        started.elapsed().as_secs_f64()
    ));
    if ctx.ui.format() == Format::Json {
        ctx.ui.json(&serde_json::json!({ "host": h.name, "upstream": up.name, "method": m, "reason": why, "seconds": started.elapsed().as_secs_f64(), "old_copy_kept": used == Method::Clone && o.keep_old }));
    }
    Ok(exit::OK)
}

/// Renders and installs the standby configuration, writes standby.signal, starts the server and
/// verifies it streams from its upstream with its slot active.
async fn join_as_standby(
    ctx: &Context<'_>,
    eff: &Inventory,
    t: &dyn Transport,
    h: &Host,
) -> Result<(), Error> {
    start_as_standby(ctx, eff, t, h).await?;
    verify_streaming(ctx, eff, &[h.name.as_str()]).await
}
