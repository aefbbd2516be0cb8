//! ARCHITECTURE.md is checked against the tree: every name it writes in backticks that denotes a file or a piece of
//! code must exist, so renaming or deleting one without updating the document fails this test, which lists each
//! missing name with its line.
//!
//! Every inline code span outside fenced blocks is read (a line break inside a span counts as a space, as in
//! Markdown) and classified by its shape. "The sources" are the `.rs` files under `crates/` (`src/` and `tests/`)
//! and `fuzz/`, read with comments removed; string literals are kept apart from the code.
//!
//! - **Paths**: a span containing `/` or ending in a file extension (`.rs`, `.md`, `.toml`, `.sql`, `.py`, `.sh`,
//!   `.lock`, `.json`, `.txt`), possibly followed by `::name` or, after a space, by arguments
//!   (`scripts/fuzz.sh [seconds]`). With a `/`, it must exist relative to the repository root, `crates/`, a
//!   `crates/<crate>/` or a `crates/<crate>/src/` (so `sqlite/mod.rs` is `crates/store/src/sqlite/mod.rs`,
//!   `api/src/lib.rs` is `crates/api/src/lib.rs` and `tests/router.rs` is `crates/api/tests/router.rs`); a trailing
//!   `/` asks for a directory. A bare file name (`store.rs`) must be the name of some file in the repository
//!   (outside hidden directories and build output).
//!   `<placeholder>` stands for one or more characters within one path component (`api/src/<resource>.rs`) and
//!   must match at least one file; no other wildcard is accepted. `file.rs::name` also needs `name` defined in that
//!   file. A span whose letters are all capitals (`LISTEN/NOTIFY`) is SQL, not a path.
//! - **Symbols** (Rust-shaped names). A name is *defined* when the sources declare it: after `fn`, `struct`,
//!   `enum`, `trait`, `type`, `const`, `static`, `union`, `mod` or `macro_rules!`, as an enum variant, as `name:`
//!   (a field, a parameter, a key of a macro's input), or as a module file or directory (`name.rs`, `name/`) or a
//!   workspace crate (`core`, `hookrelay_core`, `hookrelay-core`).
//!   - `a::b::c`: when `a` is a dependency of the workspace's `Cargo.toml` and not a workspace crate
//!     (`tokio::sync::Notify`, `#[utoipa::path]`), only that is checked. Otherwise the path is followed: a
//!     workspace crate narrows to that crate's files, a lower-case segment to the files of that module (a file or
//!     directory of that name, or an inline `mod`), a CamelCase segment to the files that declare or `impl` that
//!     type; the last segment must be defined in the files left.
//!   - `name()` must be a `fn`, `name!` a `macro_rules!`; `Type<Param>` checks every name longer than one letter.
//!   - CamelCase: defined, imported by a `use` of the sources (a dependency's type, such as `MatchedPath`), or one
//!     of the `PRELUDE` names below.
//!   - ALL_CAPS: defined (a constant), or one of the `SQL_KEYWORDS` below.
//!   - lower_snake_case or camelCase: defined, a key inside an attribute (`paths` in `#[openapi(paths(…))]`), a
//!     whole word of a string literal (SQL tables and columns, metric names, event types, status values), the
//!     snake_case form of a camelCase name defined (a wire name from serde's `rename_all`), or a package in a
//!     `Cargo.lock` or `tests/interop/requirements.txt` (libraries named in prose, such as `dtoa` or `svix`).
//!   - `a.b` (SQL `table.column`, event types such as `endpoint.disabled`): each part as a lower-case name.
//!   - `core ← store ← engine`: each part a workspace crate.
//! - **Command line**: `hookrelay <sub> …`, and `<sub> --flag …`: `<sub>` is a variant of the `Command` enum in
//!   `crates/hookrelay/src`, in kebab-case as clap names it; each `--flag`, there or alone (`--flag value`), is a
//!   field of the binary's sources (clap's derive names a flag after its field) or a string literal there
//!   (`long = "…"`).
//!   The other way round too: every subcommand is named somewhere in the document, alone (`serve`) or as
//!   `hookrelay <sub>`, so a new or renamed subcommand fails until the document lists it.
//! - **Environment variables** `HOOKRELAY_*`: a whole word of a string literal of the sources (`env = "…"`).
//! - **Kebab-case words** (`hookrelay-delivery`, `idempotency-key`, `Retry-After`): in a string literal of the
//!   sources, ignoring case, or a package in a `Cargo.lock`.
//! - **Not checked**: everything else — spans with spaces that are not commands (SQL, formulas, HTTP requests),
//!   HTTP paths starting with `/` or `…`, spans with `{`, `(`, `'`, `"`, `=`, `,`, `*` or `<…>` outside a path or a
//!   generic type, single-dash suffixes (`-wal`), numbers. `cargo test --test architecture -- --nocapture` prints
//!   them with the count of each class.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

