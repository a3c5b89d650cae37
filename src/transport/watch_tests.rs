//! The `until_disconnect` watcher run under the real `/bin/sh` (dash on Debian) with real
//! processes: the whole process group goes — a child the command forked included — when stdin
//! closes, and when the command ends first leaving its child behind (as `pg_basebackup` killed
//! by a signal leaves its WAL streaming child).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Cmd;

/// Is `pid` gone (or a zombie waiting for its reaper)?
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => {
            s.rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next())
                == Some("Z")
        }
    }
}

/// Runs `script` (which prints the pid of a background child it forks) under the watcher;
/// `close_stdin` closes the watcher's stdin once that pid is known. Returns the child's pid
/// after the watcher exited.
fn run(script: &str, close_stdin: bool) -> i32 {
    let c = Cmd::new("sh").args(["-c", script]).until_disconnect();
    let mut w = Command::new(&c.argv[0])
        .args(&c.argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(w.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let child: i32 = line.trim().parse().unwrap();
    let stdin = w.stdin.take();
    if close_stdin {
        drop(stdin);
        w.wait().unwrap();
    } else {
        w.wait().unwrap();
        drop(stdin);
    }
    child
}

fn assert_gone_soon(pid: i32) {
    let start = Instant::now();
    while !gone(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pid {pid} outlived the watcher"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn closing_stdin_ends_the_whole_group() {
    let child = run("sleep 300 & echo $!; wait", true);
    assert_gone_soon(child);
}

#[test]
fn a_child_left_by_the_command_is_ended_with_it() {
    let child = run("sleep 300 & echo $!; exec 1>&-; exit 0", false);
    assert_gone_soon(child);
}
