//! `pgrepl render`: the files init would install, per host, for review. Contacts no host.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::error::exit;
use crate::ui::Format;

use super::Context;

/// What to render and where.
pub struct Options {
    /// Write to `<out>/<host>/` instead of stdout.
    pub out: Option<PathBuf>,
    /// Only this host.
    pub host: Option<String>,
}

pub fn run(ctx: &Context<'_>, opts: Options) -> anyhow::Result<u8> {
    let hosts: Vec<_> = ctx
        .inv
        .hosts
        .iter()
        .filter(|h| opts.host.as_deref().is_none_or(|n| n == h.name))
        .collect();
    if hosts.is_empty() {
        anyhow::bail!(
            "no host named {:?} in the inventory (hosts: {})",
            opts.host.unwrap_or_default(),
            ctx.inv
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut text = String::new();
    let mut json = serde_json::Map::new();
    for h in hosts {
        let r = ctx.rendered(h)?;
        for (name, content) in r.files() {
            match &opts.out {
                Some(dir) => {
                    let d = dir.join(&h.name);
                    std::fs::create_dir_all(&d)
                        .with_context(|| format!("cannot create {}", d.display()))?;
                    std::fs::write(d.join(name), content)
                        .with_context(|| format!("cannot write {}", d.join(name).display()))?;
                }
                None if ctx.ui.format() == Format::Json => {
                    let e = json
                        .entry(h.name.clone())
                        .or_insert_with(|| serde_json::json!({}));
                    e[name] = serde_json::Value::String(content.to_string());
                }
                None => text.push_str(&format!("==> {}/{name} <==\n{content}\n", h.name)),
            }
        }
        if let Some(dir) = &opts.out {
            ctx.ui
                .info(format!("wrote {}", dir.join(&h.name).display()));
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
