//! pgrepl's integration suite: the real binary against real PostgreSQL servers and real sshd
//! test hosts (network namespaces as root, loopback otherwise). See harness/mod.rs.

mod harness;

mod bad_inventories;
mod bench_failover;
mod bench_init;
mod bench_routers;
mod bench_status;
mod bench_switchover;
mod bench_tls;
mod ci_job;
mod clone_faults;
mod destroy;
mod failover;
mod faults_config;
mod guides;
mod init_local;
mod init_ssh;
mod json_contract;
mod live_topology;
mod modes;
mod monitor;
mod pg18;
mod readme;
mod render_cmd;
pub mod routers;
pub mod safety;
mod status;
pub mod switchover;
mod terminal;
mod tls;
mod usage;
mod versions_smoke;
