//! Progress bars and spinners of the long commands (recover, migrate, backup), with indicatif. They draw on stderr
//! and only when stderr is a terminal: piped or redirected, they print nothing, so logs and scripts see only the
//! commands' own lines, and stdout keeps only the result.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a spinner moves while nothing else changes.
const TICK: Duration = Duration::from_millis(120);

/// A bar of `len` steps drawn with `template` (indicatif's syntax: `{bar:30} {pos}/{len} {msg}`, …).
pub fn bar(len: u64, template: &str) -> ProgressBar {
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ");
    ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()).with_style(style)
}

/// A spinner with `message` and the time elapsed, for a step whose size is not known in advance.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(style);
    spinner.set_message(message.into());
    spinner.enable_steady_tick(TICK);
    spinner
}
