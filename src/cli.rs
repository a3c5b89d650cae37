//! The command line (clap only): global flags and one Args struct per subcommand, translated
//! into an [`Operation`] carrying that command's `ops::*::Options`. Value parsers turn sizes and
//! seconds into typed values, so a bad value is a usage error (exit 2, clap's own message), like
//! a flag that does not fit the command. Nothing here talks to a host or reads the inventory.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

mod tls;
mod usage;
pub use tls::{TlsCommand, TlsRenewArgs};
pub use usage::usage_document;

use crate::ops::operation::Operation;
use crate::ops::{destroy, dsn, history, promote, rebuild, render, slot, status, switchover};
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
    #[arg(short, long, global = true, env = "PGREPL_YES", value_parser = clap::builder::BoolishValueParser::new())]
    pub yes: bool,

    /// More detail on stderr: -v steps and timings, -vv every remote command and SQL statement,
    /// -vvv dependencies' logs too (PGREPL_LOG, a tracing filter, replaces the level).
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

    /// Leave the inventory file alone after promote, switchover and rebuild (pgrepl then prints
    /// the edit to make instead of updating role: and upstream: itself).
    #[arg(long, global = true)]
    pub no_write_inventory: bool,

    /// Mutating commands (init, promote, rebuild, switchover, destroy, unlock, slot drop): run
    /// every check and print the plan (text or JSON), changing nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// The subcommand to run, with its own arguments.
    #[command(subcommand)]
    pub command: Command,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Tables and sentences for people.
    Text,
    /// One JSON document on stdout, for scripts.
    Json,
    /// Prometheus text format (status only).
    Prometheus,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// Color when writing to a terminal, unless NO_COLOR is set.
    Auto,
    /// Color even when not writing to a terminal.
    Always,
    /// No color.
    Never,
}

/// The subcommands.
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
    /// Replication slots: `slot drop HOST SLOT` drops one (a stale slot a `status` finding
    /// names), through the inventory's own transport. Asks, or needs --yes.
    #[command(subcommand)]
    Slot(SlotCommand),
    /// TLS certificates: `tls renew` issues new server (and client) certificates on every host
    /// and reloads each server (no replica loses its stream); `--ca` first replaces the cluster
    /// CA, with a window in which both CAs are trusted.
    #[command(subcommand)]
    Tls(TlsCommand),
    /// What pgrepl did to this cluster, oldest first: each mutating run's command, who ran it
    /// from where, when, how it ended and its figures (timelines, LSNs, write gap), read from
    /// the journal every host keeps. Table, or --format json.
    History {
        /// Only the last N records.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// The connection strings applications use: a libpq multi-host string for writes
    /// (target_session_attrs=read-write) and one for reads (prefer-standby), which stay right
    /// after any failover, and each router's endpoints. Contacts nothing; never a password.
    Dsn(DsnArgs),
    /// Print the shell completion script for SHELL on stdout (needs no inventory); e.g.
    /// `pgrepl completions bash > /etc/bash_completion.d/pgrepl`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (pgrepl.1 and one per command, pgrepl-status.1, ...) into DIR, or
    /// print pgrepl.1 on stdout without --out (needs no inventory).
    Man {
        /// The directory to write the pages into (e.g. /usr/local/share/man/man1).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Tear the cluster down: stop every server of the inventory and remove its data
    /// directory and every file pgrepl put beside it. Refuses data of another cluster.
    /// Asks, or needs --yes.
    Destroy(DestroyArgs),
}

/// `pgrepl dsn`.
#[derive(Debug, clap::Args)]
pub struct DsnArgs {
    /// The database (default: the inventory's first databases[] entry, else postgres).
    #[arg(long, value_name = "NAME")]
    pub dbname: Option<String>,
    /// The user (default: the inventory's first roles[] entry, else none).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The clients' libpq major version (default: this machine's psql, else the cluster's): 16
    /// or later adds load_balance_hosts=random to the read string, 14 or later target_session_attrs.
    #[arg(long, value_name = "MAJOR", value_parser = clap::value_parser!(u32).range(10..=99))]
    pub libpq_version: Option<u32>,
}

/// `pgrepl destroy`.
#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    /// Keep each host's server log (<data_dir>.log).
    #[arg(long)]
    pub keep_logs: bool,
}

/// `pgrepl slot`.
#[derive(Debug, Subcommand)]
pub enum SlotCommand {
    /// Drop one replication slot on one host. Refuses a slot in use (an active WAL sender, or
    /// the slot of a replica that follows that host) unless --force; a slot that is not there
    /// is nothing to do.
    Drop(SlotDropArgs),
}