/// File extensions that make a span a path.
const EXTENSIONS: &[&str] = &["rs", "md", "toml", "sql", "py", "sh", "lock", "json", "txt"];
/// Names Rust code uses without defining or importing them.
const PRELUDE: &str = "Box Clone Copy Debug Default Eq Err Fn FnMut FnOnce From Hash Into Iterator None Ok Option \
    Ord PartialEq PartialOrd Result Send Some String Sync Vec";
/// All-capital words that are SQL, not constants.
const SQL_KEYWORDS: &str = "COLLATE COPY DELETE FOR INSERT LISTEN LOCKED NOTIFY SELECT SKIP UPDATE WHERE";

#[test]
fn architecture_md_names_only_paths_and_symbols_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let doc = fs::read_to_string(root.join("ARCHITECTURE.md")).expect("read ARCHITECTURE.md");
    let index = Index::build(&root);
    let spans = code_spans(&doc);
    assert!(spans.len() > 100, "found only {} code spans in ARCHITECTURE.md; is the parser broken?", spans.len());

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unchecked = Vec::new();
    let mut missing = Vec::new();
    for span in &spans {
        let (class, verdict) = index.check(&span.text);
        *counts.entry(class).or_default() += 1;
        if class == "not checked" {
            unchecked.push(format!("{}: `{}`", span.line, span.text));
        }
        if let Err(why) = verdict {
            missing.push(format!("  line {}: `{}` ({class}): {why}", span.line, span.text));
        }
    }
    // The other direction for the command line, whose list in the document drifted before: every subcommand is
    // named, alone or as `hookrelay <sub>`.
    let mut subcommands: Vec<&String> = index.subcommands.iter().collect();
    subcommands.sort();
    for sub in subcommands {
        let named = |span: &Span| {
            span.text == *sub
                || span.text.strip_prefix("hookrelay ").is_some_and(|rest| rest.split(' ').next() == Some(sub.as_str()))
        };
        if !spans.iter().any(named) {
            missing.push(format!("  subcommand `{sub}` (the `Command` enum) is named nowhere in ARCHITECTURE.md"));
        }
    }
    println!("code spans by class: {counts:?}");
    println!("not checked: {}", unchecked.join(", "));
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names {} thing(s) that do not exist (fix the document, or the rules in {}):\n{}",
        missing.len(),
        file!(),
        missing.join("\n")
    );
}

