//! pgrepl: set up and run PostgreSQL streaming replication from one inventory file.
//!
//! `run` parses the command line, builds the one `Ui`, starts tokio, dispatches to an
//! operation under `ops/`, and renders any error exactly once with its exit code.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod cli;
pub mod context;
pub mod db;
pub mod error;
pub mod health;
pub mod inventory;
pub mod lock;
pub mod ops;
pub mod pg;
pub mod render;
pub mod report;
pub mod steps;
pub mod topology;
pub mod transport;
pub mod ui;
pub mod wait;

use clap::Parser;

use crate::error::exit;

/// Runs pgrepl with the process's arguments; returns the exit code.
pub fn run() -> u8 {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    let ui = ui::Ui::new(ui::UiOptions {
        format: cli.format(),
        verbose: cli.verbose,
        quiet: cli.quiet,
        yes: cli.yes,
        color: cli.color(),
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(4)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ui.error(&format!("cannot start the runtime: {e}"));
            return exit::FAILED;
        }
    };
    let result = rt.block_on(async {
        let ctx = ops::Context::new(
            ops::RunOptions {
                inventory: cli.inventory.as_deref(),
                templates: cli.templates.as_deref(),
                accept_new_host_keys: cli.accept_new_host_keys,
            },
            &ui,
        )?;
        let r = tokio::select! {
            r = dispatch(&cli, &ctx) => r,
            _ = interrupted() => Err(error::Error::Interrupted),
        };
        if r.is_err() {
            // A cut-short clone leaves no slot behind; its pg_basebackup was stopped when its
            // connection closed. A second Ctrl-C abandons the cleanup.
            ui.finish_progress();
            tokio::select! {
                _ = ctx.undo() => {},
                _ = interrupted() => {},
            }
        }
        ctx.release_locks().await;
        r
    });
    if matches!(result, Err(error::Error::Interrupted)) {
        let _ = console::Term::stderr().show_cursor();
    }
    // Close ssh masters and finish child processes promptly.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(code) => code,
        Err(e) => {
            ui.error(&e.to_string());
            e.code()
        }
    }
}

/// Builds the run's context and hands the subcommand's options to its operation.
async fn dispatch(cli: &cli::Cli, ctx: &ops::Context<'_>) -> Result<u8, error::Error> {
    let ui = ctx.ui;
    if ui.format() == ui::Format::Prometheus && !matches!(cli.command, cli::Command::Status(_)) {
        return Err(error::Error::Other(
            "--format prometheus is for status only".into(),
        ));
    }
    match &cli.command {
        cli::Command::Check => ops::check::run(ctx).await,
        cli::Command::Unlock => ops::unlock::run(ctx).await,
        cli::Command::Init => ops::init::run(ctx).await,
        cli::Command::Render(a) => ops::render::run(
            ctx,
            ops::render::Options {
                out: a.out.clone(),
                host: a.host.clone(),
            },
        )
        .map_err(error::Error::from),
        cli::Command::Status(a) => {
            let size = |v: &Option<String>, flag: &str| -> Result<Option<u64>, error::Error> {
                v.as_deref()
                    .map(|s| {
                        pg::parse_size(s).ok_or_else(|| {
                            error::Error::Other(format!(
                                "{flag}: {s:?} is not a size (use bytes or 16MB-style)"
                            ))
                        })
                    })
                    .transpose()
            };
            let opts = ops::status::Options {
                wait: a.wait.map(std::time::Duration::from_secs),
                watch: a.watch,
                interval: std::time::Duration::from_secs_f64(a.interval.clamp(0.2, 3600.0)),
                host_timeout: a
                    .host_timeout
                    .map(|s| std::time::Duration::from_secs_f64(s.clamp(0.1, 3600.0))),
                lag_warning_bytes: size(&a.lag_warning_bytes, "--lag-warning-bytes")?,
                lag_critical_bytes: size(&a.lag_critical_bytes, "--lag-critical-bytes")?,
                lag_warning_seconds: a.lag_warning_seconds,
                lag_critical_seconds: a.lag_critical_seconds,
            };
            ops::status::run(ctx, opts).await
        }
        cli::Command::Promote(a) => {
            ops::promote::run(
                ctx,
                ops::promote::Options {
                    host: a.host.clone(),
                    force: a.force,
                    allow_data_loss: a.allow_data_loss,
                },
            )
            .await
        }
        cli::Command::Switchover(a) => {
            let to = a
                .host
                .clone()
                .or(a.to.clone())
                .unwrap_or_else(|| "auto".into());
            ops::switchover::run(
                ctx,
                ops::switchover::Options {
                    to,
                    dry_run: a.dry_run,
                },
            )
            .await
        }
        cli::Command::Rebuild(a) => {
            let method = match a.method {
                cli::MethodArg::Auto => ops::rebuild::Method::Auto,
                cli::MethodArg::Rewind => ops::rebuild::Method::Rewind,
                cli::MethodArg::Clone => ops::rebuild::Method::Clone,
            };
            ops::rebuild::run(
                ctx,
                ops::rebuild::Options {
                    host: a.host.clone(),
                    method,
                    keep_old: a.keep_old,
                },
            )
            .await
        }
    }
}

async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
}
