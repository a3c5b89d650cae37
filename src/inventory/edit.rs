//! Keeping the inventory true after pgrepl changed the cluster: the hosts' `role:` and
//! `upstream:` scalars are rewritten in place — only those, keeping comments, order, quoting and
//! formatting — from the positions the loader knows. The edited text is parsed again and must
//! describe exactly the wanted roles and upstreams, or nothing is written. The file is replaced
//! atomically (a temporary file beside it, same mode, renamed over it).
//!
//! The text edit is pure (`edit_text`); `write_back` reads and writes the one local file. It
//! never contacts a host.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::model::{Inventory, Role};
use super::raw;

/// One scalar edit, at a 1-based line and column of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// Replace the scalar starting there.
    Replace {
        line: usize,
        column: usize,
        value: String,
    },
    /// Remove the `upstream:` key whose value starts there.
    RemoveUpstream { line: usize, column: usize },
    /// Add `upstream: <value>` beside the `role:` key whose value starts there: on a line of
    /// its own below it (block style, same indentation) or right after it (flow style).
    AddUpstream {
        line: usize,
        column: usize,
        value: String,
    },
}

impl Op {
    fn at(&self) -> (usize, usize) {
        match self {
            Op::Replace { line, column, .. }
            | Op::RemoveUpstream { line, column }
            | Op::AddUpstream { line, column, .. } => (*line, *column),
        }
    }
}

fn role_word(r: Role) -> &'static str {
    match r {
        Role::Primary => "primary",
        Role::Replica => "replica",
    }
}

/// The `role:`/`upstream:` edits that make `text` describe `wanted`, as `(text, changes)`:
/// the edited text and one line per change (`r1: role: primary`). `Ok((text, []))` when the
/// file already matches.
///
/// # Errors
/// A sentence saying why the file cannot be edited in place (it does not parse, a host of
/// `wanted` is missing, a key is laid out in a way this editor does not handle, or the edited
/// text would not describe `wanted`).
pub fn edit_text(
    text: &str,
    path: &Path,
    wanted: &Inventory,
) -> Result<(String, Vec<String>), String> {
    // A byte-order mark is kept, and kept out of the column arithmetic.
    if let Some(body) = text.strip_prefix('\u{feff}') {
        let (edited, changes) = edit_text(body, path, wanted)?;
        return Ok((format!("\u{feff}{edited}"), changes));
    }
    let raw = raw::read(text).map_err(|i| format!("{}:{}: {}", i.line, i.column, i.message))?;
    let primary = &wanted.primary().name;
    let mut ops = Vec::new();
    let mut changes = Vec::new();
    for rh in &raw.hosts.value {
        let rh = &rh.value;
        let name = &rh.name.value;
        let w = wanted
            .host(name)
            .ok_or_else(|| format!("host {name} is not in the cluster pgrepl changed"))?;
        if rh.role.value != w.role {
            ops.push(Op::Replace {
                line: rh.role.referenced.line() as usize,
                column: rh.role.referenced.column() as usize,
                value: role_word(w.role).into(),
            });
            changes.push(format!("{name}: role: {}", role_word(w.role)));
        }
        match (&rh.upstream, w.role, w.upstream.as_deref()) {
            (Some(u), Role::Primary, _) => {
                ops.push(Op::RemoveUpstream {
                    line: u.referenced.line() as usize,
                    column: u.referenced.column() as usize,
                });
                changes.push(format!("{name}: no upstream (it is the primary)"));
            }
            (Some(u), Role::Replica, Some(x)) if u.value != x => {
                ops.push(Op::Replace {
                    line: u.referenced.line() as usize,
                    column: u.referenced.column() as usize,
                    value: x.to_string(),
                });
                changes.push(format!("{name}: upstream: {x}"));
            }
            (Some(u), Role::Replica, None) if &u.value != primary => {
                ops.push(Op::RemoveUpstream {
                    line: u.referenced.line() as usize,
                    column: u.referenced.column() as usize,
                });
                changes.push(format!("{name}: no upstream (it follows the primary)"));
            }
            (None, Role::Replica, Some(x)) if x != primary => {
                ops.push(Op::AddUpstream {
                    line: rh.role.referenced.line() as usize,
                    column: rh.role.referenced.column() as usize,
                    value: x.to_string(),
                });
                changes.push(format!("{name}: upstream: {x}"));
            }
            _ => {}
        }
    }
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    ops.sort_by_key(|o| std::cmp::Reverse(o.at()));
    for op in &ops {
        apply(&mut lines, op)?;
    }
    let edited = lines.join("\n");
    verify(text, &edited, path, wanted)?;
    Ok((edited, changes))
}

