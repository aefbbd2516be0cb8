//! TLS to PostgreSQL, with rustls: libpq's `sslmode` (`disable`, `prefer`, `require`, `verify-ca`,
//! `verify-full`), `sslrootcert` (a CA file, or `system` for the operating system's roots) and `sslcert` +
//! `sslkey` (a client certificate), read from the URL's query as libpq reads them. tokio-postgres knows only
//! `disable`, `prefer` and `require` and no file options, so those are taken out of the URL here and the rest is
//! left to it.
//!
//! What each mode checks, as libpq does: `prefer` and `require` encrypt without checking who answers (`require`
//! with an `sslrootcert` checks the chain, as `verify-ca`); `verify-ca` checks that the server's certificate
//! chains to a trusted root; `verify-full` also that it names the host connected to. The roots are the
//! `sslrootcert` file, or the system's when it is `system` or absent.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::{StoreError, StoreResult};

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS options of a connection URL, taken out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: TlsMode,
    /// `sslrootcert`: a PEM file of trusted roots; `None` for the system's.
    pub root_cert: Option<PathBuf>,
    /// `sslcert` and `sslkey`: the client's certificate (PEM, with its chain) and private key.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Splits `url` into what tokio-postgres parses (the URL without the TLS options it does not know, its
/// `sslmode` one it does) and the TLS options. Without `sslmode` there is no TLS, as before hookrelay had TLS
/// (libpq would try TLS first, `prefer`): a server on the same machine needs none, and one elsewhere should be
/// reached with `verify-full`. A `key=value` connection string is passed on as it is, with the `sslmode` values
/// tokio-postgres knows (`disable`, `prefer`, `require`).
pub fn split_url(url: &str) -> StoreResult<(String, TlsOptions)> {
    let invalid = |msg: String| StoreError::Unavailable(format!("invalid PostgreSQL URL: {msg}"));
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        let config: tokio_postgres::Config = url.parse().map_err(|err| invalid(format!("{err}")))?;
        let mode = match config.get_ssl_mode() {
            _ if !url.contains("sslmode") => TlsMode::Disable,
            SslMode::Disable => TlsMode::Disable,
            SslMode::Prefer => TlsMode::Prefer,
            _ => TlsMode::Require,
        };
        return Ok((url.to_owned(), TlsOptions { mode, root_cert: None, client_cert: None }));
    }
    let mut parsed = url::Url::parse(url).map_err(|err| invalid(err.to_string()))?;
    let (mut mode, mut root_cert, mut cert, mut key) = (TlsMode::Disable, None, None, None);
    let mut kept = Vec::new();
    for (name, value) in parsed.query_pairs() {
        match name.as_ref() {
            "sslmode" => {
                mode = match value.as_ref() {
                    "disable" => TlsMode::Disable,
                    // libpq's `allow` tries without TLS first; hookrelay treats it as `prefer`.
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => {
                        return Err(invalid(format!(
                            "sslmode={other}: use disable, prefer, require, verify-ca or verify-full"
                        )));
                    }
                }
            }
            "sslrootcert" if value == "system" => root_cert = None,
            "sslrootcert" => root_cert = Some(PathBuf::from(value.as_ref())),
            "sslcert" => cert = Some(PathBuf::from(value.as_ref())),
            "sslkey" => key = Some(PathBuf::from(value.as_ref())),
            _ => kept.push((name.into_owned(), value.into_owned())),
        }
    }
    let client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err(invalid("sslcert and sslkey go together: give both, or neither".into())),
    };
    let negotiated = match mode {
        TlsMode::Disable => "disable",
        TlsMode::Prefer => "prefer",
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => "require",
    };
    kept.push(("sslmode".into(), negotiated.into()));
    parsed.query_pairs_mut().clear().extend_pairs(kept);
    Ok((parsed.into(), TlsOptions { mode, root_cert, client_cert }))
}

/// Makes rustls connections for tokio-postgres (and the pool) as `options` say.
#[derive(Clone)]
pub struct MakeRustlsConnect {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for MakeRustlsConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MakeRustlsConnect")
    }
}

