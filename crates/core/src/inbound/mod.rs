//! Inbound webhook verification: one file per provider behind the small [`Verifier`] trait. A verifier is a pure
//! function of the raw body bytes, the headers, the source's secrets and the clock; it says `Ok` or the precise
//! [`Rejection`]. Each provider also knows where its event id and event type are, and can sign a body the way
//! the provider does (for tests and `hookrelay sign`).
//!
//! Usable on its own: `Provider::Stripe.verify(&request, &["whsec_…"], now, 300)` checks a Stripe webhook.

mod fields;
mod github;
mod hmac_sha256;
pub(crate) mod mac;
mod options;
mod shopify;
mod slack;
mod standard;
mod stripe;

pub use fields::{EventFields, body_field};
pub use hmac_sha256::{GenericHmac, SignatureEncoding};
pub use options::OptionError;
pub use slack::Slack;

/// A request's headers, looked up case-insensitively (HTTP header names are).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    pairs: Vec<(String, String)>,
}

impl Headers {
    /// Headers from `(name, value)` pairs in any case. A name given twice keeps both values; `get` returns the
    /// first.
    pub fn from_pairs<N: AsRef<str>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        Self {
            pairs: pairs.into_iter().map(|(name, value)| (name.as_ref().to_ascii_lowercase(), value.into())).collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// A header that must be present and not blank.
    fn require(&self, name: &str) -> Result<&str, Rejection> {
        match self.get(name).map(str::trim) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(Rejection::MissingHeader(name.to_owned())),
        }
    }
}

/// A request as it reached hookrelay: headers and the raw, unparsed body.
#[derive(Clone, Copy, Debug)]
pub struct InboundRequest<'a> {
    pub headers: &'a Headers,
    pub body: &'a [u8],
}

/// Why a request was refused. The text names headers and rules, never a secret or a signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the `{0}` header is missing")]
    MissingHeader(String),
    #[error("the `{header}` header is malformed: {problem}")]
    MalformedHeader { header: String, problem: String },
    #[error(
        "no signature matches any of the source's secrets (check the secret, and that the body is not re-encoded on the way)"
    )]
    SignatureMismatch,
    #[error(
        "the signed timestamp is {age_secs} s from now, outside the {tolerance_secs} s tolerance (a replay, or a clock that is off)"
    )]
    TimestampOutsideTolerance { age_secs: i64, tolerance_secs: i64 },
}

impl Rejection {
    /// A short stable name, used as the error `code`, in statistics and in logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedHeader { .. } => "malformed_header",
            Self::SignatureMismatch => "signature_mismatch",
            Self::TimestampOutsideTolerance { .. } => "timestamp_outside_tolerance",
        }
    }

    /// Whether the request could not even be checked (400) rather than failing the check (401).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::MissingHeader(_) | Self::MalformedHeader { .. })
    }

    fn malformed(header: &str, problem: impl Into<String>) -> Self {
        Self::MalformedHeader { header: header.to_owned(), problem: problem.into() }
    }
}

/// A secret that cannot be used with a provider, said at configuration time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadSecret(pub String);

/// What one provider's scheme does.
pub trait Verifier {
    /// Checks that the request was signed with one of `secrets` (the current one first, then those still valid
    /// after a rotation) and, for schemes that sign a timestamp, that it is within `tolerance_secs` of `now_secs`.
    fn verify(
        &self,
        request: &InboundRequest<'_>,
        secrets: &[&str],
        now_secs: i64,
        tolerance_secs: i64,
    ) -> Result<(), Rejection>;

    /// The headers the provider would send with `body`, signed with `secret` at `timestamp_secs`; `event_id` goes
    /// into the provider's delivery-id header where it has one.
    fn sign(&self, body: &[u8], secret: &str, timestamp_secs: i64, event_id: &str) -> Vec<(String, String)>;

    /// The provider's id for the event, which a retry of the same event repeats.
    fn event_id(&self, request: &InboundRequest<'_>) -> Option<String>;

    /// The event's type as the provider names it, e.g. `invoice.paid` or `push`.
    fn event_type(&self, request: &InboundRequest<'_>) -> Option<String>;

    /// Refuses a secret the scheme cannot use (e.g. a Standard Webhooks secret that is not base64).
    fn check_secret(&self, _secret: &str) -> Result<(), BadSecret> {
        Ok(())
    }
}

/// The providers hookrelay verifies, with their options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provider {
    /// `Stripe-Signature: t=…,v1=<hex>`.
    Stripe,
    /// Standard Webhooks (Svix, Clerk, …): `svix-*` or `webhook-*` headers, `v1,<base64>` signatures.
    Svix,
    /// `X-Hub-Signature-256: sha256=<hex>`.
    Github,
    /// `X-Shopify-Hmac-Sha256: <base64>`.
    Shopify,
    /// `X-Slack-Signature: v0=<hex>` over `v0:{ts}:{body}`.
    Slack(Slack),
    /// Home-grown senders: an HMAC-SHA256 of the body in a header of their choosing.
    HmacSha256(GenericHmac),
}

impl Provider {
    /// Every provider name, as the API and CLI spell it.
    pub const NAMES: [&'static str; 6] = ["stripe", "svix", "github", "shopify", "slack", "hmac-sha256"];

    pub fn name(&self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Svix => "svix",
            Self::Github => "github",
            Self::Shopify => "shopify",
            Self::Slack(_) => "slack",
            Self::HmacSha256(_) => "hmac-sha256",
        }
    }

