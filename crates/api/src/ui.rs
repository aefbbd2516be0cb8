//! The browser UI: the operator dashboard at `/ui/` and the consumer portal at `/app-portal`, static pages
//! embedded in the binary (`ui/`, listed by `build.rs`) that call the JSON API with a bearer token like any other
//! client. The server keeps no session: the dashboard's token lives in the browser's session storage, the
//! portal's arrives in the URL's fragment, which browsers never send.
//!
//! Every page is served with a strict Content-Security-Policy (scripts, styles and images from this server only,
//! no inline script, API calls to this origin only). The dashboard may not be framed; the portal may be, by the
//! origins the operator lists (`HOOKRELAY_PORTAL_FRAME_ANCESTORS`), so a SaaS can embed it in its own app.
//! The portal's title, accent colour and logo come from configuration ([`UiSettings`]).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::ApiState;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

/// The largest logo file accepted, so configuration cannot make every page load a huge image.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;

/// How the UI looks and where the portal may be embedded; `Default` is hookrelay's own look, not embeddable.
#[derive(Clone, Debug, Default)]
pub struct UiSettings {
    /// Shown in the portal's header and the page titles instead of "hookrelay".
    pub title: Option<String>,
    /// `#rgb` or `#rrggbb`: buttons, links and the header's bar.
    pub accent_color: Option<String>,
    /// The portal's logo, served at `/ui/logo`.
    pub logo: Option<Logo>,
    /// CSP `frame-ancestors` sources allowed to embed the portal (checked by [`parse_frame_ancestors`]); empty:
    /// the portal may not be framed.
    pub portal_frame_ancestors: Vec<String>,
    /// Serve the pages from this folder (a checkout's `crates/api/ui`) instead of the embedded copy, so a change
    /// to the UI shows on reload without rebuilding the binary. For UI development only.
    pub files_dir: Option<std::path::PathBuf>,
}

/// An image file read at start.
#[derive(Clone, Debug)]
pub struct Logo {
    pub content_type: &'static str,
    pub bytes: Arc<[u8]>,
}

impl Logo {
    /// The logo from a file's name and contents: PNG, JPEG, SVG, WebP or GIF, at most [`MAX_LOGO_BYTES`].
    pub fn from_file(name: &str, bytes: Vec<u8>) -> Result<Logo, String> {
        let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
        let content_type = match extension.as_str() {
            "png" => "image/png",
            "jpg" | "jpeg" => "image/jpeg",
            "svg" => "image/svg+xml",
            "webp" => "image/webp",
            "gif" => "image/gif",
            _ => return Err(format!("{name}: the logo must be a .png, .jpg, .svg, .webp or .gif file")),
        };
        if bytes.len() > MAX_LOGO_BYTES {
            return Err(format!("{name}: the logo is {} bytes; at most {MAX_LOGO_BYTES} are allowed", bytes.len()));
        }
        Ok(Logo { content_type, bytes: bytes.into() })
    }
}

/// Checks an accent colour: `#rgb` or `#rrggbb`.
pub fn parse_accent_color(value: &str) -> Result<String, String> {
    let hex = value.strip_prefix('#').unwrap_or("");
    if (hex.len() == 3 || hex.len() == 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(format!("{value:?} is not a colour: use #rgb or #rrggbb, e.g. #4f46e5"))
    }
}

/// Reads the origins allowed to embed the portal: a space- or comma-separated list of `'self'` and
/// `scheme://host[:port]` sources (a leading `*.` in the host allowed, as CSP allows), e.g.
/// `https://app.example.com 'self'`. Anything else is refused, so a value cannot add directives to the policy.
pub fn parse_frame_ancestors(value: &str) -> Result<Vec<String>, String> {
    let mut sources = Vec::new();
    for source in value.split([' ', ',']).filter(|s| !s.is_empty()) {
        if source == "'self'" {
            sources.push(source.to_owned());
            continue;
        }
        let (scheme, rest) = source.split_once("://").ok_or_else(|| {
            format!("{source:?}: a frame ancestor is 'self' or an origin such as https://app.example.com")
        })?;
        let host_port = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        };
        let host_chars = host.strip_prefix("*.").unwrap_or(host);
        let valid = matches!(scheme, "http" | "https")
            && !host_chars.is_empty()
            && host_chars.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            return Err(format!(
                "{source:?}: a frame ancestor is 'self' or an origin such as https://app.example.com (no path)"
            ));
        }
        sources.push(format!("{scheme}://{host_port}"));
    }
    Ok(sources)
}

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(dashboard))
        .route("/ui/theme.css", get(theme_css))
        .route("/ui/theme.json", get(theme_json))
        .route("/ui/logo", get(logo))
        .route("/ui/{*path}", get(asset))
        .route("/app-portal", get(portal))
        .route("/app-portal/", get(portal))
}

/// The policy every UI response carries; `frame_ancestors` is `'none'` except for the portal page.
fn csp(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}"
    )
}

struct Asset {
    bytes: &'static [u8],
    etag: HeaderValue,
}