/// A test of the test: each shape of span is classified as the module documentation says (on names from this
/// crate, which the document's rewrites do not move).
#[test]
fn spans_are_classified_by_shape() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let index = Index::build(&root);
    let cases: &[(&str, &str, bool)] = &[
        ("inbound/mod.rs", "path", true),
        ("crates/core/src/no_such_file.rs", "path", false),
        ("no_such_file.rs", "path", false),
        ("api/src/<resource>.rs", "path", true),
        ("api/src/<resource>.py", "path", false),
        ("core/src/cipher.rs::SecretCipher", "path", true),
        ("core/src/cipher.rs::no_such_fn", "path", false),
        ("scripts/fuzz.sh [seconds]", "path", true),
        ("LISTEN/NOTIFY", "SQL", true),
        ("SecretCipher::from_settings", "symbol path", true),
        ("SecretCipher::no_such_method", "symbol path", false),
        ("hookrelay_core::cipher", "symbol path", true),
        ("core::no_such_module", "symbol path", false),
        ("tokio::sync::Notify", "symbol path", true),
        ("SecretCipher", "name", true),
        ("NoSuchType", "name", false),
        ("from_settings", "name", true),
        ("no_such_function", "name", false),
        ("no_such_fn()", "function", false),
        ("prefixed_id!", "macro", true),
        ("NO_SUCH_CONSTANT", "name", false),
        ("hookrelay serve", "command line", true),
        ("hookrelay no-such-command", "command line", false),
        ("--no-such-flag", "command line", false),
        ("HOOKRELAY_NO_SUCH_SETTING", "environment variable", false),
        ("core ← nowhere", "crate arrows", false),
        ("/api/v1/app/{app_id}/", "not checked", true),
        ("UPDATE deliveries SET x = 1", "not checked", true),
    ];
    let mut wrong = Vec::new();
    for (text, class, exists) in cases {
        let (got_class, verdict) = index.check(text);
        if got_class != *class || verdict.is_ok() != *exists {
            wrong.push(format!("`{text}`: {got_class} {verdict:?}, expected {class} exists={exists}"));
        }
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}

struct Span {
    line: usize,
    text: String,
}

/// The inline code spans of a Markdown text with the line each starts on, outside fenced code blocks.
fn code_spans(doc: &str) -> Vec<Span> {
    let mut text = String::new();
    let mut in_fence = false;
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence {
            text.push_str(line);
        }
        text.push('\n');
    }
    let mut spans = Vec::new();
    let mut line = 1;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '`' => {
                let start = line;
                let mut span = String::new();
                for c in chars.by_ref() {
                    match c {
                        '`' => break,
                        '\n' => {
                            line += 1;
                            span.push(' ');
                        }
                        c => span.push(c),
                    }
                }
                let span = span.split_whitespace().collect::<Vec<_>>().join(" ");
                spans.push(Span { line: start, text: span });
            }
            _ => {}
        }
    }
    spans
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Rust source as tokens (identifiers and punctuation, without comments, literals and lifetimes) and the contents
/// of its string literals.
fn lex(src: &str) -> (Vec<Tok>, Vec<String>) {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let (mut toks, mut strings) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some((open, hashes)) = raw_string_start(&c, i) {
            let mut end = open + 1;
            while end < c.len() && !(c[end] == '"' && (1..=hashes).all(|h| at(end + h) == '#')) {
                end += 1;
            }
            strings.push(c[open + 1..end.min(c.len())].iter().collect());
            i = end + 1 + hashes;
        } else if ch == '"' || (ch == 'b' && at(i + 1) == '"') {
            let start = if ch == 'b' { i + 2 } else { i + 1 };
            let mut end = start;
            while end < c.len() && c[end] != '"' {
                end += if c[end] == '\\' { 2 } else { 1 };
            }
            strings.push(c[start..end.min(c.len())].iter().collect());
            i = end + 1;
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // An escaped character literal: '\n', '\'', '\u{…}'.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime or label.
                i += 1;
                while i < c.len() && is_ident_char(c[i]) {
                    i += 1;
                }
            }
        } else if is_ident_start(ch) {
            let mut start = i;
            if ch == 'r' && at(i + 1) == '#' && is_ident_start(at(i + 2)) {
                start = i + 2;
            }
            i = start;
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
            toks.push(Tok::Ident(c[start..i].iter().collect()));
        } else if ch.is_ascii_digit() {
            while i < c.len() && is_ident_char(c[i]) {
                i += 1;
            }
        } else {
            if !ch.is_whitespace() {
                toks.push(Tok::Punct(ch));
            }
            i += 1;
        }
    }
    (toks, strings)
}

/// At a raw string literal (`r"…"`, `r#"…"#`, `br"…"`), the index of its opening quote and its number of `#`s.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    let after_r = match (c.get(i), c.get(i + 1)) {
        (Some('r'), _) => i + 1,
        (Some('b'), Some('r')) => i + 2,
        _ => return None,
    };
    let mut open = after_r;
    while c.get(open) == Some(&'#') {
        open += 1;
    }
    (c.get(open) == Some(&'"')).then_some((open, open - after_r))
}

