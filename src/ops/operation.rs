//! What the command line asked for, as plain data: one variant per subcommand, carrying that
//! command's `Options`. `cli` builds it; `lib` hands it to the operation. No clap types here.

use super::{destroy, dsn, history, promote, rebuild, render, slot, status, switchover};

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
    /// `pgrepl destroy`.
    Destroy(destroy::Options),
    /// `pgrepl history`.
    History(history::Options),
    /// `pgrepl dsn`.
    Dsn(dsn::Options),
    /// `pgrepl tls renew`.
    TlsRenew(super::tls::Options),
}

impl Operation {
    /// Whether a run of it goes into the cluster's history (`pgrepl history`): every command
    /// that can change the cluster but `destroy` (which removes the history with the rest).
    pub fn is_journaled(&self) -> bool {
        matches!(
            self,
            Operation::Init
                | Operation::Promote(_)
                | Operation::Rebuild(_)
                | Operation::Switchover(_)
                | Operation::Unlock
                | Operation::SlotDrop(_)
                | Operation::TlsRenew(_)
        )
    }

    /// Whether it only reads (check, render, status): an interruption of it has nothing to
    /// finish or undo (leaving `status --watch` with Ctrl-C is its normal end).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Operation::Check
                | Operation::Render(_)
                | Operation::Status(_)
                | Operation::History(_)
                | Operation::Dsn(_)
        )
    }

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
            Operation::Destroy(_) => "destroy",
            Operation::History(_) => "history",
            Operation::Dsn(_) => "dsn",
            Operation::TlsRenew(_) => "tls renew",
        }
    }
}