impl MakeRustlsConnect {
    /// Reads the certificates and keys `options` name; a file that cannot be read or parsed is an error that
    /// names it.
    pub fn new(options: &TlsOptions) -> StoreResult<Self> {
        let unusable = |what: &str, path: &PathBuf, err: &dyn fmt::Display| {
            StoreError::Unavailable(format!("cannot use the PostgreSQL TLS {what} {}: {err}", path.display()))
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        match &options.root_cert {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|err| unusable("root certificate file", path, &err))?;
                for cert in certs {
                    roots.add(cert).map_err(|err| unusable("root certificate file", path, &err))?;
                }
            }
            None => {
                // Certificates the system store holds but rustls cannot read are skipped, as browsers do.
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        let check_chain = matches!(options.mode, TlsMode::VerifyCa | TlsMode::VerifyFull)
            || (options.mode == TlsMode::Require && options.root_cert.is_some());
        let verifier: Arc<dyn ServerCertVerifier> = if check_chain {
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|err| StoreError::Unavailable(format!("cannot set up PostgreSQL TLS verification: {err}")))?;
            Arc::new(Verifier {
                webpki: Some(webpki),
                check_name: options.mode == TlsMode::VerifyFull,
                provider: provider.clone(),
            })
        } else {
            Arc::new(Verifier { webpki: None, check_name: false, provider: provider.clone() })
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| StoreError::Unavailable(format!("cannot set up PostgreSQL TLS: {err}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &options.client_cert {
            Some((cert_path, key_path)) => {
                let chain = CertificateDer::pem_file_iter(cert_path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|err| unusable("client certificate", cert_path, &err))?;
                let key =
                    PrivateKeyDer::from_pem_file(key_path).map_err(|err| unusable("client key", key_path, &err))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|err| unusable("client certificate", cert_path, &err))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Self { config: Arc::new(config) })
    }

    /// The mode tokio-postgres negotiates with, for the `tokio_postgres::Config` the URL made.
    pub fn negotiated(options: &TlsOptions) -> SslMode {
        match options.mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        }
    }
}

/// The server-certificate check of one mode: the WebPKI chain check where the mode asks for one (the host name
/// only for `verify-full`), and the handshake signatures always.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else { return Ok(ServerCertVerified::assertion()) };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            // `verify-ca`: a certificate for another name is still one the trusted CA issued.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl<S> MakeTlsConnect<S> for MakeRustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        let name = ServerName::try_from(domain)?.to_owned();
        Ok(RustlsConnect { config: self.config.clone(), name })
    }
}

/// One connection's handshake.
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let stream = tokio_rustls::TlsConnector::from(self.config).connect(self.name, stream).await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// An encrypted connection to PostgreSQL.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM's channel binding needs the server certificate's hash by its signature algorithm; without it the
        // connection authenticates as libpq's `channel_binding=prefer` does when binding is not offered.
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_tls_options_are_taken_out_of_the_url() {
        let (url, options) = split_url(
            "postgres://u@db.example.com:5432/app?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=hr",
        )
        .expect("valid");
        assert_eq!(url, "postgres://u@db.example.com:5432/app?application_name=hr&sslmode=require");
        assert_eq!(options.mode, TlsMode::VerifyFull);
        assert_eq!(options.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let (url, options) = split_url("postgres://u@127.0.0.1/app").expect("valid");
        assert_eq!((url.as_str(), options.mode), ("postgres://u@127.0.0.1/app?sslmode=disable", TlsMode::Disable));
        let (url, options) = split_url("host=127.0.0.1 user=u sslmode=require").expect("valid");
        assert_eq!((url.as_str(), options.mode), ("host=127.0.0.1 user=u sslmode=require", TlsMode::Require));
        let (_, options) =
            split_url("postgres://u@h/app?sslmode=require&sslcert=/c.pem&sslkey=/k.pem&sslrootcert=system")
                .expect("valid");
        assert_eq!(options.client_cert, Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem"))));
        assert_eq!(options.root_cert, None);
        assert!(split_url("postgres://u@h/app?sslmode=verify").is_err());
        assert!(split_url("postgres://u@h/app?sslcert=/c.pem").is_err());
    }
}