/// What one source file declares.
#[derive(Default)]
struct SourceFile {
    /// Relative to the repository root, with `/`.
    rel: String,
    /// The module path the file is at inside its crate (`sqlite/mod.rs` → `["sqlite"]`), with inline modules.
    modules: Vec<String>,
    defs: HashSet<String>,
    fns: HashSet<String>,
    macros: HashSet<String>,
    /// Declared by `struct`, `enum`, `trait`, `type` or `union`.
    types: HashSet<String>,
    /// Named in an `impl` header.
    impls: HashSet<String>,
    /// Named in a `use` declaration.
    imports: HashSet<String>,
    attr_keys: HashSet<String>,
    /// (enum, variant)
    variants: Vec<(String, String)>,
    strings: Vec<String>,
}

impl SourceFile {
    fn read(root: &Path, path: &Path) -> Self {
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        let (toks, strings) = lex(&fs::read_to_string(path).unwrap());
        let mut file = SourceFile { rel, strings, ..Default::default() };
        let parts: Vec<&str> = file.rel.split('/').collect();
        // crates/<crate>/{src,tests}/… or fuzz/<dir>/…
        let skip = if parts[0] == "crates" { 3 } else { 2 };
        for (n, part) in parts.iter().enumerate().skip(skip) {
            let name = if n + 1 == parts.len() { part.trim_end_matches(".rs") } else { part };
            if !matches!(name, "mod" | "lib" | "main") {
                file.modules.push(name.to_owned());
            }
        }
        file.scan(&toks);
        file
    }

    fn scan(&mut self, toks: &[Tok]) {
        let ident = |i: usize| match toks.get(i) {
            Some(Tok::Ident(w)) => Some(w.as_str()),
            _ => None,
        };
        let punct = |i: usize, p: char| toks.get(i) == Some(&Tok::Punct(p));
        // Open delimiters, each marked when it opens an attribute.
        let mut stack: Vec<bool> = Vec::new();
        // Nesting depth of each open enum body, and its enum.
        let mut enum_bodies: Vec<(usize, String)> = Vec::new();
        let mut pending_enum: Option<String> = None;
        let mut expect_variant = false;
        for i in 0..toks.len() {
            match &toks[i] {
                Tok::Ident(word) => {
                    let word = word.as_str();
                    if let Some(keyword) = i.checked_sub(1).and_then(ident) {
                        match keyword {
                            "fn" => {
                                self.fns.insert(word.to_owned());
                            }
                            "struct" | "enum" | "trait" | "type" | "union" => {
                                self.types.insert(word.to_owned());
                            }
                            "mod" => self.modules.push(word.to_owned()),
                            _ => {}
                        }
                        if keyword == "enum" {
                            pending_enum = Some(word.to_owned());
                        }
                        if matches!(
                            keyword,
                            "fn" | "struct" | "enum" | "trait" | "type" | "union" | "const" | "static" | "mod"
                        ) {
                            self.defs.insert(word.to_owned());
                        }
                    }
                    if i >= 2 && punct(i - 1, '!') && ident(i - 2) == Some("macro_rules") {
                        self.macros.insert(word.to_owned());
                        self.defs.insert(word.to_owned());
                    }
                    if punct(i + 1, ':') && !punct(i + 2, ':') && !(i > 0 && punct(i - 1, ':')) {
                        self.defs.insert(word.to_owned());
                    }
                    if stack.iter().any(|attr| *attr) && (punct(i + 1, '(') || punct(i + 1, '=')) {
                        self.attr_keys.insert(word.to_owned());
                    }
                    if expect_variant && enum_bodies.last().is_some_and(|(depth, _)| *depth == stack.len()) {
                        let (_, name) = enum_bodies.last().unwrap();
                        self.variants.push((name.clone(), word.to_owned()));
                        self.defs.insert(word.to_owned());
                        expect_variant = false;
                    }
                    if word == "impl" {
                        let mut j = i + 1;
                        while j < toks.len() && !punct(j, '{') && !punct(j, ';') && ident(j) != Some("where") {
                            if let Some(name) = ident(j) {
                                self.impls.insert(name.to_owned());
                            }
                            j += 1;
                        }
                    }
                    if word == "use" {
                        let mut j = i + 1;
                        while j < toks.len() && !punct(j, ';') {
                            if let Some(name) = ident(j) {
                                self.imports.insert(name.to_owned());
                            }
                            j += 1;
                        }
                    }
                }
                Tok::Punct(open @ ('{' | '(' | '[')) => {
                    let attr = *open == '['
                        && i > 0
                        && (punct(i - 1, '#') || (punct(i - 1, '!') && i > 1 && punct(i - 2, '#')));
                    stack.push(attr);
                    if *open == '{'
                        && let Some(name) = pending_enum.take()
                    {
                        enum_bodies.push((stack.len(), name));
                        expect_variant = true;
                    }
                }
                Tok::Punct('}' | ')' | ']') => {
                    if enum_bodies.last().is_some_and(|(depth, _)| *depth == stack.len()) {
                        enum_bodies.pop();
                        expect_variant = false;
                    }
                    stack.pop();
                }
                Tok::Punct(',') => {
                    if enum_bodies.last().is_some_and(|(depth, _)| *depth == stack.len()) {
                        expect_variant = true;
                    }
                }
                Tok::Punct(';') => pending_enum = None,
                Tok::Punct(_) => {}
            }
        }
    }
}

