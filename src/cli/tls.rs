//! `pgrepl tls …`: its subcommands and their flags (clap only).

use clap::Subcommand;

/// `pgrepl tls`.
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// New certificates on every host (or --host), each server reloaded and verified with a TLS
    /// login; with --ca, a new cluster CA first (both trusted while certificates change).
    Renew(TlsRenewArgs),
}

/// `pgrepl tls renew`.
#[derive(Debug, clap::Args)]
pub struct TlsRenewArgs {
    /// Replace the cluster CA first (pgrepl's own CA only); the previous one stays trusted
    /// until it expires.
    #[arg(long)]
    pub ca: bool,
    /// Only this host's certificates.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}
