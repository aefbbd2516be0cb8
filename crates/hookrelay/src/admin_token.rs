//! The admin token: taken from configuration, or generated once and kept in the data directory.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

const TOKEN_FILE: &str = "admin-token";

/// Where the token came from, so `serve` can tell the user once how to use a new one.
pub enum TokenSource {
    Configured,
    Stored,
    Generated,
}

/// The configured token, else the one stored in `data_dir`, else a new one written there (mode 0600).
pub fn resolve(configured: Option<String>, data_dir: &Path) -> anyhow::Result<(String, TokenSource)> {
    if let Some(token) = configured.filter(|t| !t.trim().is_empty()) {
        return Ok((token.trim().to_owned(), TokenSource::Configured));
    }
    let path = data_dir.join(TOKEN_FILE);
    if let Ok(stored) = std::fs::read_to_string(&path)
        && !stored.trim().is_empty()
    {
        return Ok((stored.trim().to_owned(), TokenSource::Stored));
    }
    let token = generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{token}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok((token, TokenSource::Generated))
}

fn generate() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = [0u8; 40];
    rand::fill(&mut bytes);
    let body: String = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    format!("hr_{body}")
}
