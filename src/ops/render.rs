//! `pgrepl render`: the files init would install, per host and per router, for review.
//! Contacts no host.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::error::{exit, Error};
use crate::ui::Format;

use super::Context;

/// What to render and where.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Write to `<out>/<host>/` instead of stdout.
    pub out: Option<PathBuf>,
    /// Only this host.
    pub host: Option<String>,
}

/// Renders every host's files (or only `opts.host`'s) to stdout, as JSON, or under `opts.out`.
/// An unknown `--host` is a preflight failure (exit 4), as for every command taking a host.
pub fn run(ctx: &Context<'_>, opts: Options) -> Result<u8, Error> {
    let hosts: Vec<_> = match opts.host.as_deref() {
        Some(name) => vec![ctx.host_named(name)?],
        None => ctx.inv.hosts.iter().collect(),
    };
    let mut text = String::new();
    let mut json = serde_json::Map::new();
    let mut outputs: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for h in hosts {
        let r = ctx.rendered(h)?;
        let files = r
            .files()
            .iter()
            .map(|(n, c)| (n.to_string(), c.to_string()))
            .collect();
        outputs.push((h.name.clone(), files));
    }
    if opts.host.is_none() {
        // Routers' configuration files (their auth file holds verifiers read from the live
        // primary at install time: not rendered here).
        for r in &ctx.inv.routers {
            let files = ctx.renderer.render_router(&ctx.inv, r)?;
            outputs.push((
                r.name.clone(),
                files.into_iter().map(|f| (f.name, f.content)).collect(),
            ));
        }
    }
    for (owner, files) in &outputs {
        for (name, content) in files {
            let name = name.as_str();
            match &opts.out {
                Some(dir) => {
                    let d = dir.join(owner);
                    std::fs::create_dir_all(&d)
                        .with_context(|| format!("cannot create {}", d.display()))
                        .map_err(Error::from)?;
                    std::fs::write(d.join(name), content)
                        .with_context(|| format!("cannot write {}", d.join(name).display()))
                        .map_err(Error::from)?;
                }
                None if ctx.ui.format() == Format::Json => {
                    let e = json
                        .entry(owner.clone())
                        .or_insert_with(|| serde_json::json!({}));
                    e[name] = serde_json::Value::String(content.to_string());
                }
                None => text.push_str(&format!("==> {owner}/{name} <==\n{content}\n")),
            }
        }
        if let Some(dir) = &opts.out {
            ctx.ui.info(format!("wrote {}", dir.join(owner).display()));
        }
    }
    if opts.out.is_none() && ctx.ui.format() == Format::Json {
        ctx.ui
            .json(&serde_json::json!({ "cluster": ctx.inv.cluster, "hosts": json }));
    } else {
        ctx.ui.data(&text);
    }
    Ok(exit::OK)
}