/// What the repository holds, for the checks.
struct Index {
    root: PathBuf,
    files: Vec<SourceFile>,
    /// Every file in the repository (outside hidden directories, build output and the fuzz corpus).
    paths: Vec<PathBuf>,
    /// Workspace crate names and directory names → directory under `crates/`.
    crates: BTreeMap<String, String>,
    /// The workspace's dependencies, with `_` for `-`.
    dependencies: HashSet<String>,
    /// Packages of the `Cargo.lock`s and of the interop tests' `requirements.txt`.
    packages: HashSet<String>,
    /// Whole words of all string literals.
    string_words: HashSet<String>,
    /// All string literals, lower-cased.
    strings_lower: Vec<String>,
    /// `hookrelay`'s subcommands, as typed.
    subcommands: HashSet<String>,
}

impl Index {
    fn build(root: &Path) -> Self {
        let mut paths = Vec::new();
        walk(root, root, &mut paths);
        let files: Vec<SourceFile> = paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .filter(|p| p.starts_with(root.join("crates")) || p.starts_with(root.join("fuzz")))
            // This file's strings name things that do not exist, on purpose.
            .filter(|p| !p.ends_with(file!()))
            .map(|p| SourceFile::read(root, p))
            .collect();

        let mut crates = BTreeMap::new();
        for entry in fs::read_dir(root.join("crates")).unwrap() {
            let dir = entry.unwrap().file_name().to_string_lossy().into_owned();
            let Ok(manifest) = fs::read_to_string(root.join("crates").join(&dir).join("Cargo.toml")) else { continue };
            let package = toml_values(&manifest, "name").into_iter().next().expect("package name");
            crates.insert(package.replace('-', "_"), dir.clone());
            crates.insert(package, dir.clone());
            crates.insert(dir.clone(), dir);
        }

        let workspace = fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let mut dependencies: HashSet<String> = ["std", "alloc"].map(String::from).into();
        let mut in_dependencies = false;
        for line in workspace.lines() {
            if line.starts_with('[') {
                in_dependencies = line.trim() == "[workspace.dependencies]";
            } else if in_dependencies && let Some((key, _)) = line.split_once('=') {
                dependencies.insert(key.trim().replace('-', "_"));
            }
        }

        let mut packages = HashSet::new();
        for lock in ["Cargo.lock", "fuzz/Cargo.lock"] {
            packages.extend(toml_values(&fs::read_to_string(root.join(lock)).unwrap_or_default(), "name"));
        }
        let requirements = fs::read_to_string(root.join("tests/interop/requirements.txt")).unwrap_or_default();
        for line in requirements.lines().filter(|l| !l.starts_with('#')) {
            let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
            packages.insert(name);
        }

        let mut string_words = HashSet::new();
        let mut strings_lower = Vec::new();
        for s in files.iter().flat_map(|f| &f.strings) {
            string_words.extend(s.split(|c: char| !is_ident_char(c)).filter(|w| !w.is_empty()).map(String::from));
            strings_lower.push(s.to_lowercase());
        }

        let subcommands = files
            .iter()
            .filter(|f| f.rel.starts_with("crates/hookrelay/src/"))
            .flat_map(|f| &f.variants)
            .filter(|(enum_name, _)| enum_name == "Command")
            .map(|(_, variant)| kebab_case(variant))
            .collect();

        Index {
            root: root.to_owned(),
            files,
            paths,
            crates,
            dependencies,
            packages,
            string_words,
            strings_lower,
            subcommands,
        }
    }

