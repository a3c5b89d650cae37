//! `pgrepl render`: the files init would install, per host, for review. Contacts no host.

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
    let mut files: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for h in hosts {
        let r = ctx.rendered(h)?;
        for (name, content) in r.files() {
            match &opts.out {
                Some(dir) => {
                    let d = dir.join(&h.name);
                    std::fs::create_dir_all(&d)
                        .with_context(|| format!("cannot create {}", d.display()))
                        .map_err(Error::from)?;
                    std::fs::write(d.join(name), content)
                        .with_context(|| format!("cannot write {}", d.join(name).display()))
                        .map_err(Error::from)?;
                }
                None if as_json => {}
                None => text.push_str(&format!("==> {}/{name} <==\n{content}\n", h.name)),
            }
            if as_json {
                let host = files.entry(h.name.clone()).or_default();
                host.insert(name.to_string(), content.to_string());
            }
        }
        if let Some(dir) = &opts.out {
            ctx.ui
                .info(format!("wrote {}", dir.join(&h.name).display()));
        }
    }
    // With --format json the document is printed with --out too (one document on stdout).
    if as_json {
        ctx.ui.json(&RenderDocument {
            cluster: ctx.inv.cluster.clone(),
            hosts: files,
        });
    } else {
        ctx.ui.data(&text);
    }
    Ok(exit::OK)
}
