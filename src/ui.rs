//! The one owner of the terminal. Decided once at start-up: output format, verbosity, color,
//! whether progress bars are drawn and whether prompts are possible. Data (tables, JSON) goes
//! to stdout; narration, progress and errors go to stderr. Without a terminal there are no bars,
//! no colors and no prompts.
//!
//! Logging (`-v`, `-vv`, `-vvv`, `PGREPL_LOG`) goes through `tracing` to stderr, set up here
//! once ([`Ui::init_logging`]), between progress bars rather than through them, and never from
//! a dependency's target that could print a password (see [`may_log`]).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use console::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::Error;

/// Output format of read commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tables and sentences for people.
    Text,
    /// One JSON document on stdout.
    Json,
    /// Prometheus text exposition format (`status` only).
    Prometheus,
}

/// Color policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    /// Color on a stream that is a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Color even when not writing to a terminal.
    Always,
    /// No color.
    Never,
}

/// How a word on stdout should stand out (green, yellow, red on a color terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Healthy (green).
    Good,
    /// Needs attention (bold yellow).
    Warning,
    /// Broken or critical (bold red).
    Bad,
}

/// Settings the CLI decides.
#[derive(Debug, Clone)]
pub struct UiOptions {
    /// `--format`.
    pub format: Format,
    /// How many `-v`: 1 steps and timings, 2 remote commands and SQL, 3 dependencies' logs.
    pub verbose: u8,
    /// `--quiet`: only errors on stderr.
    pub quiet: bool,
    /// `--yes`: confirmations answered yes.
    pub yes: bool,
    /// `--color`.
    pub color: ColorChoice,
}

mod color;
pub use color::colored;

/// Set while a confirmation prompt waits: a SIGINT or SIGTERM then (`kill`, or a terminal not yet
/// in raw mode) ends the run at once instead of waiting for a key (`lib::execute`).
pub static AT_PROMPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The output owner.
pub struct Ui {
    opts: UiOptions,
    stderr_tty: bool,
    stdin_tty: bool,
    stdout_tty: bool,
    color: bool,
    stdout_color: bool,
    bars: MultiProgress,
    plain_lock: Mutex<()>,
    json_printed: std::sync::atomic::AtomicBool,
}

impl Ui {
    /// Decides, once, what goes where: terminals, colors, whether bars are drawn.
    pub fn new(opts: UiOptions) -> Ui {
        let stderr_tty = std::io::stderr().is_terminal();
        let stdin_tty = std::io::stdin().is_terminal();
        let env = |k: &str| std::env::var(k).ok();
        let color = colored(opts.color, stderr_tty, &env);
        console::set_colors_enabled_stderr(color);
        let stdout_tty = std::io::stdout().is_terminal();
        let stdout_color = colored(opts.color, stdout_tty, &env);
        console::set_colors_enabled(stdout_color);
        let bars =
            MultiProgress::with_draw_target(if stderr_tty && !opts.quiet && opts.verbose == 0 {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            });
        Ui {
            opts,
            stderr_tty,
            stdin_tty,
            stdout_tty,
            color,
            stdout_color,
            bars,
            plain_lock: Mutex::new(()),
            json_printed: Default::default(),
        }
    }

    /// The output format of read commands.
    pub fn format(&self) -> Format {
        self.opts.format
    }

    /// Are bars being drawn (a terminal, not quiet or verbose)?
    fn drawing(&self) -> bool {
        !self.bars.is_hidden()
    }

    fn line(&self, text: &str) {
        if self.drawing() {
            self.bars.suspend(|| eprintln!("{text}"));
        } else {
            let _g = self.plain_lock.lock();
            eprintln!("{text}");
        }
    }

    fn styled(&self, s: &str, style: Style) -> String {
        if self.color {
            style.for_stderr().apply_to(s).to_string()
        } else {
            s.to_string()
        }
    }

