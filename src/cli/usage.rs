//! A usage error as the JSON error document (class `usage`, exit 2) when the command line asks
//! for `--format json`: scripts then read one document on stdout whatever went wrong. clap's
//! own text still goes to stderr. `--help` and `--version` are not errors and stay as they are.

use std::ffi::OsString;

use clap::error::ErrorKind;
use clap::CommandFactory;

use crate::error::ErrorDocument;

use super::Cli;

/// The error document of a usage error, when `args` (the first is the program name) ask for
/// `--format json`; `None` for `--help`/`--version`, or without `--format json`.
pub fn usage_document(e: &clap::Error, args: &[OsString]) -> Option<ErrorDocument> {
    if !e.use_stderr() || !asks_for_json(args) {
        return None;
    }
    let message = match e.kind() {
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => "a subcommand is required".into(),
        _ => first_line(&e.render().to_string()),
    };
    Some(ErrorDocument::usage(&message, &help_command(args)))
}

/// `--format json` or `--format=json` is on the command line (wherever it is: the flag is
/// global).
fn asks_for_json(args: &[OsString]) -> bool {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    args.contains(&"--format=json") || args.windows(2).any(|w| w == ["--format", "json"])
}

/// clap's first line, without its `error: ` prefix.
fn first_line(rendered: &str) -> String {
    let line = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    line.strip_prefix("error: ")
        .unwrap_or(line)
        .trim()
        .to_string()
}

/// `pgrepl [<command> [<subcommand>]] --help`: the help of the deepest (sub)command named.
fn help_command(args: &[OsString]) -> String {
    let mut cmd = Cli::command();
    let mut path = vec!["pgrepl".to_string()];
    for a in args.iter().skip(1).filter_map(|a| a.to_str()) {
        if let Some(sub) = cmd.find_subcommand(a).cloned() {
            path.push(a.to_string());
            cmd = sub;
        }
    }
    format!("{} --help", path.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(args: &[&str]) -> Option<serde_json::Value> {
        let argv: Vec<OsString> = std::iter::once("pgrepl")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        let e = Cli::parse_args_from(&argv).expect_err("a usage error");
        usage_document(&e, &argv).map(|d| serde_json::to_value(d).unwrap())
    }

    #[test]
    fn a_usage_error_with_format_json_is_an_error_document() {
        let v = doc(&["--format", "json", "status", "--bogus"]).unwrap();
        let e = &v["error"];
        assert_eq!(e["exit_code"], 2);
        assert_eq!(e["class"], "usage");
        assert!(e["message"].as_str().unwrap().contains("--bogus"), "{v}");
        assert_eq!(e["next"], "pgrepl status --help");
        assert_eq!(e["host"], serde_json::Value::Null);
        assert_eq!(e["stderr_tail"], serde_json::json!([]));
        let v = doc(&["slot", "drop", "h", "--format=json"]).unwrap();
        assert_eq!(v["error"]["next"], "pgrepl slot drop --help");
        let v = doc(&["--format", "json"]).unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("subcommand"),
            "{v}"
        );
        assert_eq!(v["error"]["next"], "pgrepl --help");
    }

    #[test]
    fn help_and_text_stay_as_they_are() {
        assert!(doc(&["status", "--bogus"]).is_none());
        assert!(doc(&["--format", "json", "--help"]).is_none());
        assert!(doc(&["--format", "json", "--version"]).is_none());
    }
}
