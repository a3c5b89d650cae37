//! The color decision, from `--color` and the environment (`NO_COLOR`, `CLICOLOR`,
//! `CLICOLOR_FORCE`). Pure.

use super::ColorChoice;

/// Whether a stream gets color: `--color always|never` decide; with `auto`, a non-empty
/// `NO_COLOR` means none, a `CLICOLOR_FORCE` other than `0` means color even off a terminal,
/// `CLICOLOR=0` means none, else color on a terminal (no-color.org, bixense.com/clicolors).
pub fn colored(choice: ColorChoice, tty: bool, env: &dyn Fn(&str) -> Option<String>) -> bool {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set("NO_COLOR").is_some() => false,
        ColorChoice::Auto if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") => true,
        ColorChoice::Auto if set("CLICOLOR").as_deref() == Some("0") => false,
        ColorChoice::Auto => tty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_follow_no_color_and_clicolor() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let auto = ColorChoice::Auto;
        assert!(colored(auto, true, &env(&[])));
        assert!(!colored(auto, false, &env(&[])));
        assert!(!colored(auto, true, &env(&[("NO_COLOR", "1")])));
        // An empty NO_COLOR is not set (no-color.org).
        assert!(colored(auto, true, &env(&[("NO_COLOR", "")])));
        assert!(!colored(auto, true, &env(&[("CLICOLOR", "0")])));
        assert!(colored(auto, false, &env(&[("CLICOLOR_FORCE", "1")])));
        assert!(!colored(auto, false, &env(&[("CLICOLOR_FORCE", "0")])));
        assert!(!colored(
            auto,
            false,
            &env(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")])
        ));
        assert!(colored(
            ColorChoice::Always,
            false,
            &env(&[("NO_COLOR", "1")])
        ));
        assert!(!colored(ColorChoice::Never, true, &env(&[])));
    }
}
