//! What the command line asked for, as plain data: one variant per subcommand, carrying that
//! command's `Options`. `cli` builds it; `lib` hands it to the operation. No clap types here.

use super::{promote, rebuild, render, slot, status, switchover};

/// One run's operation and its options.
#[derive(Debug, Clone)]
pub enum Operation {
    /// `pgrepl check`.
    Check,
    /// `pgrepl init`.
    Init,
    /// `pgrepl render`.
    Render(render::Options),
    /// `pgrepl status`.
    Status(status::Options),
    /// `pgrepl promote`.
    Promote(promote::Options),
    /// `pgrepl rebuild`.
    Rebuild(rebuild::Options),
    /// `pgrepl switchover`.
    Switchover(switchover::Options),
    /// `pgrepl unlock`.
    Unlock,
    /// `pgrepl slot drop`.
    SlotDrop(slot::Options),
}

impl Operation {
    /// The subcommand's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Check => "check",
            Operation::Init => "init",
            Operation::Render(_) => "render",
            Operation::Status(_) => "status",
            Operation::Promote(_) => "promote",
            Operation::Rebuild(_) => "rebuild",
            Operation::Switchover(_) => "switchover",
            Operation::Unlock => "unlock",
            Operation::SlotDrop(_) => "slot drop",
        }
    }
}
