//! pgrepl-write-probe: measures write availability during a switchover or failover.
//!
//! Inserts one row every 10 ms into `probe_ids(id bigint primary key)` through a libpq-style
//! multi-host connection string with `target_session_attrs=read-write`, reconnecting whenever a
//! write fails, and prints every acknowledged id with the milliseconds since start: `<id> <ms>`.
//! A write that failed is ambiguous, never "acknowledged"; its id is skipped.
//!
//! Usage: pgrepl-write-probe '<conninfo>' <seconds>
//! The password comes from the environment variable PGREPL_PROBE_PASSWORD (never from argv).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: pgrepl-write-probe '<conninfo>' <seconds>   (password in PGREPL_PROBE_PASSWORD)");
        return std::process::ExitCode::from(2);
    }
    let mut cfg: tokio_postgres::Config = match args[1].parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bad conninfo: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Ok(pw) = std::env::var("PGREPL_PROBE_PASSWORD") {
        cfg.password(pw);
    }
    cfg.connect_timeout(Duration::from_secs(1));
    let seconds: u64 = args[2].parse().unwrap_or(60);
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut client: Option<tokio_postgres::Client> = None;
    let mut id: i64 = 1;
    while start.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        if client.is_none() {
            match tokio::time::timeout(Duration::from_secs(2), cfg.connect(tokio_postgres::NoTls))
                .await
            {
                Ok(Ok((c, conn))) => {
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    client = Some(c);
                }
                _ => continue,
            }
        }
        let c = client.as_ref().expect("connected");
        match tokio::time::timeout(
            Duration::from_secs(2),
            c.execute("INSERT INTO probe_ids(id) VALUES ($1)", &[&id]),
        )
        .await
        {
            Ok(Ok(_)) => println!("{id} {}", start.elapsed().as_millis()),
            _ => client = None,
        }
        id += 1;
    }
    std::process::ExitCode::SUCCESS
}