    /// Narration: what pgrepl is doing (stderr; hidden with --quiet).
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.opts.quiet {
            self.line(msg.as_ref());
        }
    }

    /// A step on a host that finished, with its duration.
    pub fn done(&self, host: &str, what: &str, took: Duration) {
        if !self.opts.quiet {
            let h = self.styled(host, Style::new().bold());
            self.line(&format!("{h}: {what} ({:.1}s)", took.as_secs_f64()));
        }
    }

    /// Details shown with -v (an INFO event of target `pgrepl`).
    pub fn detail(&self, msg: impl AsRef<str>) {
        tracing::info!(target: "pgrepl", "{}", msg.as_ref());
    }

    /// A warning (always shown).
    pub fn warn(&self, msg: impl AsRef<str>) {
        let w = self.styled("warning:", Style::new().yellow().bold());
        self.line(&format!("{w} {}", msg.as_ref()));
    }

    /// The one place an error is printed.
    pub fn error(&self, err: &str) {
        let e = self.styled("error:", Style::new().red().bold());
        self.line(&format!("{e} {err}"));
    }

    /// Data for stdout (tables, rendered files).
    pub fn data(&self, text: &str) {
        if self.drawing() {
            self.bars.suspend(|| print!("{text}"));
        } else {
            print!("{text}");
        }
    }

    /// Is stdout a terminal (for `status --watch`)?
    pub fn stdout_is_terminal(&self) -> bool {
        self.stdout_tty
    }

    /// Colors a word for stdout by its tone (only when stdout is a terminal and colors are on).
    pub fn paint(&self, tone: Tone, text: &str) -> String {
        if !self.stdout_color {
            return text.to_string();
        }
        let style = match tone {
            Tone::Good => Style::new().green(),
            Tone::Warning => Style::new().yellow().bold(),
            Tone::Bad => Style::new().red().bold(),
        };
        style.apply_to(text).to_string()
    }

    /// Replaces the screen's content with `text` (`status --watch`, terminal only).
    pub fn redraw(&self, text: &str) {
        let term = console::Term::stdout();
        let _ = term.clear_screen();
        print!("{text}");
    }

    /// One JSON document on stdout (keys sorted: it goes through a `serde_json::Value`).
    pub fn json<T: serde::Serialize + ?Sized>(&self, doc: &T) {
        let v = serde_json::to_value(doc).expect("documents serialize");
        let text = serde_json::to_string_pretty(&v).expect("JSON serializes");
        self.json_printed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        println!("{text}");
    }

    /// Fails at once (exit 5) when a confirmation for `action` could not be asked for (no
    /// terminal, no `--yes`): a command that always asks checks this before any work.
    pub fn confirmable(&self, action: &str) -> Result<(), Error> {
        if self.opts.yes || (self.stderr_tty && self.stdin_tty) {
            return Ok(());
        }
        Err(Error::ConfirmationRequired {
            action: action.to_string(),
        })
    }

    /// Whether a JSON document was printed on stdout already.
    pub fn printed_json(&self) -> bool {
        self.json_printed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether stderr is a terminal.
    pub fn stderr_is_terminal(&self) -> bool {
        self.stderr_tty
    }

    /// Asks before a disruptive action. `--yes` answers yes; without a terminal the answer is
    /// an immediate refusal (exit code 5); on a terminal the user is asked (Ctrl-C there is an
    /// interruption: exit 130).
    pub fn confirm(&self, action: &str, detail: &str) -> Result<(), Error> {
        if self.opts.yes {
            return Ok(());
        }
        if !(self.stderr_tty && self.stdin_tty) {
            return Err(Error::ConfirmationRequired {
                action: format!("{action} ({detail})"),
            });
        }
        AT_PROMPT.store(true, std::sync::atomic::Ordering::SeqCst);
        let answer = self.bars.suspend(|| {
            dialoguer::Confirm::new()
                .with_prompt(format!("{action}: {detail}. Continue?"))
                .default(false)
                .interact()
        });
        AT_PROMPT.store(false, std::sync::atomic::Ordering::SeqCst);
        match answer {
            Ok(true) => Ok(()),
            // Ctrl-C at the prompt is an interruption (exit 130), not a "no".
            Err(dialoguer::Error::IO(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                Err(Error::InterruptedAfter(crate::error::StepFailure {
                    step: action.to_string(),
                    message: "at the confirmation prompt; what it asked about was not done".into(),
                    ..Default::default()
                }))
            }
            _ => Err(Error::Step(crate::error::StepFailure {
                host: None,
                step: action.to_string(),
                message: "not confirmed; nothing was changed".into(),
                ..Default::default()
            })),
        }
    }

    /// Clears any progress bar still drawn (a step cut short by an interruption).
    pub fn finish_progress(&self) {
        let _ = self.bars.clear();
    }

    /// A progress indicator for one host's long step: a bar on a terminal, a line every 25%
    /// otherwise (so CI logs show progress without control characters).
    pub fn progress(&self, host: &str, what: &str) -> Progress {
        let bar = if self.drawing() {
            let b = self.bars.add(ProgressBar::new(0));
            // No bar until the size is known (a full bar reading "0 B/0 B" says nothing).
            b.set_style(
                ProgressStyle::with_template("{prefix:>10.bold} {msg} (starting)")
                    .expect("valid template"),
            );
            b.set_prefix(host.to_string());
            b.set_message(what.to_string());
            Some(b)
        } else {
            None
        };
        Progress {
            bar,
            host: host.to_string(),
            what: what.to_string(),
            last_quarter: Mutex::new(None),
            quiet: self.opts.quiet,
        }
    }
}

/// The environment variable holding a `tracing` filter (`pgrepl=debug,tokio_postgres=info`) that
/// replaces the level chosen by `-v`.
pub const LOG_ENV: &str = "PGREPL_LOG";

impl Ui {
    /// Installs the process's `tracing` subscriber (once; a second call changes nothing).
    /// Events go to stderr, suspending any progress bar while they are written, with colors only
    /// when stderr gets them. The filter is [`LOG_ENV`] if set, else the level of `-v`
    /// ([`default_filter`]); either way, targets that could print a secret are dropped.
    pub fn init_logging(&self) {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        use tracing_subscriber::{filter::filter_fn, fmt, EnvFilter, Layer as _};

        let level = default_filter(self.opts.verbose, self.opts.quiet);
        let custom = std::env::var(LOG_ENV).ok().filter(|d| !d.trim().is_empty());
        let filter = match custom.as_deref().map(EnvFilter::try_new) {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                self.warn(format!(
                    "{LOG_ENV} is not a valid filter ({e}); using the level of -v"
                ));
                EnvFilter::new(level)
            }
            None => EnvFilter::new(level),
        };
        let layer = fmt::layer()
            .with_writer(LogWriter {
                bars: self.bars.clone(),
            })
            .with_ansi(self.color)
            .with_target(custom.is_some() || self.opts.verbose >= 3)
            .with_timer(Elapsed(Instant::now()))
            .with_filter(filter_fn(|m| may_log(m.target())));
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(layer)
            .try_init();
    }
}

