//! What `init` needs of a host's file system and ports beyond the data directory itself, read
//! in one fixed command (paths and the port as positional parameters): the directory that
//! holds the data directory (pgrepl keeps `<data_dir>.pgpass`, `.log`, `.pgrepl-lock` and clone
//! staging there), the data directory's own write permission, the socket directory (or the
//! nearest existing directory it would be created in), the TCP listeners on the port
//! (`/proc/net/tcp*`) and a live lock on the port's Unix socket. Argv, parser and the pure
//! judgement; no I/O here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::transport::Cmd;

const PROBE: &str = r#"d=$1; s=$2; port=$3
p=$(dirname -- "$d")
if [ ! -d "$p" ]; then echo "parent absent"
elif [ -w "$p" ]; then echo "parent writable"
else echo "parent unwritable"; fi
if [ -d "$d" ]; then
  if [ -w "$d" ]; then echo "datadir writable"; else echo "datadir unwritable"; fi
fi
if [ -d "$s" ]; then
  if [ -w "$s" ]; then echo "socket writable"; else echo "socket unwritable $s"; fi
else
  a=$s
  while [ ! -e "$a" ]; do a=$(dirname -- "$a"); done
  if [ -d "$a" ] && [ ! -x "$a" ]; then echo "socket unsearchable $a"
  elif [ -d "$a" ] && [ -w "$a" ]; then echo "socket creatable"; else echo "socket uncreatable $a"; fi
fi
hex=$(printf ':%04X' "$port")
for f in /proc/net/tcp /proc/net/tcp6; do
  [ -r "$f" ] || continue
  awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print "listen", substr($2, 1, length($2) - 5) }' "$f"
done
l="$s/.s.PGSQL.$port.lock"
if [ -f "$l" ]; then
  pid=$(head -n 1 -- "$l")
  case "$pid" in ''|*[!0-9]*) ;; *) if [ -d "/proc/$pid" ]; then echo "socketlock $pid"; fi ;; esac
fi"#;

/// Probes `data_dir`'s parent, `data_dir`, `socket_dir` and `port` on the host.
pub fn probe(data_dir: &str, socket_dir: &str, port: u16) -> Cmd {
    Cmd::new("sh")
        .args(["-c", PROBE, "pgrepl-hostdirs", data_dir, socket_dir])
        .arg(port.to_string())
        .env("LC_ALL", "C")
}

/// What the probe found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostDirs {
    /// The data directory's parent: `writable`, `unwritable` or `absent`.
    pub parent: String,
    /// The data directory exists and the OS user cannot write to it.
    pub data_dir_unwritable: bool,
    /// Why the socket directory cannot be used (`None`: it can): the directory at fault.
    pub socket_problem: Option<(String, String)>,
    /// Addresses with a TCP listener on the port.
    pub listeners: Vec<IpAddr>,
    /// The PID of a live process holding the port's Unix socket lock file.
    pub socket_lock_pid: Option<u32>,
}

/// Parses the probe's output.
pub fn parse(out: &str) -> HostDirs {
    let mut d = HostDirs::default();
    for line in out.lines() {
        let mut w = line.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("parent"), Some(state), _) => d.parent = state.to_string(),
            (Some("datadir"), Some("unwritable"), _) => d.data_dir_unwritable = true,
            (
                Some("socket"),
                Some(state @ ("unwritable" | "uncreatable" | "unsearchable")),
                Some(dir),
            ) => d.socket_problem = Some((state.to_string(), dir.to_string())),
            (Some("listen"), Some(hex), _) => d.listeners.extend(proc_net_addr(hex)),
            (Some("socketlock"), Some(pid), _) => d.socket_lock_pid = pid.parse().ok(),
            _ => {}
        }
    }
    d
}

/// An address as `/proc/net/tcp{,6}` prints it: 8 or 32 hex digits, each 32-bit word in the
/// host's (little-endian) byte order.
pub fn proc_net_addr(hex: &str) -> Option<IpAddr> {
    let words: Option<Vec<u32>> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect();
    let words = words?;
    match (hex.len(), words.as_slice()) {
        (8, [w]) => Some(IpAddr::V4(Ipv4Addr::from(w.swap_bytes()))),
        (32, ws) => {
            let mut b = [0u8; 16];
            for (i, w) in ws.iter().enumerate() {
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// Would a server listening on `address` collide with a listener on `on`? A wildcard listener
/// collides with everything; for an address that is a name, pgrepl cannot tell which IPs the
/// server will bind, so every listener on the port counts.
pub fn collides(address: &str, on: &IpAddr) -> bool {
    let mapped = |ip: &IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(*ip),
        v4 => *v4,
    };
    match address.parse::<IpAddr>() {
        Ok(a) => on.is_unspecified() || a.is_unspecified() || mapped(&a) == mapped(on),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_probe() {
        let out = "parent unwritable\ndatadir writable\nsocket uncreatable /var/run\n\
                   listen 0100007F\nlisten 00000000000000000000000001000000\nsocketlock 42\n";
        let d = parse(out);
        assert_eq!(d.parent, "unwritable");
        assert!(!d.data_dir_unwritable);
        assert_eq!(
            d.socket_problem,
            Some(("uncreatable".into(), "/var/run".into()))
        );
        assert_eq!(
            d.listeners,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(d.socket_lock_pid, Some(42));
    }

    #[test]
    fn collisions() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert!(collides("127.0.0.1", &lo));
        assert!(!collides("127.0.0.2", &lo));
        assert!(collides("127.0.0.2", &any));
        assert!(collides("db1", &lo));
        assert!(collides("::ffff:127.0.0.1", &lo));
    }

    /// The real script under /bin/sh: a writable temp dir, a socket dir to create in it, and a
    /// listener of this test on a port.
    #[test]
    fn probe_script_runs_under_sh() {
        let dir = tempfile::tempdir().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let d = dir.path().join("data");
        let s = dir.path().join("run/sub");
        let c = probe(d.to_str().unwrap(), s.to_str().unwrap(), port);
        let out = std::process::Command::new(&c.argv[0])
            .args(&c.argv[1..])
            .output()
            .unwrap();
        let found = parse(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(found.parent, "writable");
        assert_eq!(found.socket_problem, None);
        assert!(
            found.listeners.contains(&"127.0.0.1".parse().unwrap()),
            "{found:?}"
        );
    }
}
