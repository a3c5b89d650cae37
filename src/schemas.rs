//! The JSON Schemas of every `--format json` document, generated from the Rust types that are
//! printed (`schemars`): [`all`] lists each document with its file name in `schemas/`. A unit
//! test compares the committed files with the generated ones; `PGREPL_BLESS=1` rewrites them
//! (`PGREPL_BLESS=1 cargo test --lib schemas`).
//!
//! A new document: its type (`Serialize` + `JsonSchema`, doc comments on every field; in
//! `ops/documents.rs` for a command's result), one line in [`all`], then bless.

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema};

use crate::error::ErrorDocument;
use crate::health::ClusterView;
use crate::ops::documents as doc;

/// Where the schemas are published (`$id`: `<BASE_ID><file name>`).
pub const BASE_ID: &str = "https://pgrepl.invalid/schemas/";

/// One document's schema: `schemas/<name>.schema.json`, for the command line `title`.
pub struct Entry {
    /// The file's name without `.schema.json` (`status`, `switchover-dry-run`, `error`, …).
    pub name: &'static str,
    /// What prints it (the schema's title).
    pub title: &'static str,
    /// The generated schema.
    pub schema: Schema,
}

/// Every document, each with its file name and title.
pub fn all() -> Vec<Entry> {
    vec![
        entry::<ClusterView>("status", "pgrepl status --format json"),
        entry::<doc::CheckDocument>("check", "pgrepl check --format json"),
        entry::<doc::RenderDocument>("render", "pgrepl render --format json"),
        entry::<doc::InitDocument>("init", "pgrepl init --format json"),
        entry::<doc::PromoteDocument>("promote", "pgrepl promote --format json"),
        entry::<doc::SwitchoverDocument>("switchover", "pgrepl switchover --format json"),
        entry::<doc::SwitchoverPlanDocument>(
            "switchover-dry-run",
            "pgrepl switchover --dry-run --format json",
        ),
        entry::<doc::RebuildDocument>("rebuild", "pgrepl rebuild --format json"),
        entry::<doc::DestroyDocument>("destroy", "pgrepl destroy [--dry-run] --format json"),
        entry::<doc::UnlockDocument>("unlock", "pgrepl unlock --format json"),
        entry::<doc::TlsRenewDocument>("tls-renew", "pgrepl tls renew --format json"),
        entry::<doc::SlotDropDocument>("slot-drop", "pgrepl slot drop --format json"),
        entry::<doc::HistoryDocument>("history", "pgrepl history --format json"),
        entry::<crate::ops::dsn::DsnDocument>("dsn", "pgrepl dsn --format json"),
        entry::<doc::DryRunDocument>(
            "dry-run",
            "pgrepl init|promote|rebuild|unlock|slot drop --dry-run --format json",
        ),
        entry::<ErrorDocument>("error", "pgrepl <any command> --format json, on failure"),
    ]
}

/// The schema of `T` as printed (the serialize contract: every field without
/// `skip_serializing_if` is required), with its `$id` and title.
fn entry<T: JsonSchema>(name: &'static str, title: &'static str) -> Entry {
    let mut schema = SchemaSettings::draft2020_12()
        .for_serialize()
        .with_transform(RecursiveTransform(plain_description))
        .into_generator()
        .into_root_schema_for::<T>();
    schema.insert("$id".into(), format!("{BASE_ID}{name}.schema.json").into());
    schema.insert("title".into(), title.into());
    Entry {
        name,
        title,
        schema,
    }
}

/// A doc comment as a description: its lines joined (paragraphs kept), rustdoc's links
/// (`` [`x`] ``) plain code.
fn plain_description(schema: &mut Schema) {
    let Some(serde_json::Value::String(d)) = schema.get("description") else {
        return;
    };
    let plain = d
        .split("\n\n")
        .map(|p| p.split('\n').collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
        .replace("[`", "`")
        .replace("`]", "`");
    schema.insert("description".into(), plain.into());
}

/// The file's text: pretty JSON and a final newline.
pub fn text(schema: &Schema) -> String {
    let mut s = serde_json::to_string_pretty(schema).expect("schemas serialize");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The committed `schemas/*.schema.json` are the generated ones, and there is no other.
    #[test]
    fn committed_schemas_are_the_generated_ones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let bless = std::env::var_os("PGREPL_BLESS").is_some_and(|v| v == "1");
        let entries = all();
        let mut stale = Vec::new();
        for e in &entries {
            let path = dir.join(format!("{}.schema.json", e.name));
            let want = text(&e.schema);
            if bless {
                std::fs::write(&path, &want).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let name = f.unwrap().file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".schema.json") else {
                continue;
            };
            if !entries.iter().any(|e| e.name == stem) {
                stale.push(format!("{name} (no document has it: remove it)"));
            }
        }
        assert!(
            stale.is_empty(),
            "schemas differ from the Rust types: {stale:?}\n\
             regenerate them: PGREPL_BLESS=1 cargo test --lib schemas"
        );
    }

    #[test]
    fn every_document_is_strict_and_described() {
        for e in all() {
            let s = e.schema.as_object().unwrap();
            assert_eq!(s["additionalProperties"], false, "{}", e.name);
            assert!(s.contains_key("description"), "{}", e.name);
            assert!(!s["required"].as_array().unwrap().is_empty(), "{}", e.name);
        }
    }
}
