//! `hookrelay listen`: a local receiver for trying hookrelay out. It prints every webhook it receives and,
//! given the endpoint's secret, checks the Standard Webhooks signature the way a customer's code would.

use std::net::SocketAddr;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use hookrelay_core::signing::EndpointSecret;
use hookrelay_core::time::now_ms;

/// How far a webhook's timestamp may be from now, as the Standard Webhooks libraries allow.
const TOLERANCE_SECS: i64 = 300;

#[derive(clap::Args, Debug)]
pub struct ListenArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// The endpoint's signing secret (`whsec_…`), to verify signatures
    #[arg(long, env = "HOOKRELAY_LISTEN_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// HTTP status to answer with (e.g. 500 to watch retries)
    #[arg(long, default_value_t = 200)]
    pub status: u16,
}

pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let secret = args.secret.as_deref().map(EndpointSecret::parse).transpose()?;
    let status = StatusCode::from_u16(args.status)?;
    let app = axum::Router::new().fallback(any(move |headers: HeaderMap, body: axum::body::Bytes| {
        let secret = secret.clone();
        async move {
            println!("{}", describe(&headers, &body, secret.as_ref()));
            status
        }
    }));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{} — point an endpoint at it", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn describe(headers: &HeaderMap, body: &[u8], secret: Option<&EndpointSecret>) -> String {
    let id = header(headers, "webhook-id");
    let timestamp = header(headers, "webhook-timestamp");
    let verdict = match secret {
        None => "not checked (pass --secret whsec_… to verify)".to_owned(),
        Some(secret) => verify(secret, id, timestamp, header(headers, "webhook-signature"), body),
    };
    format!("--- webhook {id} at {timestamp}\nsignature: {verdict}\n{}\n", String::from_utf8_lossy(body))
}

fn verify(secret: &EndpointSecret, id: &str, timestamp: &str, signatures: &str, body: &[u8]) -> String {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return "INVALID (missing or malformed webhook-timestamp)".into();
    };
    if (now_ms() / 1000 - ts).abs() > TOLERANCE_SECS {
        return "INVALID (timestamp outside the 5-minute tolerance)".into();
    }
    let expected = secret.sign(id, ts, body);
    if signatures.split(' ').any(|candidate| candidate == expected) {
        "valid".into()
    } else {
        "INVALID (no signature matches this secret)".into()
    }
}
