//! The command line (clap only): global flags and one Args struct per subcommand, translated
//! into `ops::*::Options`. Nothing here talks to a host.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::ui::{ColorChoice, Format};

/// Set up and run PostgreSQL streaming replication from one inventory file.
#[derive(Debug, Parser)]
#[command(name = "pgrepl", version, about, max_term_width = 100)]
pub struct Cli {
    /// The inventory file describing the cluster.
    #[arg(
        short,
        long,
        global = true,
        env = "PGREPL_INVENTORY",
        value_name = "FILE"
    )]
    pub inventory: Option<PathBuf>,

    /// Output format of read commands.
    #[arg(long, global = true, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,

    /// Answer yes to confirmations (for scripts; without a terminal, pgrepl refuses instead of asking).
    #[arg(short, long, global = true, env = "PGREPL_YES")]
    pub yes: bool,

    /// More detail on stderr (commands run, timings).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Colors on stderr.
    #[arg(long, global = true, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,

    /// A directory whose templates replace the embedded ones (postgresql.conf.j2, pg_hba.conf.j2, pg_ident.conf.j2).
    #[arg(long, global = true, env = "PGREPL_TEMPLATES", value_name = "DIR")]
    pub templates: Option<PathBuf>,

    /// Trust unknown SSH host keys on first use (never a changed one).
    #[arg(long, global = true)]
    pub accept_new_host_keys: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
    /// Prometheus text format (status only).
    Prometheus,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every host without changing anything: reachable, PostgreSQL installed and of the
    /// inventory's version, data directories in a state init can use.
    Check,
    /// Build the cluster: initdb the primary, create the replication role and slots, clone and
    /// start every replica, verify streaming. Re-running on a healthy cluster changes nothing.
    Init,
    /// Render postgresql.conf, pg_hba.conf and pg_ident.conf for every host, for review.
    Render(RenderArgs),
    /// The live state of every host at once: roles, timelines, LSNs, lag in bytes and seconds,
    /// slots and retained WAL, and findings with the command that fixes each. Exit code 0
    /// healthy, 10 warning, 11 critical.
    Status(StatusArgs),
    /// Failover: promote a replica to primary, fencing the old primary so there are never two;
    /// the other replicas follow the new primary. Refuses while the primary runs (use --force).
    Promote(PromoteArgs),
    /// Bring a host back as a replica of the live primary: pg_rewind when possible, a fresh
    /// clone otherwise. Never touches a writable node. Destructive: asks, or needs --yes.
    Rebuild(RebuildArgs),
    /// Planned change of primary with no lost writes: checks everything first, stops the primary
    /// cleanly, waits until the replica has its last WAL, promotes it, and makes the old primary
    /// its standby. Exit 8: failed and rolled back; 7: incomplete (the next command is printed).
    Switchover(SwitchoverArgs),
    /// Clear a cluster lock left by a pgrepl run that no longer runs (init, promote, rebuild and
    /// switchover take the lock; exit 6 names its holder). Asks, or needs --yes.
    Unlock,
}

#[derive(Debug, clap::Args)]
pub struct SwitchoverArgs {
    /// The replica to make primary (or use --to auto).
    #[arg(required_unless_present = "to", conflicts_with = "to")]
    pub host: Option<String>,
    /// A replica, or `auto`: the most caught-up replica streaming from the primary.
    #[arg(long, value_name = "HOST|auto")]
    pub to: Option<String>,
    /// Run every check and print the plan (each step and command), changing nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The replica to promote.
    pub host: String,
    /// Stop a running primary (and prove it down) before promoting, instead of refusing.
    #[arg(long)]
    pub force: bool,
    /// Promote even if another reachable replica has more WAL (those transactions are lost).
    #[arg(long)]
    pub allow_data_loss: bool,
}

#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    /// The host to rebuild as a replica.
    pub host: String,
    /// auto: pg_rewind when its preconditions hold, else (or if it fails) a fresh clone.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,
    /// Keep the replaced data directory (<data_dir>.pgrepl-old) after a clone.
    #[arg(long)]
    pub keep_old: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MethodArg {
    Auto,
    Rewind,
    Clone,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Poll until the cluster is healthy, for at most SECONDS; then fail with the findings left.
    #[arg(long, value_name = "SECONDS", conflicts_with = "watch")]
    pub wait: Option<u64>,
    /// Refresh the table in place (terminal only) every --interval seconds, until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between refreshes of --watch and polls of --wait.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub interval: f64,
    /// Deadline for each host's probe (default: the inventory's timeouts.status, 5).
    #[arg(long, value_name = "SECONDS")]
    pub host_timeout: Option<f64>,
    /// Replica lag that is a warning (bytes or 16MB-style; default: inventory or 16MB).
    #[arg(long, value_name = "SIZE")]
    pub lag_warning_bytes: Option<String>,
    /// Replica lag that is critical (default: inventory or 1GB).
    #[arg(long, value_name = "SIZE")]
    pub lag_critical_bytes: Option<String>,
    /// Replay lag in seconds that is a warning (default: inventory or 30).
    #[arg(long, value_name = "SECONDS")]
    pub lag_warning_seconds: Option<f64>,
    /// Replay lag in seconds that is critical (default: inventory or 300).
    #[arg(long, value_name = "SECONDS")]
    pub lag_critical_seconds: Option<f64>,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Write the files to DIR/<host>/ instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only this host.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

impl Cli {
    pub fn format(&self) -> Format {
        match self.format {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Prometheus => Format::Prometheus,
        }
    }
    pub fn color(&self) -> ColorChoice {
        match self.color {
            ColorArg::Auto => ColorChoice::Auto,
            ColorArg::Always => ColorChoice::Always,
            ColorArg::Never => ColorChoice::Never,
        }
    }
}
