//! The admin token: taken from configuration, or generated once and kept in the data directory.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use hookrelay_store::private_files;

pub const TOKEN_FILE: &str = "admin-token";

/// Where the token came from, so `serve` can tell the user once how to use a new one.
pub enum TokenSource {
    Configured,
    Stored,
    Generated,
}

/// The configured token, else the one stored in `data_dir` (narrowed to mode 0600 if an older version left it
/// readable by others), else a new one written there (mode 0600, in a directory created 0700).
pub fn resolve(configured: Option<String>, data_dir: &Path) -> anyhow::Result<(String, TokenSource)> {
    if let Some(token) = configured.filter(|t| !t.trim().is_empty()) {
        return Ok((token.trim().to_owned(), TokenSource::Configured));
    }
    let path = data_dir.join(TOKEN_FILE);
    if let Ok(stored) = std::fs::read_to_string(&path)
        && !stored.trim().is_empty()
    {
        private_files::restrict(&path).with_context(|| format!("cannot make {} private", path.display()))?;
        return Ok((stored.trim().to_owned(), TokenSource::Stored));
    }
    let token = generate();
    private_files::create_dir(data_dir).with_context(|| format!("cannot create directory {}", data_dir.display()))?;
    // An empty or blank file may be there; it is replaced.
    let (mut file, _) = private_files::open(&path, std::fs::OpenOptions::new().write(true).create(true).truncate(true))
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{token}")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok((token, TokenSource::Generated))
}

fn generate() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = [0u8; 40];
    rand::fill(&mut bytes);
    let body: String = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    format!("hr_{body}")
}
