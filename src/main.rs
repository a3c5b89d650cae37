//! pgrepl: the binary. All work happens in the library; this maps its result to an exit code.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(pgrepl::run())
}