/// The filter of `-q`, no flag, `-v`, `-vv`, `-vvv`: pgrepl's steps (INFO) from `-v`, its remote
/// commands and SQL statements (DEBUG) from `-vv`, every crate's logs from `-vvv`.
pub fn default_filter(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "pgrepl=error",
        (false, 0) => "pgrepl=warn",
        (false, 1) => "pgrepl=info",
        (false, 2) => "pgrepl=debug",
        (false, _) => "trace",
    }
}

/// May events of this target be written, whatever the filter says? tokio-postgres logs statement
/// text (`prepare`, `simple_query`: a `CREATE ROLE … PASSWORD` with its verifier) and parameter
/// values (`query`); of its targets only `connection` (protocol events) is let through.
pub fn may_log(target: &str) -> bool {
    let postgres = target == "tokio_postgres" || target.starts_with("tokio_postgres::");
    !postgres || target.starts_with("tokio_postgres::connection")
}

/// Seconds since start-up, as the time of each log line.
struct Elapsed(Instant);

impl tracing_subscriber::fmt::time::FormatTime for Elapsed {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{:>8.3}s", self.0.elapsed().as_secs_f64())
    }
}

/// Makes a [`LogLine`] per event.
#[derive(Clone)]
struct LogWriter {
    bars: MultiProgress,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine {
            bars: self.bars.clone(),
            buf: Vec::new(),
        }
    }
}

/// One event's text, written to stderr in one piece when dropped, with the bars suspended.
struct LogLine {
    bars: MultiProgress,
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.bars.suspend(|| {
                let _ = std::io::stderr().lock().write_all(&buf);
            });
        }
    }
}

/// One host's progress (see [`Ui::progress`]).
pub struct Progress {
    bar: Option<ProgressBar>,
    host: String,
    what: String,
    last_quarter: Mutex<Option<u64>>,
    quiet: bool,
}

impl Progress {
    /// Reports `done` of `total` bytes.
    pub fn set(&self, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            if total == 0 {
                return;
            }
            if b.length() != Some(total) {
                b.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>10.bold} {msg} [{bar:30}] {bytes}/{total_bytes} ({eta})",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                b.set_length(total);
            }
            b.set_position(done.min(total));
            return;
        }
        if total == 0 || self.quiet {
            return;
        }
        let quarter = (done.min(total) * 4 / total).min(4);
        let mut last = self.last_quarter.lock().expect("not poisoned");
        if *last != Some(quarter) {
            *last = Some(quarter);
            eprintln!(
                "{}: {} {}% ({} of {} MB)",
                self.host,
                self.what,
                quarter * 25,
                done >> 20,
                total >> 20
            );
        }
    }

    /// Removes the bar (the step is done; its line comes from the caller).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_v() {
        assert_eq!(default_filter(0, false), "pgrepl=warn");
        assert_eq!(default_filter(1, false), "pgrepl=info");
        assert_eq!(default_filter(2, false), "pgrepl=debug");
        assert_eq!(default_filter(3, false), "trace");
        assert_eq!(default_filter(9, false), "trace");
        assert_eq!(default_filter(3, true), "pgrepl=error");
        for v in 0..4 {
            tracing_subscriber::EnvFilter::try_new(default_filter(v, false)).unwrap();
        }
    }

    #[test]
    fn targets_that_print_sql_text_or_parameters_are_dropped() {
        for t in [
            "tokio_postgres",
            "tokio_postgres::query",
            "tokio_postgres::simple_query",
            "tokio_postgres::prepare",
            "tokio_postgres::copy_in",
        ] {
            assert!(!may_log(t), "{t}");
        }
        for t in [
            "pgrepl",
            "pgrepl::db",
            "tokio_postgres::connection",
            "openssh",
            "tokio_postgresql_lookalike",
        ] {
            assert!(may_log(t), "{t}");
        }
    }
}