    /// The class of a span and whether what it names exists.
    fn check(&self, span: &str) -> (&'static str, Result<(), String>) {
        if span.contains(' ') {
            return self.check_phrase(span);
        }
        if let Some(inner) = span.strip_prefix("#[").and_then(|s| s.strip_suffix(']')) {
            return ("symbol path", self.check_symbol_path(inner));
        }
        if span.starts_with("--") {
            return ("command line", self.check_flag(span));
        }
        if span.starts_with(['-', '/', '…']) || span.starts_with("..") || span.contains("://") {
            return ("not checked", Ok(()));
        }
        if is_path_like(span) {
            if !span.chars().any(|c| c.is_ascii_lowercase()) {
                return ("SQL", check_sql(span.split('/')));
            }
            return ("path", self.check_path(span));
        }
        if span.starts_with("HOOKRELAY_") {
            let found = self.string_words.contains(span);
            return ("environment variable", found.then_some(()).ok_or_else(|| "in no string literal".into()));
        }
        if let Some(name) = span.strip_suffix("()").filter(|n| is_identifier(n)) {
            let found = self.files.iter().any(|f| f.fns.contains(name));
            return ("function", found.then_some(()).ok_or_else(|| format!("no `fn {name}`")));
        }
        if let Some(name) = span.strip_suffix('!').filter(|n| is_identifier(n)) {
            let found = self.files.iter().any(|f| f.macros.contains(name));
            return ("macro", found.then_some(()).ok_or_else(|| format!("no `macro_rules! {name}`")));
        }
        if let Some((outer, inner)) = span.strip_suffix('>').and_then(|s| s.split_once('<'))
            && is_identifier(outer)
            && inner.split(", ").all(is_identifier)
        {
            let names = std::iter::once(outer).chain(inner.split(", ")).filter(|n| n.len() > 1);
            let missing: Vec<String> = names.filter_map(|n| self.check_name(n).err()).collect();
            return ("generic type", if missing.is_empty() { Ok(()) } else { Err(missing.join("; ")) });
        }
        if !span.chars().all(|c| is_ident_char(c) || ":.-".contains(c)) {
            return ("not checked", Ok(()));
        }
        if span.contains('-') {
            let lower = span.to_lowercase();
            let found = self.strings_lower.iter().any(|s| s.contains(&lower)) || self.packages.contains(span);
            return ("kebab-case word", found.then_some(()).ok_or_else(|| "in no string literal or Cargo.lock".into()));
        }
        if span.contains("::") {
            return ("symbol path", self.check_symbol_path(span));
        }
        if span.contains('.') {
            let parts: Vec<&str> = span.split('.').collect();
            if !parts.iter().all(|p| is_identifier(p) && p.starts_with(|c: char| c.is_ascii_lowercase())) {
                return ("not checked", Ok(()));
            }
            let missing: Vec<String> = parts.iter().filter_map(|p| self.check_name(p).err()).collect();
            return ("dotted name", if missing.is_empty() { Ok(()) } else { Err(missing.join("; ")) });
        }
        if !is_identifier(span) {
            return ("not checked", Ok(()));
        }
        ("name", self.check_name(span))
    }

