//! `pgrepl render`: the files init would install, per host and per router, for review.
//! Contacts no host.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::error::{exit, Error};
use crate::ui::Format;

use super::documents::RenderDocument;
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
    let as_json = ctx.ui.format() == Format::Json;
    let mut text = String::new();
    let mut docs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
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
                None if as_json => {}
                None => text.push_str(&format!(
                    "==> {owner}/{name} <==
{content}
"
                )),
            }
            if as_json {
                let host = docs.entry(owner.clone()).or_default();
                host.insert(name.to_string(), content.to_string());
            }
        }
        if let Some(dir) = &opts.out {
            ctx.ui.info(format!("wrote {}", dir.join(owner).display()));
        }
    }
    // With --format json the document is printed with --out too (one document on stdout).
    if as_json {
        ctx.ui.json(&RenderDocument {
            cluster: ctx.inv.cluster.clone(),
            hosts: docs,
        });
    } else {
        ctx.ui.data(&text);
    }
    Ok(exit::OK)
}