/// Applies one edit to the lines (1-based positions), keeping a CRLF line's CR.
fn apply(lines: &mut Vec<String>, op: &Op) -> Result<(), String> {
    let l = op.at().0;
    let crlf = lines
        .get(l.wrapping_sub(1))
        .is_some_and(|x| x.ends_with('\r'));
    let count = lines.len();
    apply_to_line(lines, op)?;
    if crlf && lines.len() == count && !lines[l - 1].ends_with('\r') {
        lines[l - 1].push('\r');
    }
    Ok(())
}

/// Applies one edit to its line.
fn apply_to_line(lines: &mut Vec<String>, op: &Op) -> Result<(), String> {
    let (l, c) = op.at();
    let line = lines
        .get(l.wrapping_sub(1))
        .ok_or_else(|| format!("line {l} is not in the file"))?
        .clone();
    let chars: Vec<char> = line.chars().collect();
    let start = c
        .checked_sub(1)
        .filter(|s| *s < chars.len())
        .ok_or_else(|| format!("column {c} of line {l} is not in the file"))?;
    let end = scalar_end(&chars, start);
    match op {
        Op::Replace { value, .. } => {
            // The original quoting is kept: a quoted scalar stays quoted the same way.
            let quote = match chars[start] {
                q @ ('"' | '\'') => q.to_string(),
                _ => String::new(),
            };
            let new: String = chars[..start].iter().collect::<String>()
                + &quote
                + value
                + &quote
                + &chars[end..].iter().collect::<String>();
            lines[l - 1] = new;
        }
        Op::RemoveUpstream { .. } => {
            let head: String = chars[..start].iter().collect();
            let key = head
                .rfind("upstream")
                .ok_or_else(|| format!("line {l}: no upstream key before its value"))?;
            let before = &head[..key];
            let tail: String = chars[end..].iter().collect();
            let rest = tail.trim();
            if before.trim().is_empty() && (rest.is_empty() || rest.starts_with('#')) {
                // Block style: the key is alone on its line.
                lines.remove(l - 1);
            } else if before.trim().is_empty() && rest.starts_with(',') {
                // A flow mapping spread over lines, the pair first on its line: the pair and
                // its comma go, the rest of the line stays.
                let kept = rest[1..].trim_start();
                lines[l - 1] = format!("{before}{kept}");
            } else if before.contains("{") || before.trim_end().ends_with(',') {
                lines[l - 1] = remove_flow_pair(before, &tail);
            } else {
                return Err(format!(
                    "line {l}: the upstream key shares its line with other keys"
                ));
            }
        }
        Op::AddUpstream { value, .. } => add_upstream(lines, l, &chars, start, end, value)?,
    }
    Ok(())
}

/// Adds `upstream: value` beside the `role:` whose value spans `start..end` of line `l`
/// (`chars`): after the value in a flow mapping, or on its own line below at the key's column.
fn add_upstream(
    lines: &mut Vec<String>,
    l: usize,
    chars: &[char],
    start: usize,
    end: usize,
    value: &str,
) -> Result<(), String> {
    let crlf = chars.last() == Some(&'\r');
    let head: String = chars[..start].iter().collect();
    let key = head
        .rfind("role")
        .ok_or_else(|| format!("line {l}: no role key before its value"))?;
    let before = &head[..key];
    let tail: String = chars[end..].iter().collect();
    if before.contains("{") || before.trim_end().ends_with(',') {
        // Flow style: the pair goes right after the role's value.
        let value_text: String = chars[start..end].iter().collect();
        lines[l - 1] = format!("{head}{value_text}, upstream: {value}{tail}");
    } else if before.trim_start_matches([' ', '-']).is_empty() {
        // Block style (`    role: x` or `  - role: x`): a line of its own below, at
        // the key's column.
        let cr = if crlf { "\r" } else { "" };
        let indent = " ".repeat(before.chars().count());
        lines.insert(l, format!("{indent}upstream: {value}{cr}"));
    } else {
        return Err(format!(
            "line {l}: the role key shares its line with other keys"
        ));
    }
    Ok(())
}