    /// A span with spaces: a command line, crate arrows, a path with arguments, or prose, SQL and formulas.
    fn check_phrase(&self, span: &str) -> (&'static str, Result<(), String>) {
        if span.contains('←') {
            let missing: Vec<&str> = span.split('←').map(str::trim).filter(|c| !self.crates.contains_key(*c)).collect();
            let verdict = if missing.is_empty() { Ok(()) } else { Err(format!("no crate {}", missing.join(", "))) };
            return ("crate arrows", verdict);
        }
        let words: Vec<&str> = span.split_whitespace().collect();
        let command = if words[0] == "hookrelay" { words.get(1).copied() } else { None };
        let command = command.or_else(|| words[1].starts_with("--").then_some(words[0]));
        if let Some(sub) = command {
            let mut missing = Vec::new();
            if !self.subcommands.contains(sub) {
                missing.push(format!("no subcommand `{sub}` (there are: {:?})", self.subcommands));
            }
            missing.extend(words.iter().filter(|w| w.starts_with("--")).filter_map(|f| self.check_flag(f).err()));
            return ("command line", if missing.is_empty() { Ok(()) } else { Err(missing.join("; ")) });
        }
        if words[0].starts_with("--") {
            return ("command line", self.check_flag(words[0]));
        }
        if is_path_like(words[0]) && words[0].chars().any(|c| c.is_ascii_lowercase()) {
            return ("path", self.check_path(words[0]));
        }
        ("not checked", Ok(()))
    }

    fn check_flag(&self, flag: &str) -> Result<(), String> {
        let long = flag.trim_start_matches('-');
        let field = long.replace('-', "_");
        let found = self
            .files
            .iter()
            .filter(|f| f.rel.starts_with("crates/hookrelay/src/"))
            .any(|f| f.defs.contains(&field) || f.strings.iter().any(|s| s == long));
        found.then_some(()).ok_or_else(|| format!("no field `{field}` in the binary's sources"))
    }

    /// A path relative to one of the bases, or a bare file name; with `::name`, defined in that file.
    fn check_path(&self, span: &str) -> Result<(), String> {
        let (path, symbol) = match span.split_once("::") {
            Some((path, symbol)) => (path, Some(symbol)),
            None => (span, None),
        };
        let found: Vec<PathBuf> = if path.contains('/') {
            let mut bases = vec![self.root.clone(), self.root.join("crates")];
            for dir in self.crates.values().collect::<HashSet<_>>() {
                bases.push(self.root.join("crates").join(dir));
                bases.push(self.root.join("crates").join(dir).join("src"));
            }
            let want_dir = path.ends_with('/');
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let mut found: Vec<PathBuf> = bases.iter().flat_map(|base| glob(base, &parts)).collect();
            found.retain(|p| !want_dir || p.is_dir());
            found
        } else if path.contains('<') {
            return Err("a placeholder needs a directory".into());
        } else {
            self.paths.iter().filter(|p| p.file_name().is_some_and(|n| n == path)).cloned().collect()
        };
        if found.is_empty() {
            return Err("no such file or directory under the root, crates/, crates/*/ or crates/*/src/".into());
        }
        let Some(symbol) = symbol else { return Ok(()) };
        let defined = found.iter().any(|p| {
            let rel = p.strip_prefix(&self.root).unwrap().to_string_lossy().replace('\\', "/");
            self.files.iter().any(|f| f.rel == rel && f.defs.contains(symbol))
        });
        defined.then_some(()).ok_or_else(|| format!("`{symbol}` is not defined in {path}"))
    }

