//! The rules of `status` for TLS, over what each host's certificate and server said
//! (`steps::tls::observe`): `tls: off` is a notice on every run (`tls_off`: shown, the cluster
//! stays healthy); a server certificate that
//! expires within [`EXPIRY_WARNING_DAYS`] days is a warning and an expired one critical
//! (`tls_cert_expiring`, `tls_cert_expired`); a server presenting another certificate than its
//! file is a warning (`tls_cert_not_loaded`); a server with `ssl` off or a WAL sender without
//! TLS while the inventory has TLS on is a warning (`tls_plain_replication`). Pure.

use crate::inventory::{Inventory, EXPIRY_WARNING_DAYS};

use super::fixes::Fixes;
use super::{Finding, FindingCode, Severity};

/// What `status` read about one host's TLS.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TlsState {
    /// The host's name.
    pub host: String,
    /// When the server certificate it presents expires (read with `openssl s_client` on the
    /// host; the file `<data_dir>.tls/server.crt` when that cannot be done), RFC 3339 UTC; null
    /// when there is none or it could not be read.
    pub not_after: Option<String>,
    /// Days until then (negative: expired), to one decimal.
    pub days_left: Option<f64>,
    /// Seconds until then (negative: expired).
    pub seconds_left: Option<i64>,
    /// The server presents the certificate of its file (false: its TLS settings did not
    /// reload); null when it could not be told (no `openssl` on the host, server down).
    pub loaded: Option<bool>,
    /// The names it covers (DNS names and IP addresses).
    pub names: Vec<String>,
    /// The server's `ssl` setting is on; null when the server could not be asked.
    pub ssl: Option<bool>,
    /// Receivers its WAL senders stream to without TLS (application names).
    pub plain_senders: Vec<String>,
    /// Why something could not be read.
    pub error: Option<String>,
}

/// The TLS findings: cluster-level `tls_off`, then per host in inventory order.
pub fn tls(inv: &Inventory, states: &[TlsState]) -> Vec<Finding> {
    let fix = Fixes::new(inv);
    if !inv.tls.is_on() {
        return vec![Finding {
            severity: Severity::Notice,
            code: FindingCode::TlsOff,
            host: None,
            message: "TLS is off (tls: off): WAL, base backups and pg_rewind's reads cross the network in clear text".into(),
            fix: format!("remove `tls: off` from {}, then {}", inv.file.display(), fix.init()),
        }];
    }
    let mut out = Vec::new();
    for s in states {
        if let Some(days) = s.days_left {
            let when = s.not_after.as_deref().unwrap_or("?");
            if days <= 0.0 {
                out.push(f(Severity::Critical, FindingCode::TlsCertExpired, s, format!("{}'s server certificate expired at {when}: replicas cannot reconnect to it", s.host), fix.tls_renew()));
            } else if days < EXPIRY_WARNING_DAYS as f64 {
                out.push(f(
                    Severity::Warning,
                    FindingCode::TlsCertExpiring,
                    s,
                    format!(
                        "{}'s server certificate expires in {days:.0} day(s), at {when}",
                        s.host
                    ),
                    fix.tls_renew(),
                ));
            }
        }
        if s.loaded == Some(false) {
            let log = inv
                .host(&s.host)
                .map(|h| fix.on(h, &format!("grep -i ssl {}", h.log_file)));
            let fix_text = match log {
                Some(l) => format!(
                    "read why: {l}; correct that setting, then {}",
                    fix.tls_renew()
                ),
                None => fix.tls_renew(),
            };
            out.push(f(Severity::Warning, FindingCode::TlsCertNotLoaded, s, format!("{} presents another certificate than its server.crt: its TLS settings did not reload (its log says why)", s.host), fix_text));
        }
        if s.ssl == Some(false) || !s.plain_senders.is_empty() {
            let what = if s.ssl == Some(false) {
                "its server has ssl off".to_string()
            } else {
                format!(
                    "it streams WAL without TLS to {}",
                    s.plain_senders.join(", ")
                )
            };
            out.push(f(
                Severity::Warning,
                FindingCode::TlsPlainReplication,
                s,
                format!("TLS is on in the inventory, but on {} {what}", s.host),
                fix.init(),
            ));
        }
    }
    out
}

fn f(severity: Severity, code: FindingCode, s: &TlsState, message: String, fix: String) -> Finding {
    Finding {
        severity,
        code,
        host: Some(s.host.clone()),
        message,
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(days: Option<f64>, ssl: Option<bool>) -> TlsState {
        TlsState {
            host: "pg1".into(),
            not_after: days.map(|_| "2027-01-01T00:00:00Z".into()),
            days_left: days,
            seconds_left: days.map(|d| (d * 86_400.0) as i64),
            loaded: Some(true),
            names: vec![],
            ssl,
            plain_senders: vec![],
            error: None,
        }
    }

    fn sample() -> Inventory {
        crate::inventory::parse(
            "cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - {name: pg1, address: 10.0.0.1, role: primary}\n",
            std::path::Path::new("i.yml"),
        )
        .unwrap()
    }

    #[test]
    fn expiry_thresholds() {
        let inv = sample();
        let codes = |s: TlsState| {
            tls(&inv, &[s])
                .into_iter()
                .map(|f| (f.code, f.severity))
                .collect::<Vec<_>>()
        };
        assert_eq!(codes(state(Some(200.0), Some(true))), vec![]);
        assert_eq!(
            codes(state(Some(29.0), Some(true))),
            vec![(FindingCode::TlsCertExpiring, Severity::Warning)]
        );
        assert_eq!(
            codes(state(Some(-1.0), Some(true))),
            vec![(FindingCode::TlsCertExpired, Severity::Critical)]
        );
        assert_eq!(
            codes(state(None, Some(false))),
            vec![(FindingCode::TlsPlainReplication, Severity::Warning)]
        );
    }

    #[test]
    fn tls_off_is_one_cluster_warning() {
        let mut inv = sample();
        inv.tls = crate::inventory::Tls::Off;
        let f = tls(&inv, &[state(Some(-5.0), Some(false))]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, FindingCode::TlsOff);
        assert_eq!(f[0].host, None);
    }
}