/// Removes `upstream: value` from a flow mapping, given the text before the key and after the
/// value: the comma that separated it from its neighbour goes too.
fn remove_flow_pair(before: &str, tail: &str) -> String {
    let t = tail.trim_start();
    if let Some(rest) = t.strip_prefix(',') {
        // `{a: 1, upstream: x, b: 2}` → `{a: 1, b: 2}`
        format!("{before}{}", rest.trim_start())
    } else {
        // `{a: 1, upstream: x}` → `{a: 1}`
        let b = before.trim_end();
        let b = b.strip_suffix(',').unwrap_or(b);
        format!("{b}{t}")
    }
}

/// The end (exclusive) of the scalar starting at `start`: a quoted one to its closing quote, a
/// plain one to a flow indicator, a comment or the end of the line (trailing spaces excluded).
fn scalar_end(chars: &[char], start: usize) -> usize {
    match chars[start] {
        '"' => {
            let mut i = start + 1;
            while i < chars.len() {
                match chars[i] {
                    '\\' => i += 2,
                    '"' => return i + 1,
                    _ => i += 1,
                }
            }
            chars.len()
        }
        '\'' => {
            let mut i = start + 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    return i + 1;
                }
                i += 1;
            }
            chars.len()
        }
        _ => {
            let mut i = start;
            while i < chars.len() {
                let ch = chars[i];
                if matches!(ch, ',' | '}' | ']' | '\r')
                    || (ch == '#' && i > 0 && matches!(chars[i - 1], ' ' | '\t'))
                {
                    break;
                }
                i += 1;
            }
            while i > start && matches!(chars[i - 1], ' ' | '\t') {
                i -= 1;
            }
            i
        }
    }
}

/// The edited text must load, describe exactly `wanted`'s roles and upstreams, and differ from
/// the original in nothing else.
fn verify(original: &str, edited: &str, path: &Path, wanted: &Inventory) -> Result<(), String> {
    let got =
        super::parse(edited, path).map_err(|e| format!("the edited file would be invalid: {e}"))?;
    let up = |h: &super::model::Host, inv: &Inventory| match h.role {
        Role::Primary => None,
        Role::Replica => h
            .upstream
            .clone()
            .or_else(|| Some(inv.primary().name.clone())),
    };
    for w in &wanted.hosts {
        let g = got
            .host(&w.name)
            .ok_or_else(|| format!("{} is missing from the edited file", w.name))?;
        if g.role != w.role || up(g, &got) != up(w, wanted) {
            return Err(format!(
                "the edited file would not describe {} as wanted",
                w.name
            ));
        }
    }
    let before = super::parse(original, path).map_err(|e| format!("it does not load: {e}"))?;
    if roles_aside(&before) != roles_aside(&got) {
        return Err("the edit would change more than roles and upstreams".into());
    }
    Ok(())
}

/// Everything an inventory says but its roles and upstreams, for comparison.
fn roles_aside(inv: &Inventory) -> String {
    let mut i = inv.clone();
    for h in &mut i.hosts {
        h.role = Role::Replica;
        h.upstream = None;
    }
    format!("{i:?}")
}

