//! The terminal contract (issue "CLI contract"): what pgrepl does on a real terminal (a pty)
//! and off one — Ctrl-C at a confirmation prompt, commands that always ask refusing at once
//! without a terminal, `PGREPL_YES`, no terminal escapes off a terminal, colors.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{example_inventory, pgrepl, LocalLab};

/// pgrepl on a pseudo-terminal (stdin, stdout and stderr; its controlling terminal): once its
/// output shows `until`, `send` is typed (empty: a SIGINT is sent to it instead). Returns the exit code and everything it printed.
fn on_a_terminal(args: &[&str], until: &str, send: &[u8]) -> (i32, String) {
    let (mut master, mut slave) = (0, 0);
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgrepl"));
    c.args(args)
        .env_remove("PGREPL_YES")
        .env("TERM", "xterm")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    unsafe {
        c.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = c.spawn().expect("spawn pgrepl on a pty");
    drop(c);
    let mut reader = std::fs::File::from(master.try_clone().unwrap());
    let mut writer = std::fs::File::from(master);
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut out = Vec::new();
    let mut sent = false;
    let t0 = Instant::now();
    loop {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(50)) {
            out.extend(chunk);
        }
        if !sent && String::from_utf8_lossy(&out).contains(until) {
            if send.is_empty() {
                // Nothing to type: a SIGINT from elsewhere (kill), whatever mode the terminal is in.
                unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            } else {
                writer.write_all(send).unwrap();
            }
            sent = true;
        }
        if let Some(status) = child.try_wait().unwrap() {
            while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
                out.extend(chunk);
            }
            return (
                status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out).into_owned(),
            );
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!(
                "pgrepl {args:?} on a pty did not finish; output:\n{}",
                String::from_utf8_lossy(&out)
            );
        }
    }
}

/// Ctrl-C at a confirmation prompt is an interruption (exit 130), and nothing changes.
#[test]
fn ctrl_c_at_the_prompt_is_an_interruption() {
    let c = LocalLab::new(2);
    let inv = c.inventory("16MB");
    let inv = inv.to_str().unwrap();
    pgrepl(&["-i", inv, "init"], &[]).expect_code(0);
    let (code, out) = on_a_terminal(&["-i", inv, "switchover", "b"], "Continue?", b"\x03");
    assert_eq!(code, 130, "{out}");
    assert!(!out.contains("not confirmed"), "{out}");
    assert_eq!(c.psql(0, "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(c.psql(1, "SELECT pg_is_in_recovery()"), "t");
    // A SIGINT while the prompt waits (kill, or Ctrl-C before the terminal is in raw mode) ends
    // the run at once: it does not wait for a key.
    let (code, out) = on_a_terminal(&["-i", inv, "switchover", "b"], "Continue?", b"");
    assert_eq!(code, 130, "{out}");
    assert!(out.contains("at the confirmation prompt"), "{out}");
    assert_eq!(c.psql(0, "SELECT pg_is_in_recovery()"), "f");
    // Answering no is a refusal that changes nothing either.
    let (code, out) = on_a_terminal(&["-i", inv, "switchover", "b"], "Continue?", b"n");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not confirmed"), "{out}");
    assert_eq!(c.psql(0, "SELECT pg_is_in_recovery()"), "f");
}

/// A command that always asks refuses at once without a terminal and without --yes (exit 5),
/// before it contacts any host: the example inventory's hosts do not exist, and it does not
/// wait for them.
#[test]
fn always_asking_commands_refuse_at_once_without_a_terminal() {
    let inv = example_inventory();
    for args in [
        &["promote", "pg2"][..],
        &["rebuild", "pg2"],
        &["switchover", "pg2"],
    ] {
        let mut argv = vec!["-i", &inv];
        argv.extend(args);
        let t0 = Instant::now();
        let r = pgrepl(&argv, &[("PGREPL_TEST_PW", "x")]);
        r.expect_code(5);
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "{args:?} took {:?}",
            t0.elapsed()
        );
        assert!(r.stderr.contains("--yes"), "{}", r.stderr);
        // No terminal: no escape sequence at all.
        assert!(!r.stderr.contains('\u{1b}'), "{:?}", r.stderr);
    }
}

/// `PGREPL_YES` takes the usual spellings of a boolean (1, yes, on, true, and their opposites).
#[test]
fn pgrepl_yes_takes_the_usual_booleans() {
    let inv = example_inventory();
    for v in ["1", "yes", "on", "true", "0", "no", "off", "false"] {
        let r = pgrepl(&["-i", &inv, "render"], &[("PGREPL_YES", v)]);
        r.expect_code(0);
    }
    pgrepl(&["-i", &inv, "render"], &[("PGREPL_YES", "perhaps")]).expect_code(2);
}
