//! Operations, one file per subcommand. Each takes the shared `Context` and its plain `Options`
//! and returns an exit code or an `Error`; none of them prints except through `Ui`, and none
//! sees clap. A mutating command is a pure preflight (live `Topology` + options → problems or a
//! plan of named steps) and an executor that walks the plan through `steps`. No command calls
//! another command's files (`check` is `init`'s preflight shown, so it lives in `init/`).

pub mod destroy;
pub mod documents;
pub mod dsn;
pub mod history;
pub mod init;
pub mod operation;
pub mod promote;
pub mod rebuild;
pub mod render;
pub mod slot;
pub mod status;
pub mod switchover;
pub mod tls;
pub mod unlock;

pub use crate::context::{Context, RunOptions, Transports};

/// The end of a `--dry-run`: every check passed; the plan's steps, printed (text on stdout, or
/// one JSON document `{dry_run, command, steps}`). Nothing was changed. Returns exit 0.
pub fn dry_run(ctx: &Context<'_>, command: &str, steps: &[String]) -> u8 {
    if ctx.ui.format() == crate::ui::Format::Json {
        ctx.ui.json(&documents::DryRunDocument {
            dry_run: true,
            command: command.to_string(),
            steps: steps.to_vec(),
        });
    } else {
        let mut text = format!("{command} (dry run: every check passed; nothing was changed)\n");
        for s in steps {
            text.push_str(&format!("  {s}\n"));
        }
        if steps.is_empty() {
            text.push_str("  nothing to do\n");
        }
        ctx.ui.data(&text);
    }
    crate::error::exit::OK
}
/// `pgrepl check`: `init`'s preflight, shown (it lives beside `init`, whose plan it prints).
pub use init::check;
