//! Operations, one file per subcommand. Each takes the shared `Context` and its plain `Options`
//! and returns an exit code or an `Error`; none of them prints except through `Ui`, and none
//! sees clap. A mutating command is a pure preflight (live `Topology` + options → problems or a
//! plan of named steps) and an executor that walks the plan through `steps`. No command calls
//! another command's files (`check` is `init`'s preflight shown, so it lives in `init/`).

pub mod destroy;
pub mod init;
pub mod operation;
pub mod promote;
pub mod rebuild;
pub mod render;
pub mod slot;
pub mod status;
pub mod switchover;
pub mod unlock;

pub use crate::context::{Context, RunOptions, Transports};
/// `pgrepl check`: `init`'s preflight, shown (it lives beside `init`, whose plan it prints).
pub use init::check;
