//! The narrow character sets an inventory's values are held to: pure predicates over one
//! string each. Values that reach a shell, ssh or SQL pass one of these at load time (and are
//! still quoted where they are used). Nothing here knows about positions, defaults or other
//! values: the checkers in `check/` decide what to report.

/// Checks a path on a PostgreSQL host, after placeholders are replaced: absolute, at most 200
/// characters, only `A-Z a-z 0-9 _ . / @ + , : % -`, no `..` segment and no segment starting
/// with `-`, no `{`/`}` left over.
///
/// # Errors
/// The reason, worded to follow `path "<value>" `: e.g. `"is not absolute"`.
pub fn check_remote_path(p: &str) -> Result<(), &'static str> {
    if !p.starts_with('/') {
        return Err("is not absolute");
    }
    if p.len() > 200 {
        return Err("is longer than 200 characters");
    }
    if p.contains('{') || p.contains('}') {
        return Err("has an unknown placeholder");
    }
    if !p
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_./@+,:%-".contains(c))
    {
        return Err(
            "contains a character that is not allowed (spaces, quotes, $, `, ; and the like)",
        );
    }
    if p.split('/').any(|seg| seg == ".." || seg.starts_with('-')) {
        return Err("has a '..' segment or a segment starting with '-'");
    }
    Ok(())
}

/// Whether `s` is an IP literal (v4 or v6) or an RFC 1123 host name: labels of letters, digits
/// and `-`, none empty, none starting or ending with `-`, at most 253 characters in all.
pub fn is_address(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `cluster`: 1-40 of `a-z 0-9 _ -`, starting with a letter.
pub(super) fn is_cluster_name(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 40
        && ch.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `hosts[].name`: 1-63 of `A-Z a-z 0-9 _ . -`, starting with a letter or digit.
pub(super) fn is_host_name(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphanumeric())
        && s.len() <= 63
        && ch.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// An OS account name: 1-32 of `a-z 0-9 _ -`, starting with a letter or `_`.
pub(super) fn is_os_user(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && s.len() <= 32
        && ch.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A role name that needs no quoting in SQL: 1-63 of `a-z 0-9 _`, not starting with a digit.
pub(super) fn is_sql_role(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && s.len() <= 63
        && ch.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// An environment variable name: letters, digits and `_`, not starting with a digit.
pub(super) fn is_env_name(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && ch.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A pg_hba.conf option value, rendered in double quotes: 1-200 of `A-Z a-z 0-9`, space and
/// `_ . : / @ + , % = ~ -` (no quote, backslash, `#` or control character).
pub(super) fn is_hba_option_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.:/@+,%=~-".contains(c))
}

/// A `postgresql.conf` parameter name (extensions' `a.b` included): 1-63 of `a-z 0-9 _ .`.
pub(super) fn is_setting_name(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && s.len() <= 63
        && ch.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

/// An initdb locale name such as `C.UTF-8`: one or more of `A-Z a-z 0-9 _ . @ -`.
pub(super) fn is_locale(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "_.@-".contains(ch))
}

/// A pg_hba.conf database or user field: one or more of `A-Z a-z 0-9 _ . , + @ -` (names,
/// `all`, comma-separated lists, `+group`).
pub(super) fn is_hba_names(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "_.,+@-".contains(ch))
}

/// An IP block in CIDR notation, e.g. `10.0.0.0/24` or `fd00::/8`.
pub(super) fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.parse::<u8>().map(|b| b <= max).unwrap_or(false)
}
