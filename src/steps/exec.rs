//! Running one command as a named step on a host, and installing one file: the two things
//! every other step is made of. A failure names the host, the step and the command's stderr tail.
//! It knows no operation and no server state: what to run is the caller's.

use crate::error::{Error, OnStep};
use crate::pg::datadir;
use crate::transport::{Cmd, LineSink, Output, Transport};

/// Runs a step; a non-zero exit becomes an error naming the host, the step and the output tail.
pub async fn run_step(
    t: &dyn Transport,
    cmd: &Cmd,
    step: &str,
    sink: Option<LineSink>,
) -> Result<Output, Error> {
    let out = t.run(cmd, sink).await.map_err(|e| {
        Error::step(
            t.host(),
            step,
            format!("could not run {}: {e:#}", cmd.program()),
        )
    })?;
    if !out.success() {
        return Err(Error::step(
            t.host(),
            step,
            format!("{} {}", cmd.program(), out.describe_status()),
        )
        .with_stderr(out.stderr_tail.clone()));
    }
    Ok(out)
}

/// Writes `content` to `path` with `mode` unless both are already so (a file whose mode was
/// loosened is written again); returns the previous content when the file changed (`Some("")`
/// for a new file), `None` when nothing was written.
pub async fn install_file(
    t: &dyn Transport,
    path: &str,
    mode: &str,
    content: &str,
    step: &str,
) -> Result<Option<String>, Error> {
    let cur = t
        .run(&datadir::read_file_with_mode(path), None)
        .await
        .on_step(t.host(), step)?;
    let want = u32::from_str_radix(mode, 8).ok();
    let old = match cur.code {
        Some(0) => match datadir::split_mode(&cur.stdout) {
            (m, old) if m == want => Some(old.to_string()),
            (_, old) if old == content => {
                tracing::info!(
                    "{}: {path} had another mode than {mode}: set again",
                    t.host()
                );
                run_step(
                    t,
                    &datadir::write_file(path, mode, content.as_bytes().to_vec()),
                    step,
                    None,
                )
                .await?;
                return Ok(Some(old.to_string()));
            }
            (_, old) => Some(old.to_string()),
        },
        Some(datadir::READ_ABSENT) => None,
        _ => {
            return Err(
                Error::step(t.host(), step, format!("could not read {path}"))
                    .with_stderr(cur.stderr_tail),
            )
        }
    };
    if old.as_deref() == Some(content) {
        return Ok(None);
    }
    run_step(
        t,
        &datadir::write_file(path, mode, content.as_bytes().to_vec()),
        step,
        None,
    )
    .await?;
    Ok(Some(old.unwrap_or_default()))
}

/// The libpq major of this machine's `psql` on PATH (`psql --version`, with the libpq
/// environment cleared), if there is one: what a client here understands (`pgrepl dsn`).
pub fn local_libpq_major() -> Option<u32> {
    let mut cmd = std::process::Command::new("psql");
    cmd.arg("--version").stdin(std::process::Stdio::null());
    for v in crate::transport::CLEARED_ENV {
        cmd.env_remove(v);
    }
    let out = cmd.output().ok()?;
    crate::pg::libpq::parse_psql_version(&String::from_utf8_lossy(&out.stdout))
}