/// `pgrepl slot drop`.
#[derive(Debug, clap::Args)]
pub struct SlotDropArgs {
    /// The host the slot is on.
    pub host: String,
    /// The slot's name.
    pub slot: String,
    /// Drop it even when in use: end the WAL sender using it first (its replica then stops
    /// streaming until it has a slot again: `pgrepl rebuild` or `init`).
    #[arg(long)]
    pub force: bool,
}

/// `pgrepl switchover`: the candidate, as a positional or `--to`.
#[derive(Debug, clap::Args)]
pub struct SwitchoverArgs {
    /// The replica to make primary (or use --to auto).
    #[arg(required_unless_present = "to", conflicts_with = "to")]
    pub host: Option<String>,
    /// A replica, or `auto`: the most caught-up replica streaming from the primary.
    #[arg(long, value_name = "HOST|auto")]
    pub to: Option<String>,
}

/// `pgrepl promote`.
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The replica to promote.
    pub host: String,
    /// Stop a running primary (and prove it down) before promoting, instead of refusing.
    #[arg(long)]
    pub force: bool,
    /// Promote even if another reachable replica has more WAL, or (with synchronous
    /// replication) HOST cannot be proven to hold every acknowledged commit.
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Promote a delayed replica (hosts[].apply_delay): it replays what it holds back first.
    #[arg(long)]
    pub allow_delayed: bool,
}

/// `pgrepl rebuild`.
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

/// `rebuild --method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// pg_rewind when its preconditions hold, else (or if it fails) a fresh clone.
    Auto,
    /// pg_rewind only: refused when its preconditions do not hold, no fallback.
    Rewind,
    /// A fresh clone with pg_basebackup, even when pg_rewind is possible.
    Clone,
}

/// `pgrepl status`: deadlines, polling and thresholds.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Poll until the cluster is healthy, for at most SECONDS; then fail with the findings left.
    #[arg(long, value_name = "SECONDS", conflicts_with = "watch", value_parser = whole_seconds)]
    pub wait: Option<Duration>,
    /// Refresh the table in place (terminal only) every --interval seconds, until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between refreshes of --watch and polls of --wait (at least 0.2, at most 3600).
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = interval_seconds)]
    pub interval: Duration,
    /// Deadline for each host's probe (default: the inventory's timeouts.status, 5).
    #[arg(long, value_name = "SECONDS", value_parser = host_timeout_seconds)]
    pub host_timeout: Option<Duration>,
    /// Replica lag that is a warning (bytes or 16MB-style; default: inventory or 16MB).
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub lag_warning_bytes: Option<u64>,
    /// Replica lag that is critical (default: inventory or 1GB).
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub lag_critical_bytes: Option<u64>,
    /// Replay lag in seconds that is a warning (default: inventory or 30).
    #[arg(long, value_name = "SECONDS", value_parser = finite_seconds)]
    pub lag_warning_seconds: Option<f64>,
    /// Replay lag in seconds that is critical (default: inventory or 300).
    #[arg(long, value_name = "SECONDS", value_parser = finite_seconds)]
    pub lag_critical_seconds: Option<f64>,
}

