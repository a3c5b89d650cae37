//! A host's configuration: install the rendered files (only those that differ), apply them to a
//! running server (reload, or restart when a restart-only setting changed), and the password file.
//! The files' content is `render`'s; this file only installs and applies it.

use std::time::Instant;

use crate::context::Context;
use crate::error::{Error, OnStep};
use crate::inventory::{Host, Inventory, Secret};
use crate::pg::{self, ctl, datadir};
use crate::render::Rendered;
use crate::transport::Transport;

use super::exec::install_file;
use super::server::{server, server_up};

/// What converging a host's configuration changed.
#[derive(Debug, Default)]
pub struct ConfigChange {
    /// Files rewritten.
    pub files: Vec<&'static str>,
    /// postgresql.conf settings whose values changed.
    pub settings: Vec<String>,
}

/// Installs the rendered files into the data directory (only those that differ).
pub async fn install_configs(
    t: &dyn Transport,
    h: &Host,
    r: &Rendered,
) -> Result<ConfigChange, Error> {
    let mut ch = ConfigChange::default();
    for (name, content) in r.files() {
        let path = format!("{}/{name}", h.data_dir);
        if let Some(old) =
            install_file(t, &path, "0600", content, &format!("install {name}")).await?
        {
            if name == "postgresql.conf" {
                ch.settings = pg::changed_settings(&old, content);
            }
            ch.files.push(name);
        }
    }
    Ok(ch)
}

/// Applies a configuration change to a running server: reload, or restart when a changed
/// setting needs one. Returns what was done ("reloaded", "restarted") or None.
pub async fn apply_config(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    ch: &ConfigChange,
    restart_needed: bool,
) -> Result<Option<&'static str>, Error> {
    if ch.files.is_empty() && !restart_needed {
        return Ok(None);
    }
    let t0 = Instant::now();
    if restart_needed {
        // Stop (fast; immediate when that does not end within timeouts.start — a stuck
        // archive_command or WAL sender holds a fast shutdown up after its checkpoint — proven
        // down), then start: never left half-way in "shutting down".
        super::server::stop_and_prove_down(ctx, t, h).await?;
        let cmd = ctl::start(&server(h), ctx.inv.timeouts.start.as_secs());
        server_up(t, h, &cmd, "restart PostgreSQL").await?;
        let why = if ch.settings.is_empty() {
            "to leave values given on its command line".to_string()
        } else {
            format!("{} changed", ch.settings.join(", "))
        };
        ctx.ui.done(
            &h.name,
            &format!("restarted PostgreSQL ({why})"),
            t0.elapsed(),
        );
        Ok(Some("restarted"))
    } else {
        ctx.db(t, h)
            .await?
            .reload()
            .await
            .on_step(&h.name, "reload")?;
        ctx.ui.done(
            &h.name,
            &format!("reloaded configuration ({})", ch.files.join(", ")),
            t0.elapsed(),
        );
        Ok(Some("reloaded"))
    }
}

/// Would installing `r` on the running server of `h` need a restart? Returns the settings.
pub async fn restart_settings(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    r: &Rendered,
) -> Result<Vec<String>, Error> {
    let cur = t
        .run(
            &datadir::read_file(&format!("{}/postgresql.conf", h.data_dir)),
            None,
        )
        .await
        .on_step(&h.name, "read postgresql.conf")?;
    if !cur.success() {
        return Ok(Vec::new());
    }
    let changed = pg::changed_settings(&cur.stdout, &r.postgresql_conf);
    if changed.is_empty() {
        return Ok(changed);
    }
    ctx.db(t, h)
        .await?
        .restart_only(&changed)
        .await
        .on_step(&h.name, "read pg_settings")
}

/// Renders `h` from `inv` (the live topology), installs what differs and applies it to the
/// running server (reload; restart only when a restart-only setting changed).
pub async fn converge_running(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
) -> Result<(), Error> {
    let r = ctx.renderer.render(inv, h).on_step(&h.name, "render")?;
    let restart = !restart_settings(ctx, t, h, &r).await?.is_empty();
    let ch = install_configs(t, h, &r).await?;
    apply_config(ctx, t, h, &ch, restart).await?;
    Ok(())
}

/// The 0600 password file (replication and rewind roles) on a host. Every host gets one: any
/// host may become a replica (after a switchover or failover) and must then find its password.
/// Returns whether the file changed.
pub async fn install_passfile(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    password: &Secret,
) -> Result<bool, Error> {
    let inv = &ctx.inv;
    let line = pg::passfile_line(&inv.replication_user, password.expose())
        + &pg::passfile_line(&inv.rewind_user, password.expose());
    if install_file(t, &h.passfile, "0600", &line, "install password file")
        .await?
        .is_some()
    {
        ctx.ui.detail(format!(
            "{}: installed password file {}",
            h.name, h.passfile
        ));
        return Ok(true);
    }
    Ok(false)
}
