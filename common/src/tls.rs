//! rustls configurations built from the cluster PKI, and the identity a client
//! certificate carries.
//!
//! Every configuration here uses rustls' `ring` provider explicitly; nothing
//! depends on a process-wide default provider being installed.

use crate::{Error, Pki, Result};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::sync::Arc;

/// The authenticated user behind a request: Kubernetes' user name and groups.
/// For a client certificate, the subject's CN and O values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

/// ALPN protocols the API server offers, in order of preference.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The crypto provider all of Keelson's TLS uses (`ring`).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses every certificate in a PEM bundle.
pub fn parse_certs_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid(format!("invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Invalid("no certificate in PEM data".into()));
    }
    Ok(certs)
}

/// Parses a private key (PKCS#8, PKCS#1 or SEC1) from PEM.
pub fn parse_key_pem(pem: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| Error::Invalid(format!("invalid PEM private key: {e}")))
}

fn root_store(ca_pem: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs_pem(ca_pem)? {
        roots
            .add(cert)
            .map_err(|e| Error::Invalid(format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The API server's TLS configuration from the cluster PKI: serves
/// `apiserver.crt`, requests (but does not require) client certificates
/// signed by the cluster CA, offers ALPN `h2` and `http/1.1`.
pub fn server_config(pki: &Pki) -> Result<Arc<ServerConfig>> {
    server_config_from_pem(
        pki.ca_cert_pem(),
        pki.serving_cert_pem(),
        pki.serving_key_pem(),
    )
}

/// Like [`server_config`], from PEM material: `client_ca_pem` are the CAs
/// whose client certificates are accepted, `cert_chain_pem`/`key_pem` the
/// serving certificate (chain) and its key.
///
/// Clients without a certificate are let through the handshake (so that
/// bearer-token and anonymous requests reach the HTTP layer, which answers 401
/// where needed); a client that presents a certificate not signed by a
/// client CA fails the handshake.
pub fn server_config_from_pem(
    client_ca_pem: &str,
    cert_chain_pem: &str,
    key_pem: &str,
) -> Result<Arc<ServerConfig>> {
    let provider = crypto_provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(root_store(client_ca_pem)?),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| Error::Invalid(format!("client certificate verifier: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(parse_certs_pem(cert_chain_pem)?, parse_key_pem(key_pem)?)?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client configuration that trusts `ca_pem` and, when given, presents the
/// client certificate `(cert_pem, key_pem)`. No ALPN protocols are set: the
/// HTTP client in use sets the ones it speaks.
pub fn client_config(ca_pem: &str, client_cert: Option<(&str, &str)>) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(ca_pem)?);
    Ok(match client_cert {
        Some((cert, key)) => {
            builder.with_client_auth_cert(parse_certs_pem(cert)?, parse_key_pem(key)?)?
        }
        None => builder.with_no_client_auth(),
    })
}

/// The identity of a TLS peer from its verified certificate chain (leaf
/// first): user = the leaf's subject CN, groups = its O values, in order.
/// `None` when there is no certificate or the leaf has no usable CN.
pub fn peer_identity(certs: &[CertificateDer<'_>]) -> Option<Identity> {
    identity_from_cert_der(certs.first()?.as_ref())
}

/// The identity carried by one DER certificate (see [`peer_identity`]).
pub fn identity_from_cert_der(der: &[u8]) -> Option<Identity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .find_map(|a| a.as_str().ok())
        .filter(|cn| !cn.is_empty())?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
    Some(Identity { user, groups })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    struct ServerSide {
        identity: Option<Identity>,
        alpn: Option<Vec<u8>>,
        received: Vec<u8>,
    }

    /// Runs one TLS connection between a tokio-rustls client and the server
    /// config on 127.0.0.1; returns what the server saw, or the server's
    /// handshake error.
    async fn handshake(
        server: Arc<ServerConfig>,
        mut client: ClientConfig,
        server_name: &str,
    ) -> Result<ServerSide, String> {
        client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = TlsAcceptor::from(server);
        let server_task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
            let (_, conn) = tls.get_ref();
            let identity = conn.peer_certificates().and_then(peer_identity);
            let alpn = conn.alpn_protocol().map(|p| p.to_vec());
            let mut buf = [0u8; 5];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            tls.write_all(b"pong!").await.map_err(|e| e.to_string())?;
            tls.shutdown().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(ServerSide {
                identity,
                alpn,
                received: buf.to_vec(),
            })
        });

        let name = ServerName::try_from(server_name.to_string()).expect("server name");
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let client_result = async {
            let mut tls = TlsConnector::from(Arc::new(client))
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"ping!").await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 5];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            assert_eq!(&buf, b"pong!");
            Ok::<_, String>(())
        }
        .await;
        let server_result = server_task.await.expect("server task");
        let side = server_result?;
        client_result?;
        Ok(side)
    }

    fn pki() -> (tempfile::TempDir, Pki) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(tmp.path(), &[]).expect("pki");
        (tmp, pki)
    }

    #[tokio::test]
    async fn handshake_with_admin_client_certificate() {
        let (_tmp, pki) = pki();
        let server = server_config(&pki).expect("server config");
        let client = client_config(
            pki.ca_cert_pem(),
            Some((pki.admin_cert_pem(), pki.admin_key_pem())),
        )
        .expect("client config");
        let side = handshake(server, client, "localhost")
            .await
            .expect("handshake");
        assert_eq!(
            side.identity,
            Some(Identity {
                user: "admin".into(),
                groups: vec!["system:masters".into()],
            })
        );
        assert_eq!(side.alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(side.received, b"ping!");
    }

    #[tokio::test]
    async fn handshake_with_issued_client_certificate_by_ip() {
        let (_tmp, pki) = pki();
        let groups = vec!["system:nodes".to_string(), "extra".to_string()];
        let (cert, key) = pki
            .issue_client_cert("system:node:n1", &groups)
            .expect("issue");
        let server = server_config(&pki).expect("server config");
        let client = client_config(pki.ca_cert_pem(), Some((&cert, &key))).expect("client");
        let side = handshake(server, client, "127.0.0.1")
            .await
            .expect("handshake");
        assert_eq!(
            side.identity,
            Some(Identity {
                user: "system:node:n1".into(),
                groups,
            })
        );
    }

    #[tokio::test]
    async fn handshake_without_client_certificate_is_anonymous() {
        let (_tmp, pki) = pki();
        let server = server_config(&pki).expect("server config");
        let client = client_config(pki.ca_cert_pem(), None).expect("client config");
        let side = handshake(server, client, "kubernetes.default.svc")
            .await
            .expect("handshake");
        assert_eq!(side.identity, None);
        assert_eq!(side.received, b"ping!");
    }

    #[tokio::test]
    async fn http1_only_client_negotiates_http1() {
        let (_tmp, pki) = pki();
        let server = server_config(&pki).expect("server config");
        let client = client_config(pki.ca_cert_pem(), None).expect("client config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = TlsAcceptor::from(server);
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let tls = acceptor.accept(tcp).await.expect("accept tls");
            tls.get_ref().1.alpn_protocol().map(|p| p.to_vec())
        });
        let mut client = client;
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut tls = TlsConnector::from(Arc::new(client))
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("connect tls");
        tls.shutdown().await.ok();
        assert_eq!(task.await.expect("task").as_deref(), Some(&b"http/1.1"[..]));
    }

    #[tokio::test]
    async fn client_certificate_from_another_ca_is_rejected() {
        let (_tmp, pki) = pki();
        let (_tmp2, other) = pki_other();
        let server = server_config(&pki).expect("server config");
        let client = client_config(
            pki.ca_cert_pem(),
            Some((other.admin_cert_pem(), other.admin_key_pem())),
        )
        .expect("client config");
        let err = handshake(server, client, "localhost")
            .await
            .err()
            .expect("the server must refuse the certificate");
        assert!(
            err.contains("certificate") || err.contains("Unknown"),
            "unexpected error: {err}"
        );
    }

    #[tokio::test]
    async fn client_rejects_a_server_outside_its_names() {
        let (_tmp, pki) = pki();
        let server = server_config(&pki).expect("server config");
        let client = client_config(pki.ca_cert_pem(), None).expect("client config");
        assert!(handshake(server, client, "not-in-the-cert.example")
            .await
            .is_err());
    }

    fn pki_other() -> (tempfile::TempDir, Pki) {
        pki()
    }

    #[test]
    fn identity_of_nothing_is_none() {
        assert_eq!(peer_identity(&[]), None);
        assert_eq!(identity_from_cert_der(b"not a certificate"), None);
    }

    #[test]
    fn pem_parsing_errors() {
        assert!(parse_certs_pem("").is_err());
        assert!(
            parse_key_pem("-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n").is_err()
        );
        assert!(server_config_from_pem("", "", "").is_err());
    }
}