/// `pgrepl render`.
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
    /// Parses the process's arguments. Every usage error, including a combination of flags clap
    /// cannot express (`--format prometheus` with a command other than `status`), is a
    /// `clap::Error`: printed by clap, exit code 2 (`--help` and `--version` exit 0).
    pub fn parse_args() -> Result<Cli, clap::Error> {
        Cli::parse_args_from(std::env::args_os())
    }

    /// [`Cli::parse_args`] over the given arguments (the first is the program name).
    pub fn parse_args_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args)?;
        cli.check_combinations()?;
        Ok(cli)
    }

    fn check_combinations(&self) -> Result<(), clap::Error> {
        if self.format == FormatArg::Prometheus && !matches!(self.command, Command::Status(_)) {
            let mut cmd = Cli::command();
            return Err(cmd.error(
                ErrorKind::ArgumentConflict,
                format!(
                    "--format prometheus is for `status` only; `{}` prints text or json",
                    self.operation().name()
                ),
            ));
        }
        Ok(())
    }

    /// The operation asked for, with its options as plain values.
    pub fn operation(&self) -> Operation {
        match &self.command {
            Command::Check => Operation::Check,
            Command::Init => Operation::Init,
            Command::Unlock => Operation::Unlock,
            Command::History { limit } => Operation::History(history::Options { limit: *limit }),
            Command::Completions { .. } | Command::Man { .. } => {
                unreachable!("documentation commands run before any operation (lib::run)")
            }
            Command::Dsn(a) => Operation::Dsn(dsn::Options {
                dbname: a.dbname.clone(),
                user: a.user.clone(),
                libpq: a.libpq_version,
            }),
            Command::Destroy(a) => Operation::Destroy(destroy::Options {
                keep_logs: a.keep_logs,
                dry_run: self.dry_run,
            }),
            Command::Tls(TlsCommand::Renew(a)) => Operation::TlsRenew(crate::ops::tls::Options {
                ca: a.ca,
                host: a.host.clone(),
            }),
            Command::Slot(SlotCommand::Drop(a)) => Operation::SlotDrop(slot::Options {
                host: a.host.clone(),
                slot: a.slot.clone(),
                force: a.force,
            }),
            Command::Render(a) => Operation::Render(render::Options {
                out: a.out.clone(),
                host: a.host.clone(),
            }),
            Command::Status(a) => Operation::Status(status::Options {
                wait: a.wait,
                watch: a.watch,
                interval: a.interval,
                host_timeout: a.host_timeout,
                lag_warning_bytes: a.lag_warning_bytes,
                lag_critical_bytes: a.lag_critical_bytes,
                lag_warning_seconds: a.lag_warning_seconds,
                lag_critical_seconds: a.lag_critical_seconds,
            }),
            Command::Promote(a) => Operation::Promote(promote::Options {
                host: a.host.clone(),
                force: a.force,
                allow_data_loss: a.allow_data_loss,
                allow_delayed: a.allow_delayed,
            }),
            Command::Rebuild(a) => Operation::Rebuild(rebuild::Options {
                host: a.host.clone(),
                method: a.method.into(),
                keep_old: a.keep_old,
            }),
            // clap requires one of the two (and not both).
            Command::Switchover(a) => Operation::Switchover(switchover::Options {
                to: a
                    .host
                    .clone()
                    .or(a.to.clone())
                    .unwrap_or_else(|| "auto".into()),
                dry_run: self.dry_run,
            }),
        }
    }

    /// The output format decided by `--format`.
    pub fn format(&self) -> Format {
        match self.format {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Prometheus => Format::Prometheus,
        }
    }

    /// The color policy decided by `--color`.
    pub fn color(&self) -> ColorChoice {
        match self.color {
            ColorArg::Auto => ColorChoice::Auto,
            ColorArg::Always => ColorChoice::Always,
            ColorArg::Never => ColorChoice::Never,
        }
    }
}

impl From<MethodArg> for rebuild::Method {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Auto => rebuild::Method::Auto,
            MethodArg::Rewind => rebuild::Method::Rewind,
            MethodArg::Clone => rebuild::Method::Clone,
        }
    }
}

/// `--lag-*-bytes`: bytes or a postgresql.conf-style size.
fn size(s: &str) -> Result<u64, String> {
    crate::pg::parse_size(s)
        .ok_or_else(|| "not a size: use bytes or 16MB-style (512kB, 16MB, 1GB, 2TB)".to_string())
}

/// A number of seconds: not negative, not NaN (`inf` is a number; callers clamp or refuse it).
fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| "not a number of seconds (e.g. 5 or 0.5)".to_string())?;
    if v.is_nan() || v < 0.0 {
        return Err("not a number of seconds: must be 0 or more".into());
    }
    Ok(v)
}

/// `--lag-*-seconds`: a finite, non-negative number of seconds.
fn finite_seconds(s: &str) -> Result<f64, String> {
    let v = seconds(s)?;
    if !v.is_finite() {
        return Err("must be a finite number of seconds".into());
    }
    Ok(v)
}

/// `--interval`: seconds, clamped to 0.2..=3600.
fn interval_seconds(s: &str) -> Result<Duration, String> {
    Ok(Duration::from_secs_f64(seconds(s)?.clamp(0.2, 3600.0)))
}

/// `--host-timeout`: seconds, clamped to 0.1..=3600.
fn host_timeout_seconds(s: &str) -> Result<Duration, String> {
    Ok(Duration::from_secs_f64(seconds(s)?.clamp(0.1, 3600.0)))
}