    /// `a::b::c`, followed through crates, modules and types.
    fn check_symbol_path(&self, path: &str) -> Result<(), String> {
        let segments: Vec<&str> = path.split("::").collect();
        if !segments.iter().all(|s| is_identifier(s)) {
            return Err("not a Rust path".into());
        }
        let first = segments[0];
        if segments.len() > 1 && !self.crates.contains_key(first) && self.dependencies.contains(first) {
            return Ok(());
        }
        let mut scope: Vec<&SourceFile> = self.files.iter().collect();
        let (last, modules) = segments.split_last().unwrap();
        for (n, segment) in modules.iter().enumerate() {
            scope = if n == 0
                && let Some(dir) = self.crates.get(*segment)
            {
                let prefix = format!("crates/{dir}/src/");
                scope.into_iter().filter(|f| f.rel.starts_with(&prefix)).collect()
            } else if segment.starts_with(|c: char| c.is_ascii_uppercase()) {
                scope.into_iter().filter(|f| f.types.contains(*segment) || f.impls.contains(*segment)).collect()
            } else {
                scope.into_iter().filter(|f| f.modules.iter().any(|m| m == segment)).collect()
            };
            if scope.is_empty() {
                return Err(format!("`{segment}` is no crate, module or type on this path"));
            }
        }
        let defined = scope.iter().any(|f| f.defs.contains(*last) || f.modules.iter().any(|m| m == last))
            || (modules.is_empty() && self.crates.contains_key(*last));
        defined.then_some(()).ok_or_else(|| format!("`{last}` is not defined there"))
    }

    /// A single identifier, by its case.
    fn check_name(&self, name: &str) -> Result<(), String> {
        let defined = |n: &str| {
            self.crates.contains_key(n)
                || self.files.iter().any(|f| f.defs.contains(n) || f.modules.iter().any(|m| m == n))
        };
        let found = if !name.chars().any(|c| c.is_ascii_lowercase()) {
            defined(name) || SQL_KEYWORDS.split_whitespace().any(|n| n == name)
        } else if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            defined(name)
                || PRELUDE.split_whitespace().any(|n| n == name)
                || self.files.iter().any(|f| f.imports.contains(name))
        } else {
            defined(name)
                || self.files.iter().any(|f| f.attr_keys.contains(name))
                || self.string_words.contains(name)
                || (name.contains(|c: char| c.is_ascii_uppercase()) && defined(&snake_case(name)))
                || self.packages.contains(name)
                || self.packages.contains(&name.replace('_', "-"))
        };
        found.then_some(()).ok_or_else(|| format!("`{name}` is not defined in the sources"))
    }
}

fn check_sql<'a>(words: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let unknown: Vec<&str> = words.filter(|w| !SQL_KEYWORDS.split_whitespace().any(|n| n == *w)).collect();
    if unknown.is_empty() { Ok(()) } else { Err(format!("not in SQL_KEYWORDS: {}", unknown.join(", "))) }
}

/// Contains `/` (and is not a phrase), or ends in one of `EXTENSIONS`, possibly before `::name`.
fn is_path_like(span: &str) -> bool {
    let path = span.split_once("::").map_or(span, |(path, _)| path);
    path.contains('/') || path.rsplit_once('.').is_some_and(|(stem, ext)| !stem.is_empty() && EXTENSIONS.contains(&ext))
}

fn is_identifier(s: &str) -> bool {
    s.starts_with(is_ident_start) && s.chars().all(is_ident_char)
}

fn kebab_case(camel: &str) -> String {
    snake_case(camel).replace('_', "-")
}

fn snake_case(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The string values of `key = "…"` lines.
fn toml_values(toml: &str, key: &str) -> Vec<String> {
    toml.lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .collect()
}

/// Every file under `dir`, leaving out hidden directories (`.git`, virtual environments), build output and the
/// fuzz corpus.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if name.starts_with('.') || name == "target" || name == "__pycache__" || path == root.join("fuzz/corpus") {
                continue;
            }
            walk(root, &path, out);
        } else {
            out.push(path);
        }
    }
}

/// The paths under `base` that match `parts`, where `<…>` in a part stands for one or more characters.
fn glob(base: &Path, parts: &[&str]) -> Vec<PathBuf> {
    let Some((part, rest)) = parts.split_first() else { return vec![base.to_owned()] };
    let candidates: Vec<PathBuf> = match part.split_once('<').zip(part.split_once('>')) {
        None => vec![base.join(part)],
        Some(((prefix, _), (_, suffix))) => match fs::read_dir(base) {
            Err(_) => Vec::new(),
            Ok(entries) => entries
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    name.len() > prefix.len() + suffix.len() && name.starts_with(prefix) && name.ends_with(suffix)
                })
                .collect(),
        },
    };
    candidates.into_iter().filter(|p| p.exists()).flat_map(|p| glob(&p, rest)).collect()
}