    /// The provider of this name with default options.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "stripe" => Self::Stripe,
            "svix" => Self::Svix,
            "github" => Self::Github,
            "shopify" => Self::Shopify,
            "slack" => Self::Slack(Slack::default()),
            "hmac-sha256" => Self::HmacSha256(GenericHmac::default()),
            _ => return None,
        })
    }

    /// The header that names the event type, for providers that send it in a header rather than in the body
    /// (`X-GitHub-Event: push`, `X-Shopify-Topic: orders/create`).
    pub fn event_type_header(&self) -> Option<&'static str> {
        match self {
            Self::Github => Some(github::EVENT),
            Self::Shopify => Some(shopify::TOPIC),
            Self::Stripe | Self::Svix | Self::Slack(_) | Self::HmacSha256(_) => None,
        }
    }

    fn verifier(&self) -> &dyn Verifier {
        match self {
            Self::Stripe => &stripe::Stripe,
            Self::Svix => &standard::StandardWebhooks,
            Self::Github => &github::Github,
            Self::Shopify => &shopify::Shopify,
            Self::Slack(slack) => slack,
            Self::HmacSha256(generic) => generic,
        }
    }
}

impl Verifier for Provider {
    fn verify(
        &self,
        request: &InboundRequest<'_>,
        secrets: &[&str],
        now_secs: i64,
        tolerance_secs: i64,
    ) -> Result<(), Rejection> {
        self.verifier().verify(request, secrets, now_secs, tolerance_secs)
    }

    fn sign(&self, body: &[u8], secret: &str, timestamp_secs: i64, event_id: &str) -> Vec<(String, String)> {
        self.verifier().sign(body, secret, timestamp_secs, event_id)
    }

    fn event_id(&self, request: &InboundRequest<'_>) -> Option<String> {
        self.verifier().event_id(request)
    }

    fn event_type(&self, request: &InboundRequest<'_>) -> Option<String> {
        self.verifier().event_type(request)
    }

    fn check_secret(&self, secret: &str) -> Result<(), BadSecret> {
        self.verifier().check_secret(secret)
    }
}

/// Checks a signed timestamp (unix seconds, as text) against the clock.
fn check_timestamp(header: &str, value: &str, now_secs: i64, tolerance_secs: i64) -> Result<i64, Rejection> {
    let timestamp: i64 =
        value.trim().parse().map_err(|_| Rejection::malformed(header, "the timestamp must be unix seconds"))?;
    let age_secs = now_secs.saturating_sub(timestamp);
    if age_secs.abs() > tolerance_secs {
        return Err(Rejection::TimestampOutsideTolerance { age_secs, tolerance_secs });
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random header values built from the pieces the parsers look for, so that malformed variants of real
    /// headers (not just noise) reach every branch. (Coverage-guided fuzzing of the same parsers: fuzz/.)
    fn random_value(rng: &mut impl rand::Rng) -> String {
        const PIECES: [&str; 16] = [
            "t=",
            "v1=",
            "v0=",
            "v1,",
            "sha256=",
            ",",
            " ",
            "=",
            "1700000000",
            "-1",
            "ab",
            "zz",
            "é",
            "AAAA",
            "==",
            "",
        ];
        (0..rng.random_range(0..8)).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect()
    }

    #[test]
    fn malformed_headers_are_rejected_without_panicking() {
        let mut rng = rand::rng();
        let names = [
            "Stripe-Signature",
            "svix-id",
            "svix-timestamp",
            "svix-signature",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "X-Hub-Signature-256",
            "X-Shopify-Hmac-Sha256",
            "X-Slack-Signature",
            "X-Slack-Request-Timestamp",
            "X-Webhook-Signature",
        ];
        for name in Provider::NAMES {
            let provider = Provider::from_name(name).expect("known");
            for _ in 0..2_000 {
                let headers = Headers::from_pairs(names.iter().map(|header| (*header, random_value(&mut rng))));
                let request = InboundRequest { headers: &headers, body: b"{}" };
                let verdict =
                    provider.verify(&request, &["whsec_c2VjcmV0LXRoZS1pbnB1dC1jYW5ub3Qta25vdw=="], 1_700_000_000, 300);
                assert!(verdict.is_err(), "{name} accepted {headers:?}");
            }
        }
    }

    #[test]
    fn the_event_type_header_is_where_the_provider_reads_the_type() {
        for provider in [Provider::Github, Provider::Shopify] {
            let header = provider.event_type_header().expect("GitHub and Shopify name the event type in a header");
            let headers = Headers::from_pairs([(header, "issues")]);
            let request = InboundRequest { headers: &headers, body: b"{}" };
            assert_eq!(provider.event_type(&request).as_deref(), Some("issues"), "{}", provider.name());
        }
        for name in ["stripe", "svix", "slack", "hmac-sha256"] {
            assert_eq!(Provider::from_name(name).expect("known").event_type_header(), None, "{name}");
        }
    }

    #[test]
    fn rejections_name_their_status_class() {
        assert!(Rejection::MissingHeader("x".into()).is_malformed());
        assert!(Rejection::malformed("x", "y").is_malformed());
        assert!(!Rejection::SignatureMismatch.is_malformed());
        assert!(!Rejection::TimestampOutsideTolerance { age_secs: 1, tolerance_secs: 0 }.is_malformed());
    }
}