/// `--wait`: a whole number of seconds.
fn whole_seconds(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| "not a whole number of seconds (e.g. 60)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::parse_args_from(std::iter::once("pgrepl").chain(args.iter().copied()))
    }

    fn status(args: &[&str]) -> status::Options {
        let mut a = vec!["status"];
        a.extend_from_slice(args);
        match parse(&a).expect("parses").operation() {
            Operation::Status(o) => o,
            other => panic!("{other:?}"),
        }
    }

    fn usage_error(args: &[&str]) -> ErrorKind {
        let e = parse(args).expect_err("a usage error");
        assert!(e.use_stderr(), "{args:?} is an error, not help");
        assert_eq!(e.exit_code(), 2, "{args:?}");
        e.kind()
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn status_values_are_typed() {
        let o = status(&[]);
        assert_eq!(o.interval, Duration::from_secs(2));
        assert_eq!(o.wait, None);
        assert_eq!(o.lag_warning_bytes, None);
        let o = status(&[
            "--lag-warning-bytes",
            "16MB",
            "--lag-critical-bytes=4096",
            "--lag-warning-seconds",
            "0",
            "--lag-critical-seconds",
            "2.5",
            "--wait",
            "60",
            "--host-timeout",
            "1.5",
        ]);
        assert_eq!(o.lag_warning_bytes, Some(16 << 20));
        assert_eq!(o.lag_critical_bytes, Some(4096));
        assert_eq!(o.lag_warning_seconds, Some(0.0));
        assert_eq!(o.lag_critical_seconds, Some(2.5));
        assert_eq!(o.wait, Some(Duration::from_secs(60)));
        assert_eq!(o.host_timeout, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn durations_are_clamped_as_before() {
        assert_eq!(
            status(&["--interval", "0"]).interval,
            Duration::from_millis(200)
        );
        assert_eq!(
            status(&["--interval", "1e9"]).interval,
            Duration::from_secs(3600)
        );
        assert_eq!(
            status(&["--interval", "inf"]).interval,
            Duration::from_secs(3600)
        );
        assert_eq!(
            status(&["--host-timeout", "0.001"]).host_timeout,
            Some(Duration::from_millis(100))
        );
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["status", "--lag-warning-bytes", "lots"][..],
            &["status", "--lag-critical-bytes", "1PB"],
            &["status", "--lag-warning-bytes=-1"],
            &["status", "--interval", "soon"],
            &["status", "--interval=-1"],
            &["status", "--interval", "NaN"],
            &["status", "--host-timeout=-0.5"],
            &["status", "--host-timeout", "nan"],
            &["status", "--wait", "1.5"],
            &["status", "--wait=-3"],
            &["status", "--lag-warning-seconds", "inf"],
            &["status", "--lag-critical-seconds=-1"],
            &["status", "--lag-critical-seconds", "NaN"],
        ] {
            assert_eq!(usage_error(args), ErrorKind::ValueValidation, "{args:?}");
        }
        // A negative number after a space is taken for a flag: still a usage error.
        usage_error(&["status", "--interval", "-1"]);
        usage_error(&["rebuild", "h", "--method", "sideways"]);
        usage_error(&["switchover"]);
        usage_error(&["switchover", "a", "--to", "b"]);
        usage_error(&[]);
    }

    #[test]
    fn prometheus_is_for_status_only() {
        for cmd in ["render", "check", "init", "unlock"] {
            assert_eq!(
                usage_error(&["--format", "prometheus", cmd]),
                ErrorKind::ArgumentConflict
            );
        }
        let e = parse(&["render", "--format", "prometheus"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("--format prometheus is for `status` only"),
            "{e}"
        );
        assert!(parse(&["status", "--format", "prometheus"]).is_ok());
    }

    #[test]
    fn help_and_version_are_not_errors() {
        for args in [&["--help"][..], &["--version"], &["status", "--help"]] {
            let e = parse(args).unwrap_err();
            assert!(!e.use_stderr(), "{args:?}");
            assert_eq!(e.exit_code(), 0, "{args:?}");
        }
    }

    #[test]
    fn operations_carry_their_options() {
        let op = |a: &[&str]| parse(a).unwrap().operation();
        match op(&["switchover", "r1"]) {
            Operation::Switchover(o) => assert_eq!((o.to.as_str(), o.dry_run), ("r1", false)),
            other => panic!("{other:?}"),
        }
        match op(&["switchover", "--to", "auto", "--dry-run"]) {
            Operation::Switchover(o) => assert_eq!((o.to.as_str(), o.dry_run), ("auto", true)),
            other => panic!("{other:?}"),
        }
        match op(&["rebuild", "r2", "--method", "clone", "--keep-old"]) {
            Operation::Rebuild(o) => {
                assert_eq!(o.host, "r2");
                assert_eq!(o.method, rebuild::Method::Clone);
                assert!(o.keep_old);
            }
            other => panic!("{other:?}"),
        }
        match op(&["promote", "r1", "--force"]) {
            Operation::Promote(o) => assert!(o.host == "r1" && o.force && !o.allow_data_loss),
            other => panic!("{other:?}"),
        }
        match op(&["render", "--host", "pg2"]) {
            Operation::Render(o) => assert_eq!(o.host.as_deref(), Some("pg2")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(op(&["check"]), Operation::Check));
        assert!(matches!(op(&["unlock"]), Operation::Unlock));
        assert_eq!(op(&["init"]).name(), "init");
    }
}
