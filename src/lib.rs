//! pgrepl: set up and run PostgreSQL streaming replication from one inventory file.
//!
//! `run` parses the command line (`cli`: usage errors exit 2), builds the one `Ui` and the
//! logging behind `-v` (`Ui::init_logging`), starts tokio, hands the `Operation` to its function
//! under `ops/`, and renders any error exactly once with its exit code.
#![deny(clippy::print_stdout, clippy::print_stderr)]
#![warn(missing_docs)]

pub mod cli;
pub mod context;
pub mod db;
pub mod docs;
pub mod error;
pub mod health;
pub mod inventory;
pub mod lock;
pub mod ops;
pub mod pg;
pub mod pki;
pub mod render;
pub mod report;
pub mod router;
pub mod schemas;
pub mod steps;
pub mod topology;
pub mod transport;
pub mod ui;
pub mod wait;

use std::time::{Duration, Instant};

use crate::error::exit;
use crate::ops::operation::Operation;

/// Runs pgrepl with the process's arguments; returns the exit code.
pub fn run() -> u8 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match cli::Cli::parse_args_from(&args) {
        Ok(c) => c,
        Err(e) => return usage(&e, &args),
    };
    let ui = ui::Ui::new(ui::UiOptions {
        format: cli.format(),
        verbose: cli.verbose,
        quiet: cli.quiet,
        yes: cli.yes,
        color: cli.color(),
    });
    ui.init_logging();
    // The documentation commands need no inventory and no runtime.
    match &cli.command {
        cli::Command::Completions { shell } => {
            ui.data(&docs::completions(*shell));
            return exit::OK;
        }
        cli::Command::Man { out } => return man(&ui, out.as_deref()),
        _ => {}
    }
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
    let result = rt.block_on(execute(&cli, &ui));
    if matches!(result, Err(error::Error::Interrupted)) && ui.stderr_is_terminal() {
        let _ = console::Term::stderr().show_cursor();
    }
    // Close ssh masters and finish child processes promptly.
    rt.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(code) => code,
        Err(e) => report(&ui, &e),
    }
}

/// Loads the inventory, runs the operation (cut short by SIGINT/SIGTERM), undoes what an
/// unfinished run leaves behind, and releases the cluster lock.
async fn execute(cli: &cli::Cli, ui: &ui::Ui) -> Result<u8, error::Error> {
    let op = cli.operation();
    let name = op.name();
    let read_only = op.is_read_only();
    let journaled = op.is_journaled() && !cli.dry_run;
    let t0 = Instant::now();
    let started = std::time::SystemTime::now();
    let ctx = ops::Context::new(
        ops::RunOptions {
            inventory: cli.inventory.as_deref(),
            templates: cli.templates.as_deref(),
            accept_new_host_keys: cli.accept_new_host_keys,
            write_inventory: !cli.no_write_inventory,
            dry_run: cli.dry_run,
        },
        ui,
    )?;
    // A signal while a confirmation prompt blocks this task: end here, nothing was changed.
    let at_prompt = tokio::spawn(async {
        loop {
            interrupted().await;
            if ui::AT_PROMPT.load(std::sync::atomic::Ordering::SeqCst) {
                let term = console::Term::stderr();
                let _ = term.show_cursor();
                let _ = term.write_line(
                    "\nerror: interrupted at the confirmation prompt; what it asked about was not done",
                );
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    });
    let r = tokio::select! {
        r = dispatch(op, &ctx) => r,
        _ = interrupted() => Err(match ctx.take_interrupted_after() {
            Some(after) => error::Error::InterruptedAfter(after),
            None => error::Error::Interrupted,
        }),
    };
    if r.is_err() {
        // A cut-short clone leaves no slot behind; its pg_basebackup was stopped when its
        // connection closed. A second Ctrl-C abandons the cleanup.
        ui.finish_progress();
        tokio::select! {
            _ = steps::undo::undo(&ctx) => {},
            _ = interrupted() => {},
        }
    }
    if journaled {
        // What this run did, in the cluster's history (not a refusal: nothing changed).
        if let Some(rec) = steps::history::record(&ctx, name, started, t0.elapsed(), &r) {
            steps::history::append(&ctx, &rec).await;
        }
    }
    at_prompt.abort();
    ctx.release_locks().await;
    ctx.close_all().await;
    if read_only && matches!(r, Err(error::Error::Interrupted)) {
        // Nothing to finish or undo: no "re-run the same command" advice.
        return Ok(error::exit::INTERRUPTED);
    }
    tracing::info!(
        "{name}: {} after {:.1}s",
        if r.is_ok() { "finished" } else { "failed" },
        t0.elapsed().as_secs_f64()
    );
    r
}

/// Hands the operation's options to its function under `ops/`.
async fn dispatch(op: Operation, ctx: &ops::Context<'_>) -> Result<u8, error::Error> {
    match op {
        Operation::Check => ops::check::run(ctx).await,
        Operation::Init => ops::init::run(ctx).await,
        Operation::Unlock => ops::unlock::run(ctx).await,
        Operation::SlotDrop(o) => ops::slot::drop(ctx, o).await,
        Operation::Destroy(o) => ops::destroy::run(ctx, o).await,
        Operation::History(o) => ops::history::run(ctx, o).await,
        Operation::Dsn(o) => ops::dsn::run(ctx, o).await,
        Operation::TlsRenew(o) => ops::tls::run(ctx, o).await,
        Operation::Render(o) => ops::render::run(ctx, o),
        Operation::Status(o) => ops::status::run(ctx, o).await,
        Operation::Promote(o) => ops::promote::run(ctx, o).await,
        Operation::Rebuild(o) => ops::rebuild::run(ctx, o).await,
        Operation::Switchover(o) => ops::switchover::run(ctx, o).await,
    }
}

/// `pgrepl man`: the pages into a directory, or pgrepl.1 on stdout.
fn man(ui: &ui::Ui, out: Option<&std::path::Path>) -> u8 {
    let written = match out {
        Some(dir) => docs::write_pages(dir).map(|files| {
            for f in files {
                ui.info(format!("wrote {f}"));
            }
        }),
        None => docs::main_page().map(|page| ui.data(&page)),
    };
    match written {
        Ok(()) => exit::OK,
        Err(e) => {
            ui.error(&format!("man: {e}"));
            exit::FAILED
        }
    }
}

/// clap's message on stderr (help and version on stdout); with `--format json`, a usage error is
/// also the error document on stdout. Exit 2, or 0 for `--help` and `--version`.
fn usage(e: &clap::Error, args: &[std::ffi::OsString]) -> u8 {
    let _ = e.print();
    if let Some(doc) = cli::usage_document(e, args) {
        let ui = ui::Ui::new(ui::UiOptions {
            format: ui::Format::Json,
            verbose: 0,
            quiet: true,
            yes: false,
            color: ui::ColorChoice::Never,
        });
        ui.json(&doc);
    }
    if e.use_stderr() {
        exit::USAGE
    } else {
        exit::OK
    }
}

/// Prints the error once and returns its exit code.
fn report(ui: &ui::Ui, e: &error::Error) -> u8 {
    ui.error(&e.to_string());
    // With --format json a failure is one JSON document on stdout too (unless the command
    // already printed its own).
    if ui.format() == ui::Format::Json && !ui.printed_json() {
        ui.json(&e.to_document());
    }
    e.code()
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
