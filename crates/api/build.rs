//! Embeds the browser UI (`ui/`: plain HTML, CSS and ES modules, no build step) into the binary: writes
//! `$OUT_DIR/ui_assets.rs`, one `include_bytes!` per file, which `src/ui.rs` serves. Listing the folder here,
//! rather than by hand in the source, means a new page or module is served as soon as it is added.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("ui");
    // A directory here makes cargo rerun the script when any file below it changes, is added or is removed.
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut out =
        String::from("/// Every file of `ui/`: (path below `ui/`, bytes).\npub static ASSETS: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).expect("below ui/").to_str().expect("UTF-8 file names in ui/");
        let relative = relative.replace('\\', "/");
        writeln!(out, "    ({relative:?}, include_bytes!({:?})),", file.display().to_string()).expect("string write");
    }
    out.push_str("];\n");
    let target = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("ui_assets.rs");
    fs::write(target, out).expect("cannot write ui_assets.rs");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        } else if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
