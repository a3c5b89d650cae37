//! libpq connection strings for applications: one string naming several hosts, which libpq
//! tries in order (or at random with `load_balance_hosts=random`, libpq 16 and later) until one
//! matches `target_session_attrs`. Both the URI form and the keyword/value form. Pure.
//!
//! `target_session_attrs`: `read-write` (libpq 10+), `prefer-standby` (libpq 14+; before 14 the
//! read string has none, so any host may answer). Source: the libpq manual, "Connection
//! Strings" and "Parameter Key Words".

/// What a connection string is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Only the host that accepts writes (`target_session_attrs=read-write`).
    Write,
    /// A standby when one is up, else any host (`prefer-standby`, spread with
    /// `load_balance_hosts=random` where libpq has it).
    Read,
}

/// The server endpoints and login of a multi-host string.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// (address, port) in the order libpq tries them.
    pub hosts: Vec<(&'a str, u16)>,
    /// `dbname`.
    pub dbname: &'a str,
    /// `user`, if any (libpq then uses the OS user).
    pub user: Option<&'a str>,
    /// `connect_timeout` in whole seconds (each host's attempt), if any.
    pub connect_timeout: Option<u64>,
}

/// The parameters a string for `route` carries with a libpq of major `libpq`, after `dbname`
/// and `user`.
pub fn route_params(route: Route, libpq: u32) -> Vec<(&'static str, &'static str)> {
    match route {
        Route::Write => vec![("target_session_attrs", "read-write")],
        Route::Read if libpq >= 16 => vec![
            ("target_session_attrs", "prefer-standby"),
            ("load_balance_hosts", "random"),
        ],
        Route::Read if libpq >= 14 => vec![("target_session_attrs", "prefer-standby")],
        Route::Read => Vec::new(),
    }
}

/// The major version in `psql --version`'s output (`psql (PostgreSQL) 15.18 (Debian …)` → 15).
pub fn parse_psql_version(out: &str) -> Option<u32> {
    let rest = out.split(')').nth(1)?.trim();
    rest.split(['.', ' ', 'b', 'r']).next()?.parse().ok()
}

/// `postgresql://user@h1:p1,h2:p2/dbname?k=v&…` (IPv6 addresses in brackets; names and values
/// percent-encoded where the URI syntax needs it).
pub fn uri(t: &Target<'_>, params: &[(&str, &str)]) -> String {
    let hosts: Vec<String> = t
        .hosts
        .iter()
        .map(|(h, p)| {
            if h.contains(':') {
                format!("[{h}]:{p}")
            } else {
                format!("{}:{p}", encode(h))
            }
        })
        .collect();
    let user = t
        .user
        .map(|u| format!("{}@", encode(u)))
        .unwrap_or_default();
    let mut query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if let Some(s) = t.connect_timeout {
        query.push(format!("connect_timeout={s}"));
    }
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    format!(
        "postgresql://{user}{}/{}{q}",
        hosts.join(","),
        encode(t.dbname)
    )
}

/// `host=h1,h2 port=p1,p2 dbname=… user=… k=v …`, values quoted as libpq wants.
pub fn keywords(t: &Target<'_>, params: &[(&str, &str)]) -> String {
    let hosts: Vec<&str> = t.hosts.iter().map(|(h, _)| *h).collect();
    let ports: Vec<String> = t.hosts.iter().map(|(_, p)| p.to_string()).collect();
    let (hosts, ports) = (hosts.join(","), ports.join(","));
    let timeout = t.connect_timeout.map(|s| s.to_string());
    let mut pairs: Vec<(&str, &str)> =
        vec![("host", &hosts), ("port", &ports), ("dbname", t.dbname)];
    if let Some(u) = t.user {
        pairs.push(("user", u));
    }
    pairs.extend_from_slice(params);
    if let Some(s) = &timeout {
        pairs.push(("connect_timeout", s));
    }
    super::conninfo(&pairs)
}

/// Percent-encodes what is not unreserved in a URI component (RFC 3986).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(hosts: Vec<(&'a str, u16)>) -> Target<'a> {
        Target {
            hosts,
            dbname: "app db",
            user: Some("app"),
            connect_timeout: Some(5),
        }
    }

    #[test]
    fn uri_lists_hosts_in_order_with_the_routes_attributes() {
        let t = target(vec![
            ("10.0.0.1", 5432),
            ("db2.example", 5433),
            ("::1", 5434),
        ]);
        assert_eq!(
            uri(&t, &route_params(Route::Write, 17)),
            "postgresql://app@10.0.0.1:5432,db2.example:5433,[::1]:5434/app%20db?target_session_attrs=read-write&connect_timeout=5"
        );
        assert_eq!(
            uri(&t, &route_params(Route::Read, 16)),
            "postgresql://app@10.0.0.1:5432,db2.example:5433,[::1]:5434/app%20db?target_session_attrs=prefer-standby&load_balance_hosts=random&connect_timeout=5"
        );
    }

    #[test]
    fn read_attributes_follow_the_libpq_version() {
        assert_eq!(
            route_params(Route::Read, 15),
            vec![("target_session_attrs", "prefer-standby")]
        );
        assert!(route_params(Route::Read, 13).is_empty());
        assert_eq!(route_params(Route::Write, 13).len(), 1);
    }

    #[test]
    fn psql_versions_are_read() {
        assert_eq!(
            parse_psql_version("psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(parse_psql_version("psql (PostgreSQL) 18beta1\n"), Some(18));
        assert_eq!(parse_psql_version("nonsense"), None);
    }

    #[test]
    fn keywords_pair_hosts_and_ports() {
        let t = target(vec![("10.0.0.1", 5432), ("10.0.0.2", 5433)]);
        assert_eq!(
            keywords(&t, &route_params(Route::Write, 17)),
            "host=10.0.0.1,10.0.0.2 port=5432,5433 dbname='app db' user=app target_session_attrs=read-write connect_timeout=5"
        );
    }
}
