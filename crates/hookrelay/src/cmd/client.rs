//! What every command that talks to a running server shares: where the server is (`--url`, `HOOKRELAY_URL`), the
//! admin token (`--token`, `HOOKRELAY_ADMIN_TOKEN`, else the one `serve` keeps in `--data-dir`/`HOOKRELAY_DATA_DIR`),
//! and a small JSON client of the API that turns error bodies into one line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

/// The server's default address, as `serve` listens by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8071";

/// Applications an error lists when `--app` is needed.
const APPS_LISTED: usize = 5;

/// How long one API call may take (streams have no such limit).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How a client command finds and authenticates to the server.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// The hookrelay server's base URL
    #[arg(long, global = true, env = "HOOKRELAY_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// Admin token [default: the one `hookrelay serve` stored in the data directory]
    #[arg(long, global = true, env = "HOOKRELAY_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The server's data directory, to read its generated admin token from
    #[arg(long, global = true, env = "HOOKRELAY_DATA_DIR", default_value = "hookrelay-data")]
    pub data_dir: PathBuf,
}

impl ClientArgs {
    /// A client of the server these arguments name.
    pub fn connect(&self) -> anyhow::Result<Api> {
        let token = resolve_token(self.token.as_deref(), &self.data_dir.join(crate::admin_token::TOKEN_FILE))?;
        Api::new(&self.url, token)
    }
}

/// The token from `--token`/`HOOKRELAY_ADMIN_TOKEN`, else the one `hookrelay serve` stored in the data dir.
pub fn resolve_token(given: Option<&str>, stored: &Path) -> anyhow::Result<String> {
    if let Some(token) = given.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(token.to_owned());
    }
    match std::fs::read_to_string(stored) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        _ => bail!(
            "no admin token: pass --token, set HOOKRELAY_ADMIN_TOKEN, or point --data-dir (HOOKRELAY_DATA_DIR) at the \
         server's data directory (no token at {})",
            stored.display()
        ),
    }
}

/// A small client of the hookrelay API.
pub struct Api {
    http: reqwest::Client,
    base: reqwest::Url,
    token: String,
}

impl Api {
    pub fn new(base: &str, token: String) -> anyhow::Result<Self> {
        let base = reqwest::Url::parse(base).with_context(|| format!("--url `{base}` is not a URL"))?;
        if base.cannot_be_a_base() {
            bail!("--url `{base}` must be an http(s) URL such as http://127.0.0.1:8071");
        }
        // reqwest is built without a bundled TLS provider; use ring, as the dispatcher does. Installing twice is
        // harmless (the second call reports the first one and changes nothing).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self { http, base, token })
    }

