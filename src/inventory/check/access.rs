//! `access:`: the transport and the ssh settings shared by every host (login user, port, and
//! files on this machine). Per-host ssh destinations are checked with the hosts. Like every
//! checker, it judges values only: no YAML reading, no I/O, no secrets.

use std::path::Path;

use serde_saphyr::Spanned;

use super::{check_local_path, check_os_user, check_port, Checker};
use crate::inventory::model::{HostKeyPolicy, SshSettings, TransportKind};
use crate::inventory::raw::RawAccess;

/// Checks `access:`; `os_user` is the default ssh login, `inventory` the file (relative paths
/// start from its directory).
pub(super) fn check(
    c: &mut Checker,
    raw: Option<&Spanned<RawAccess>>,
    os_user: &str,
    inventory: &Path,
) -> (TransportKind, SshSettings) {
    let transport = raw
        .and_then(|a| a.value.transport.as_ref().map(|t| t.value))
        .unwrap_or(TransportKind::Ssh);
    let raw_ssh = raw.and_then(|a| a.value.ssh.as_ref());
    let user = raw_ssh.and_then(|s| s.user.as_ref());
    if let Some(u) = user {
        check_os_user(c, u);
    }
    let port = raw_ssh.and_then(|s| s.port.as_ref());
    if let Some(p) = port {
        check_port(c, p);
    }
    let mut local_path =
        |f: Option<&Spanned<String>>| f.and_then(|f| check_local_path(c, f, inventory));
    let ssh = SshSettings {
        user: user
            .map(|u| u.value.clone())
            .unwrap_or_else(|| os_user.to_string()),
        port: port.map(|p| p.value).unwrap_or(22),
        identity_file: local_path(raw_ssh.and_then(|s| s.identity_file.as_ref())),
        known_hosts_file: local_path(raw_ssh.and_then(|s| s.known_hosts_file.as_ref())),
        config_file: local_path(raw_ssh.and_then(|s| s.config_file.as_ref())),
        host_keys: raw_ssh
            .and_then(|s| s.host_keys)
            .unwrap_or(HostKeyPolicy::Strict),
    };
    (transport, ssh)
}