fn assets() -> &'static HashMap<&'static str, Asset> {
    static ASSETS: OnceLock<HashMap<&'static str, Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        assets::ASSETS
            .iter()
            .map(|(path, bytes)| {
                let digest = Sha256::digest(bytes);
                let etag = format!("\"{}\"", digest[..12].iter().map(|b| format!("{b:02x}")).collect::<String>());
                (*path, Asset { bytes, etag: HeaderValue::from_str(&etag).expect("hex is a valid header value") })
            })
            .collect()
    })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("txt") | Some("md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Headers every UI response has: the policy, no sniffing, no referrer (a page's URL never leaves it), and
/// revalidation on every load so an upgraded server's pages are used at once.
fn secured(mut response: Response, frame_ancestors: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp(frame_ancestors)).expect("checked sources"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if frame_ancestors == "'none'" {
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

async fn serve_asset(ui: &UiSettings, path: &str, request: &HeaderMap, frame_ancestors: &str) -> Response {
    let not_found = || secured((StatusCode::NOT_FOUND, "not found\n").into_response(), "'none'");
    let content_type = [(CONTENT_TYPE, HeaderValue::from_static(content_type(path)))];
    if let Some(dir) = &ui.files_dir {
        // Only plain names below the folder: no `..`, no absolute paths.
        let relative = std::path::Path::new(path);
        if !relative.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
            return not_found();
        }
        return match tokio::fs::read(dir.join(relative)).await {
            Ok(bytes) => secured((content_type, bytes).into_response(), frame_ancestors),
            Err(_) => not_found(),
        };
    }
    let Some(asset) = assets().get(path) else { return not_found() };
    if request.get(IF_NONE_MATCH).is_some_and(|tag| tag == asset.etag) {
        return secured((StatusCode::NOT_MODIFIED, [(ETAG, asset.etag.clone())]).into_response(), frame_ancestors);
    }
    secured((content_type, [(ETAG, asset.etag.clone())], asset.bytes).into_response(), frame_ancestors)
}

async fn dashboard(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    serve_asset(&state.ui, "dashboard/index.html", &headers, "'none'").await
}

async fn portal(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let ancestors = &state.ui.portal_frame_ancestors;
    let frame_ancestors = if ancestors.is_empty() { "'none'".to_owned() } else { ancestors.join(" ") };
    serve_asset(&state.ui, "portal/index.html", &headers, &frame_ancestors).await
}

async fn asset(State(state): State<ApiState>, Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve_asset(&state.ui, &path, &headers, "'none'").await
}

async fn theme_css(State(state): State<ApiState>) -> Response {
    let css = match &state.ui.accent_color {
        Some(color) => format!(":root {{ --accent: {color}; }}\n"),
        None => String::from("/* the default theme: no accent colour configured */\n"),
    };
    secured(([(CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response(), "'none'")
}

async fn theme_json(State(state): State<ApiState>) -> Response {
    let body = serde_json::json!({
        "title": state.ui.title.as_deref().unwrap_or("hookrelay"),
        "logo": state.ui.logo.as_ref().map(|_| "/ui/logo"),
    });
    secured(axum::Json(body).into_response(), "'none'")
}

async fn logo(State(state): State<ApiState>) -> Response {
    match &state.ui.logo {
        Some(logo) => secured(([(CONTENT_TYPE, logo.content_type)], logo.bytes.to_vec()).into_response(), "'none'"),
        None => secured((StatusCode::NOT_FOUND, "no logo configured\n").into_response(), "'none'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ancestors_are_origins_only() {
        assert_eq!(
            parse_frame_ancestors("https://app.example.com, 'self' http://localhost:3000").unwrap(),
            ["https://app.example.com", "'self'", "http://localhost:3000"]
        );
        assert_eq!(parse_frame_ancestors("https://*.example.com/").unwrap(), ["https://*.example.com"]);
        assert_eq!(parse_frame_ancestors("").unwrap(), Vec::<String>::new());
        for bad in [
            "app.example.com",
            "https://example.com; script-src *",
            "javascript://x",
            "https://example.com/path",
            "'unsafe-inline'",
            "*",
            "https://",
            "https://example.com:",
        ] {
            assert!(parse_frame_ancestors(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn accent_colours() {
        assert_eq!(parse_accent_color("#4F46E5").unwrap(), "#4f46e5");
        assert_eq!(parse_accent_color("#abc").unwrap(), "#abc");
        for bad in ["4f46e5", "#12345", "red", "#12345g", "#fff; } body { display:none"] {
            assert!(parse_accent_color(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn logos() {
        assert_eq!(Logo::from_file("brand.SVG", b"<svg/>".to_vec()).unwrap().content_type, "image/svg+xml");
        assert!(Logo::from_file("brand.exe", vec![0]).is_err());
        assert!(Logo::from_file("big.png", vec![0; MAX_LOGO_BYTES + 1]).is_err());
    }

    #[test]
    fn the_pages_are_embedded() {
        for page in ["dashboard/index.html", "portal/index.html", "shared/api.js", "shared/style.css"] {
            assert!(assets().contains_key(page), "{page} is not embedded");
        }
    }
}