/// Rewrites the inventory file at `path` so that it describes `wanted` (roles and upstreams):
/// `Ok(changes)` (empty: it already did). The file is replaced atomically, keeping its mode.
///
/// # Errors
/// Why it was not written (it cannot be read or written, or cannot be edited in place); the
/// caller then prints the edit for the DBA.
pub fn write_back(path: &Path, wanted: &Inventory) -> Result<Vec<String>, String> {
    use std::os::unix::fs::MetadataExt;
    // A symlinked inventory: the file it points to is the one to edit.
    let path = &std::fs::canonicalize(path).map_err(|e| format!("cannot read it: {e}"))?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let (edited, changes) = edit_text(&text, path, wanted)?;
    if changes.is_empty() {
        return Ok(changes);
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o200 == 0 {
        return Err("it is read-only".into());
    }
    if meta.nlink() > 1 {
        return Err("it has other hard links, which a replacement would cut off".into());
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".pgrepl-inventory-")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot write beside it in {}: {e}", dir.display()))?;
    tmp.write_all(edited.as_bytes())
        .and_then(|_| tmp.as_file().sync_all())
        .and_then(|_| std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)))
        .map_err(|e| format!("cannot write beside it: {e}"))?;
    // Same owner as before, or no change at all.
    if (meta.uid(), meta.gid())
        != (tmp
            .as_file()
            .metadata()
            .map(|m| (m.uid(), m.gid()))
            .unwrap_or((u32::MAX, u32::MAX)))
    {
        std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| format!("cannot keep its owner ({e})"))?;
    }
    tmp.persist(path)
        .map_err(|e| format!("cannot replace it: {}", e.error))?;
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "# my cluster\ncluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - name: p   # the first\n    address: 10.0.0.1\n    role: primary   # was the first primary\n  - name: r1\n    address: 10.0.0.2\n    role: replica\n    upstream: p\n  - name: r2\n    address: 10.0.0.3\n    role: \"replica\"\n";

    const FLOW: &str = "cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - {name: p, address: 10.0.0.1, role: primary}\n  - {name: r1, address: 10.0.0.2, role: replica, upstream: p}\n  - {name: r2, address: 10.0.0.3, upstream: r1, role: replica}\n";

    fn load(text: &str) -> Inventory {
        super::super::parse(text, Path::new("i.yml")).unwrap()
    }

    #[test]
    fn a_new_primary_in_block_style_keeps_comments_and_layout() {
        let inv = load(BLOCK);
        let wanted = inv.with_primary("r1");
        let (text, changes) = edit_text(BLOCK, Path::new("i.yml"), &wanted).unwrap();
        assert_eq!(
            changes,
            [
                "p: role: replica",
                "r1: role: primary",
                "r1: no upstream (it is the primary)"
            ]
        );
        assert_eq!(
            text,
            "# my cluster\ncluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - name: p   # the first\n    address: 10.0.0.1\n    role: replica   # was the first primary\n  - name: r1\n    address: 10.0.0.2\n    role: primary\n  - name: r2\n    address: 10.0.0.3\n    role: \"replica\"\n"
        );
        let again = load(&text);
        assert_eq!(again.primary().name, "r1");
        // Once true, nothing more to do.
        let (_, none) = edit_text(&text, Path::new("i.yml"), &again.with_primary("r1")).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn flow_style_pairs_are_edited_in_place() {
        let inv = load(FLOW);
        let wanted = inv.with_primary("r1");
        let (text, _) = edit_text(FLOW, Path::new("i.yml"), &wanted).unwrap();
        assert!(
            text.contains("  - {name: p, address: 10.0.0.1, role: replica}\n"),
            "{text}"
        );
        assert!(
            text.contains("  - {name: r1, address: 10.0.0.2, role: primary}\n"),
            "{text}"
        );
        assert!(
            text.contains("  - {name: r2, address: 10.0.0.3, upstream: r1, role: replica}\n"),
            "{text}"
        );
        // Back to p: r1's upstream key is gone, so none is added; r2 keeps following r1.
        let back = load(&text).with_primary("p");
        let (text2, changes) = edit_text(&text, Path::new("i.yml"), &back).unwrap();
        assert!(
            text2.contains("{name: p, address: 10.0.0.1, role: primary}"),
            "{text2}"
        );
        assert!(
            changes.contains(&"r1: role: replica".to_string()),
            "{changes:?}"
        );
    }

    #[test]
    fn an_upstream_in_the_middle_of_a_flow_mapping_takes_its_comma() {
        assert_eq!(
            remove_flow_pair("  - {name: r1, ", ", role: primary}"),
            "  - {name: r1, role: primary}"
        );
        assert_eq!(remove_flow_pair("  - {name: r1, ", "}"), "  - {name: r1}");
    }

    #[test]
    fn scalars_end_where_yaml_ends_them() {
        let s: Vec<char> = "role: 'it''s' # c".chars().collect();
        assert_eq!(scalar_end(&s, 6), 13);
        let s: Vec<char> = "role: replica   # c".chars().collect();
        assert_eq!(scalar_end(&s, 6), 13);
        let s: Vec<char> = "{role: replica}".chars().collect();
        assert_eq!(scalar_end(&s, 7), 14);
        let s: Vec<char> = "role: replica\t# tab".chars().collect();
        assert_eq!(scalar_end(&s, 6), 13);
    }

    #[test]
    fn an_upstream_is_added_below_the_role_or_beside_it() {
        let mut wanted = load(BLOCK);
        wanted.hosts[2].upstream = Some("r1".into());
        let (text, changes) = edit_text(BLOCK, Path::new("i.yml"), &wanted).unwrap();
        assert_eq!(changes, ["r2: upstream: r1"]);
        assert!(
            text.ends_with(
                "  - name: r2\n    address: 10.0.0.3\n    role: \"replica\"\n    upstream: r1\n"
            ),
            "{text}"
        );
        // A list item that starts with its role, and CRLF.
        let first = "cluster: c\r\npostgres: {version: 15}\r\nreplication: {password_env: X}\r\nhosts:\r\n  - name: p\r\n    address: 10.0.0.1\r\n    role: primary\r\n  - name: r1\r\n    address: 10.0.0.2\r\n    role: replica\r\n  - role: replica # cascade\r\n    name: r2\r\n    address: 10.0.0.3\r\n";
        let mut wanted = load(first);
        wanted.hosts[2].upstream = Some("r1".into());
        let (text, _) = edit_text(first, Path::new("i.yml"), &wanted).unwrap();
        assert!(
            text.contains(
                "\r\n  - role: replica # cascade\r\n    upstream: r1\r\n    name: r2\r\n"
            ),
            "{text:?}"
        );
        // Flow style.
        let mut wanted = load(FLOW);
        wanted.hosts[1].upstream = Some("r2".into());
        wanted.hosts[2].upstream = None;
        let (text, _) = edit_text(FLOW, Path::new("i.yml"), &wanted).unwrap();
        assert!(
            text.contains("  - {name: r1, address: 10.0.0.2, role: replica, upstream: r2}\n"),
            "{text}"
        );
        assert!(
            text.contains("  - {name: r2, address: 10.0.0.3, role: replica}\n"),
            "{text}"
        );
    }

    #[test]
    fn a_multi_line_flow_mapping_loses_only_the_upstream_pair() {
        let text = "cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - {name: p, address: 10.0.0.1, role: primary}\n  - {name: r1, address: 10.0.0.2,\n     upstream: p, port: 5433,\n     role: replica}\n";
        let wanted = load(text).with_primary("r1");
        let (edited, _) = edit_text(text, Path::new("i.yml"), &wanted).unwrap();
        assert!(
            edited.contains("\n     port: 5433,\n     role: primary}\n"),
            "{edited}"
        );
        assert_eq!(load(&edited).host("r1").unwrap().port, 5433);
    }

    #[test]
    fn crlf_survives_a_flow_pair_removal_and_a_bom_is_kept() {
        let text = "\u{feff}cluster: c\r\npostgres: {version: 15}\r\nreplication: {password_env: X}\r\nhosts:\r\n  - {name: p, address: 10.0.0.1, role: primary}\r\n  - {name: r1, address: 10.0.0.2,\r\n     upstream: p, port: 5433,\r\n     role: replica}\r\n";
        let wanted = load(text.trim_start_matches('\u{feff}')).with_primary("r1");
        let (edited, _) = edit_text(text, Path::new("i.yml"), &wanted).unwrap();
        assert!(edited.starts_with('\u{feff}'));
        assert!(
            edited.contains("\r\n     port: 5433,\r\n     role: primary}\r\n"),
            "{edited:?}"
        );
    }

    #[test]
    fn quotes_and_line_endings_are_kept() {
        let text = "cluster: c\r\npostgres: {version: 15}\r\nreplication: {password_env: X}\r\nhosts:\r\n  - name: p\r\n    address: 10.0.0.1\r\n    role: 'primary'\r\n  - name: r1\r\n    address: 10.0.0.2\r\n    role: \"replica\"\r\n";
        let wanted = load(text).with_primary("r1");
        let (edited, _) = edit_text(text, Path::new("i.yml"), &wanted).unwrap();
        assert!(edited.contains("    role: 'replica'\r\n"), "{edited:?}");
        assert!(edited.contains("    role: \"primary\"\r\n"), "{edited:?}");
    }

    #[test]
    fn a_read_only_file_is_left_alone_and_a_symlink_edits_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.yml");
        std::fs::write(&path, FLOW).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let wanted = load(FLOW).with_primary("r2");
        assert_eq!(write_back(&path, &wanted).unwrap_err(), "it is read-only");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), FLOW);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link.yml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        write_back(&link, &wanted).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(super::super::load(&path).unwrap().primary().name, "r2");
    }

    #[test]
    fn write_back_replaces_the_file_atomically_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.yml");
        std::fs::write(&path, FLOW).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let wanted = load(FLOW).with_primary("r2");
        let changes = write_back(&path, &wanted).unwrap();
        assert!(!changes.is_empty());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(super::super::load(&path).unwrap().primary().name, "r2");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
