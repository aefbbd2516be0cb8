//! Records the commit the binary is built from as `HOOKRELAY_COMMIT` (shown by `--version` and in the
//! `hookrelay_build_info` metric): `git rev-parse --short=12 HEAD`, with `-dirty` when the work tree has changes,
//! or `unknown` outside a git checkout (a source tarball) or without git.

use std::process::Command;

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).map_or_else(
        || "unknown".to_owned(),
        |commit| match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(changes) if !changes.is_empty() => format!("{commit}-dirty"),
            _ => commit,
        },
    );
    println!("cargo:rustc-env=HOOKRELAY_COMMIT={commit}");
    // Rebuilt when HEAD moves (a commit, a checkout) or the index changes (files staged or committed).
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for file in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={git_dir}/{file}");
        }
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={git_dir}/{head_ref}");
        }
    }
    println!("cargo:rerun-if-env-changed=HOOKRELAY_COMMIT");
}

/// A git command's trimmed output, if it ran and succeeded.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
