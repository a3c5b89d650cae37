//! Host names in `pg_hba.conf`. pgrepl writes each host's `address` into the address field of
//! its replication and rewind lines as it is (an IP with a host mask, or a name). For a name,
//! PostgreSQL admits a connection only when the client's IP reverse-resolves to that name (the
//! first name the resolver gives for it, compared without case) and that name forward-resolves
//! to the IP again. So every IP a name resolves to must reverse-resolve to the name itself:
//! `vm` → 127.0.0.1 → `localhost` never matches. This is the lookup script (names as
//! positional parameters) and the pure decision; no I/O here.

use crate::transport::Cmd;

/// For each name: one line `name ip reverse-name` per IP it resolves to (`-` for no reverse
/// name), or `name - -` when it does not resolve.
const LOOKUP: &str = r#"for n do
  ips=$(getent ahosts "$n" | awk '{print $1}' | sort -u)
  if [ -z "$ips" ]; then echo "$n - -"; continue; fi
  for ip in $ips; do
    r=$(getent hosts "$ip" | awk '{print $2; exit}')
    echo "$n $ip ${r:--}"
  done
done"#;

/// Resolves `names` forward and each IP back, on the host the command runs on.
pub fn lookup(names: &[&str]) -> Cmd {
    Cmd::new("sh")
        .args(["-c", LOOKUP, "pgrepl-lookup"])
        .args(names.iter().copied())
        .env("LC_ALL", "C")
}

/// One name whose pg_hba.conf lines would admit nobody: the name and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    /// The inventory address (a name).
    pub name: String,
    /// What the resolver said, e.g. `vm resolves to 127.0.0.1, which reverse-resolves to localhost`.
    pub why: String,
    /// The first IP the name resolves to (for the hint), if any.
    pub ip: Option<String>,
}

/// The names of [`lookup`]'s output that PostgreSQL would not match.
pub fn mismatches(out: &str) -> Vec<Mismatch> {
    let mut found: Vec<Mismatch> = Vec::new();
    for line in out.lines() {
        let mut w = line.split_whitespace();
        let (Some(name), Some(ip), Some(rev)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        if found.iter().any(|m| m.name == name) {
            continue;
        }
        let why = if ip == "-" {
            format!("{name} does not resolve")
        } else if rev == "-" {
            format!("{name} resolves to {ip}, which has no reverse name")
        } else if !rev.eq_ignore_ascii_case(name) {
            format!("{name} resolves to {ip}, which reverse-resolves to {rev}")
        } else {
            continue;
        };
        found.push(Mismatch {
            name: name.to_string(),
            why,
            ip: (ip != "-").then(|| ip.to_string()),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_must_come_back_from_every_ip() {
        let out =
            "vm 127.0.0.1 localhost\nlocalhost 127.0.0.1 localhost\nlocalhost ::1 LOCALHOST\n\
                   db2 10.0.0.2 db2\ndb2 10.0.0.3 other\nnowhere - -\nbare 10.0.0.9 -\n";
        let m = mismatches(out);
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["vm", "db2", "nowhere", "bare"]);
        assert_eq!(
            m[0].why,
            "vm resolves to 127.0.0.1, which reverse-resolves to localhost"
        );
        assert_eq!(m[1].ip.as_deref(), Some("10.0.0.3"));
        assert_eq!(m[2].ip, None);
    }

    /// The real script, on this machine: `localhost` resolves and comes back.
    #[test]
    fn lookup_script_runs_under_sh() {
        let c = lookup(&["localhost"]);
        let out = std::process::Command::new(&c.argv[0])
            .args(&c.argv[1..])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(out.starts_with("localhost "), "{out}");
    }
}
