//! The one place that spells the commands a finding's fix tells a DBA to run: pgrepl
//! commands against this inventory, `pg_ctl` and `psql` on a host (as the OS user on this
//! machine, or through `ssh user@host`), and edits of the inventory file.
//!
//! Pure string building for people to read and paste: nothing here runs a command (the
//! commands pgrepl itself runs are argv, built in `pg` and `db`).

use crate::inventory::{Host, Inventory, TransportKind};

/// `s` as one word for a POSIX shell: as is when it is made of safe characters, else in single
/// quotes (a quote inside written `'\''`).
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-=:@,+%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Builds fix commands for the hosts of one inventory.
pub struct Fixes<'i> {
    inv: &'i Inventory,
    path: String,
    /// Who pastes the local commands (this process's user): root switches to the OS user with
    /// `runuser` (always there, as pgrepl itself does), the OS user needs no switch, anyone else
    /// `sudo`.
    me: Option<String>,
}

impl<'i> Fixes<'i> {
    /// Commands for `inv`'s hosts as `me` pastes them (`None`: this process's user).
    pub fn as_user(inv: &'i Inventory, me: Option<&str>) -> Fixes<'i> {
        Fixes {
            me: me.map(str::to_string),
            ..Fixes::new(inv)
        }
    }

    /// Commands for `inv`'s hosts; pgrepl commands name `inv`'s file.
    pub fn new(inv: &'i Inventory) -> Fixes<'i> {
        Fixes {
            inv,
            path: inv.file.display().to_string(),
            me: crate::transport::current_user(),
        }
    }

    /// `what`, run on `h`: `sudo -u postgres what` with the local transport; with SSH, an `ssh`
    /// command line that works when pasted — the inventory's port, key, known_hosts and config
    /// file, and `what` single-quoted for the remote shell.
    pub fn on(&self, h: &Host, what: &str) -> String {
        match self.inv.transport {
            TransportKind::Local => match self.me.as_deref() {
                Some("root") => format!("runuser -u {} -- {what}", self.inv.os_user),
                Some(me) if me == self.inv.os_user => what.to_string(),
                _ => format!("sudo -u {} {what}", self.inv.os_user),
            },
            TransportKind::Ssh => {
                let s = &self.inv.ssh;
                let mut cmd = String::from("ssh");
                if h.ssh_port != 22 {
                    cmd.push_str(&format!(" -p {}", h.ssh_port));
                }
                if let Some(f) = &s.identity_file {
                    cmd.push_str(&format!(" -i {}", f.display()));
                }
                if let Some(f) = &s.known_hosts_file {
                    cmd.push_str(&format!(" -o UserKnownHostsFile={}", f.display()));
                }
                if let Some(f) = &s.config_file {
                    cmd.push_str(&format!(" -F {}", f.display()));
                }
                format!("{cmd} {}@{} {}", s.user, h.ssh_host, shell_quote(what))
            }
        }
    }

    /// `psql` connected to `h`'s server as pgrepl connects: its socket directory, port and the
    /// `postgres` database, running `sql` (pgrepl's own fixed text with validated names: no
    /// double quote, `$`, backquote or backslash in it).
    fn psql(&self, h: &Host, sql: &str) -> String {
        self.on(
            h,
            &format!(
                "psql -h {} -p {} -d postgres -c \"{sql}\"",
                h.socket_dir, h.port
            ),
        )
    }

    /// `ALTER SYSTEM RESET` of `settings` (validated setting names) on `h`, then a reload: one
    /// `-c` each, as `ALTER SYSTEM` cannot run inside the transaction of a multi-statement `-c`.
    pub fn alter_system_reset(&self, h: &Host, settings: &[&str]) -> String {
        let mut cs: Vec<String> = settings
            .iter()
            .map(|n| format!("-c \"ALTER SYSTEM RESET {n}\""))
            .collect();
        cs.push("-c \"SELECT pg_catalog.pg_reload_conf()\"".into());
        self.on(
            h,
            &format!(
                "psql -h {} -p {} -d postgres {}",
                h.socket_dir,
                h.port,
                cs.join(" ")
            ),
        )
    }

    /// `pgrepl -i <inventory> rebuild <h>`.
    pub fn rebuild(&self, h: &Host) -> String {
        format!("pgrepl -i {} rebuild {}", self.path, h.name)
    }

    /// `pgrepl -i <inventory> rebuild <h> --method clone`: a fresh base backup.
    pub fn rebuild_clone(&self, h: &Host) -> String {
        format!("{} --method clone", self.rebuild(h))
    }

    /// `pgrepl -i <inventory> promote <h>`.
    pub fn promote(&self, h: &Host) -> String {
        format!("pgrepl -i {} promote {}", self.path, h.name)
    }

    /// `pgrepl -i <inventory> status --watch`.
    pub fn status_watch(&self) -> String {
        format!("pgrepl -i {} status --watch", self.path)
    }

    /// `pgrepl init -i <inventory>`: re-applies the inventory to every host.
    pub fn init(&self) -> String {
        format!("pgrepl init -i {}", self.path)
    }

    /// `pgrepl tls renew -i <inventory>`.
    pub fn tls_renew(&self) -> String {
        format!("pgrepl tls renew -i {}", self.path)
    }

    /// `pg_ctl status` of `h`'s server, on `h`.
    pub fn pg_ctl_status(&self, h: &Host) -> String {
        self.on(h, &format!("{}/pg_ctl status -D {}", h.bin_dir, h.data_dir))
    }

    /// `pg_ctl start` of `h`'s server (logging to its log file), on `h`.
    pub fn pg_ctl_start(&self, h: &Host) -> String {
        self.on(
            h,
            &format!(
                "{}/pg_ctl start -D {} -l {}",
                h.bin_dir, h.data_dir, h.log_file
            ),
        )
    }

    /// `pg_ctl stop -m fast` of `h`'s server, on `h`.
    pub fn pg_ctl_stop(&self, h: &Host) -> String {
        self.on(
            h,
            &format!("{}/pg_ctl stop -m fast -D {}", h.bin_dir, h.data_dir),
        )
    }

    /// `pg_ctl restart -m fast` of `h`'s server (logging to its log file, not the terminal), on `h`.
    pub fn pg_ctl_restart(&self, h: &Host) -> String {
        self.on(
            h,
            &format!(
                "{}/pg_ctl restart -m fast -D {} -l {}",
                h.bin_dir, h.data_dir, h.log_file
            ),
        )
    }

    /// The last 50 lines of `h`'s server log, on `h`.
    pub fn tail_log(&self, h: &Host) -> String {
        self.on(h, &format!("tail -n 50 {}", h.log_file))
    }

    /// `pg_wal_replay_resume()` through psql, on `h`.
    pub fn resume_replay(&self, h: &Host) -> String {
        self.psql(h, "SELECT pg_catalog.pg_wal_replay_resume()")
    }

    /// `pgrepl -i <inventory> slot drop <h> <slot>`: drops the slot through the inventory's own
    /// transport (ssh options included).
    pub fn drop_slot(&self, h: &Host, slot: &str) -> String {
        format!(
            "pgrepl -i {} slot drop {} {}",
            self.path,
            h.name,
            shell_quote(slot)
        )
    }

    /// The inventory edit that makes `primary` the primary and `replica` a replica.
    pub fn edit_roles(&self, primary: &Host, replica: &Host) -> String {
        format!(
            "edit {}: role: primary on {}, role: replica on {}",
            self.path, primary.name, replica.name
        )
    }

    /// The inventory edit that makes `h` stream from `upstream`.
    pub fn edit_upstream(&self, h: &Host, upstream: &str) -> String {
        format!("set upstream: {upstream} for {} in {}", h.name, self.path)
    }
}