    /// The URL of the given path segments under the base, each segment escaped.
    fn url(&self, segments: &[&str]) -> anyhow::Result<reqwest::Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| anyhow!("--url cannot take a path"))?
            .pop_if_empty()
            .extend(segments)
            .push("");
        Ok(url)
    }

    /// A GET with the token and no time limit, for the streaming routes (`listen`, `tail`).
    pub fn stream(&self, segments: &[&str], query: &[(&str, &str)]) -> anyhow::Result<reqwest::RequestBuilder> {
        let mut url = self.url(segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(self.http.get(url).bearer_auth(&self.token))
    }

    /// A POST without the token (the ingest route authenticates by the provider's signature), with the API
    /// calls' time limit.
    pub fn post_without_token(&self, segments: &[&str]) -> anyhow::Result<reqwest::RequestBuilder> {
        Ok(self.http.post(self.url(segments)?).timeout(REQUEST_TIMEOUT))
    }

    /// The server's base URL, for messages.
    pub fn base(&self) -> &reqwest::Url {
        &self.base
    }

    pub async fn post(&self, segments: &[&str], body: &Value) -> anyhow::Result<Value> {
        let url = self.url(segments)?;
        let request = self.http.post(url.clone()).bearer_auth(&self.token).timeout(REQUEST_TIMEOUT).json(body);
        answer(request.send().await.with_context(|| format!("cannot reach hookrelay at {}", self.base))?).await
    }

    pub async fn get(&self, segments: &[&str]) -> anyhow::Result<Value> {
        let url = self.url(segments)?;
        let request = self.http.get(url).bearer_auth(&self.token).timeout(REQUEST_TIMEOUT);
        answer(request.send().await.with_context(|| format!("cannot reach hookrelay at {}", self.base))?).await
    }

    /// GET, with `None` for a 404 (the thing does not exist yet).
    pub async fn get_optional(&self, segments: &[&str]) -> anyhow::Result<Option<Value>> {
        let url = self.url(segments)?;
        let request = self.http.get(url).bearer_auth(&self.token).timeout(REQUEST_TIMEOUT);
        let response = request.send().await.with_context(|| format!("cannot reach hookrelay at {}", self.base))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        answer(response).await.map(Some)
    }

    /// The id of the server's one application (what `--app` means when left out), or an error listing a few
    /// to choose from.
    pub async fn only_application(&self) -> anyhow::Result<String> {
        let listed = self.get(&["api", "v1", "app"]).await?;
        let apps = listed["data"].as_array().ok_or_else(|| anyhow!("unexpected answer: {listed}"))?;
        let complete = listed["done"].as_bool().unwrap_or(false);
        match apps.as_slice() {
            [] => bail!("the server has no application yet: create one (POST /api/v1/app/) first"),
            [app] if complete => {
                app["id"].as_str().map(str::to_owned).ok_or_else(|| anyhow!("unexpected answer: {app}"))
            }
            _ => {
                let names: Vec<String> = apps
                    .iter()
                    .take(APPS_LISTED)
                    .map(|app| {
                        let id = app["id"].as_str().unwrap_or("?");
                        match app["uid"].as_str() {
                            Some(uid) => format!("{id} ({uid})"),
                            None => id.to_owned(),
                        }
                    })
                    .collect();
                let more = if apps.len() > APPS_LISTED || !complete { ", …" } else { "" };
                bail!("the server has several applications; choose one with --app: {}{more}", names.join(", "))
            }
        }
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> anyhow::Result<Value> {
        let url = self.url(segments)?;
        let request = self.http.patch(url).bearer_auth(&self.token).timeout(REQUEST_TIMEOUT).json(body);
        answer(request.send().await.with_context(|| format!("cannot reach hookrelay at {}", self.base))?).await
    }

    pub async fn delete(&self, segments: &[&str]) -> anyhow::Result<Value> {
        let url = self.url(segments)?;
        let request = self.http.delete(url).bearer_auth(&self.token).timeout(REQUEST_TIMEOUT);
        answer(request.send().await.with_context(|| format!("cannot reach hookrelay at {}", self.base))?).await
    }
}

/// The JSON body of a 2xx response, or an error carrying the server's explanation.
async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await.context("cannot read hookrelay's response")?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        return Ok(body);
    }
    bail!("hookrelay answered {status}: {}", explain(&body))
}

/// Turns an error body (`{code, detail}` or a 422's `{detail: [{loc, msg}]}`) into one line.
fn explain(body: &Value) -> String {
    match &body["detail"] {
        Value::String(detail) => detail.clone(),
        Value::Array(problems) => problems
            .iter()
            .map(|p| {
                let field = p["loc"].as_array().and_then(|loc| loc.last()).and_then(Value::as_str).unwrap_or("");
                let msg = p["msg"].as_str().unwrap_or("invalid");
                if field.is_empty() { msg.to_owned() } else { format!("{field}: {msg}") }
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn error_bodies_become_one_line() {
        let validation =
            json!({"detail": [{"loc": ["body", "since"], "msg": "is in the future", "type": "value_error"}]});
        assert_eq!(explain(&validation), "since: is in the future");
        assert_eq!(
            explain(&json!({"code": "not_found", "detail": "endpoint `x` not found"})),
            "endpoint `x` not found"
        );
        assert_eq!(explain(&json!("plain text")), "\"plain text\"");
    }

    #[test]
    fn the_token_comes_from_the_flag_or_the_data_dir() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("admin-token");
        assert_eq!(resolve_token(Some(" t1 "), &file).ok(), Some("t1".to_owned()));
        assert!(resolve_token(None, &file).is_err());
        std::fs::write(&file, "t2\n").expect("write token");
        assert_eq!(resolve_token(None, &file).ok(), Some("t2".to_owned()));
        assert_eq!(resolve_token(Some(""), &file).ok(), Some("t2".to_owned()));
    }

    #[test]
    fn urls_escape_segments_and_keep_a_base_path() {
        let api = Api::new("http://127.0.0.1:8071/hr/", "t".into()).expect("valid");
        let url = api.url(&["api", "v1", "app", "my app", "endpoint"]).expect("url");
        assert_eq!(url.as_str(), "http://127.0.0.1:8071/hr/api/v1/app/my%20app/endpoint/");
        assert!(Api::new("not a url", "t".into()).is_err());
    }
}
