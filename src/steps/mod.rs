//! The steps every command is made of, shared by all of them: run a command on a host, install a
//! file, start / stop and prove down / fence / promote a server, converge its configuration,
//! ensure a slot, clone through staging, rewind, verify streaming, discover the live topology,
//! take the cluster lock.
//!
//! A step works on one host (or the hosts it names) through the run's `Context`, reports what it
//! did through `Ui` (with its duration), and fails with an `Error` that names the host and the
//! step. Steps never call an operation (`ops`), and no operation calls another's file.

pub mod clone;
pub mod config;
pub mod exec;
pub mod facts;
pub mod history;
pub mod hot_standby;
pub mod lock;
pub mod probe;
pub mod record;
pub mod rewind;
pub mod roles;
pub mod routers;
pub mod server;
pub mod slots;
pub mod streaming;
pub mod tls;
pub mod undo;
