//! The cluster's PKI: a certificate authority kept on disk and the certificates
//! it issues.
//!
//! On first start [`Pki::load_or_create`] creates, under the TLS directory
//! (mode 0700; private keys 0600, certificates 0644):
//!
//! | file | what |
//! | --- | --- |
//! | `ca.crt`, `ca.key` | the cluster CA, CN `keelson-ca`, valid 10 years |
//! | `apiserver.crt`, `apiserver.key` | the API server's serving certificate (see [`apiserver_sans`]) |
//! | `admin.crt`, `admin.key` | the admin client certificate, CN `admin`, O `system:masters` |
//!
//! On later starts it loads them. The serving certificate is issued again when a
//! requested host is missing from its SANs, and any leaf certificate is issued
//! again when it was not signed by the CA on disk, does not match its key, or
//! expires within [`RENEW_BEFORE_DAYS`] days. The CA itself is never replaced
//! once it exists: a half-present CA (certificate without key or the reverse) is
//! an error, not a reason to overwrite it.
//!
//! Keys are ECDSA P-256 (PKCS#8 PEM); certificates are accepted by Go's
//! crypto/tls (kubectl, Helm), rustls and OpenSSL.

use crate::{fsutil, io_err, Error, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SigningKey,
};
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// Common name of the cluster CA.
pub const CA_COMMON_NAME: &str = "keelson-ca";
/// Common name of the admin client certificate.
pub const ADMIN_USER: &str = "admin";
/// Group (organization) of the admin client certificate.
pub const ADMIN_GROUP: &str = "system:masters";
/// Validity of the CA certificate.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// Validity of issued leaf certificates (serving and client).
pub const LEAF_VALIDITY_DAYS: i64 = 365;
/// Leaf certificates found on disk that expire sooner than this are issued again.
pub const RENEW_BEFORE_DAYS: i64 = 30;
/// First address of the default service CIDR (10.96.0.0/12): the `kubernetes`
/// Service's ClusterIP, which in-cluster clients dial.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

/// File names inside the TLS directory.
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";
pub const APISERVER_CERT_FILE: &str = "apiserver.crt";
pub const APISERVER_KEY_FILE: &str = "apiserver.key";
pub const ADMIN_CERT_FILE: &str = "admin.crt";
pub const ADMIN_KEY_FILE: &str = "admin.key";

const DIR_MODE: u32 = 0o700;
const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;

/// The cluster CA plus the API server and admin certificates, as PEM.
pub struct Pki {
    dir: PathBuf,
    ca_cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    serving_cert_pem: String,
    serving_key_pem: String,
    admin_cert_pem: String,
    admin_key_pem: String,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("keys", &"[elided]")
            .finish()
    }
}

/// A host name or address a certificate is valid for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Host {
    Dns(String),
    Ip(IpAddr),
}

impl Host {
    /// Parses a host given by a user: an IP address (IPv6 possibly in
    /// brackets) or a DNS name (`*.` wildcards allowed), case-insensitive.
    fn parse(raw: &str) -> Result<Host> {
        let s = raw.trim();
        let unbracketed = s
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or(s);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let name = s.trim_end_matches('.').to_ascii_lowercase();
        if is_dns_name(&name) {
            Ok(Host::Dns(name))
        } else {
            Err(Error::Invalid(format!(
                "{raw:?} is neither an IP address nor a valid DNS name"
            )))
        }
    }

    fn to_san(&self) -> Result<SanType> {
        Ok(match self {
            Host::Ip(ip) => SanType::IpAddress(*ip),
            Host::Dns(name) => SanType::DnsName(name.clone().try_into()?),
        })
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Dns(n) => f.write_str(n),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

fn is_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let body = name.strip_prefix("*.").unwrap_or(name);
    !body.is_empty()
        && body.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// This machine's host name, if it is a usable DNS name.
fn local_hostname() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let name = raw.trim().to_ascii_lowercase();
    is_dns_name(&name).then_some(name)
}

/// The subject alternative names of the API server's serving certificate:
/// `localhost`, `127.0.0.1`, `::1`, this machine's host name, every host in
/// `extra`, and the in-cluster names of the `kubernetes` Service
/// (`kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
/// `kubernetes.default.svc.cluster.local`, `10.96.0.1`).
pub fn apiserver_sans(extra: &[String]) -> Vec<String> {
    let mut sans: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    sans.extend(local_hostname());
    sans.extend(extra.iter().cloned());
    sans.extend(
        [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            KUBERNETES_SERVICE_IP,
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    sans
}

fn parse_hosts(hosts: &[String]) -> Result<BTreeSet<Host>> {
    hosts.iter().map(|h| Host::parse(h)).collect()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Validity window starting a little in the past, to tolerate clock skew
/// between the machines of a cluster.
fn validity(params: &mut CertificateParams, days: i64) {
    let start = now() - Duration::hours(1);
    params.not_before = start;
    params.not_after = start + Duration::days(days);
}

fn pem_to_der(pem: &str, what: &str) -> Result<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.as_ref().to_vec())
        .map_err(|e| Error::Invalid(format!("{what}: no PEM certificate: {e}")))
}

fn parse_cert<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| Error::Invalid(format!("{what}: invalid certificate: {e}")))
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

impl Pki {
    /// Loads the PKI from `tls_dir`, creating whatever is missing (see the
    /// module documentation). `serving_hosts` are extra host names or IP
    /// addresses the API server's certificate must be valid for.
    pub fn load_or_create(tls_dir: &Path, serving_hosts: &[String]) -> Result<Pki> {
        fsutil::ensure_dir(tls_dir, DIR_MODE)?;
        let (ca_cert_pem, ca_key) = load_or_create_ca(tls_dir)?;
        let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key)?;
        let mut pki = Pki {
            dir: tls_dir.to_path_buf(),
            ca_cert_pem,
            issuer,
            serving_cert_pem: String::new(),
            serving_key_pem: String::new(),
            admin_cert_pem: String::new(),
            admin_key_pem: String::new(),
        };
        pki.load_or_issue_serving(serving_hosts)?;
        pki.load_or_issue_admin()?;
        Ok(pki)
    }

    /// The TLS directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a file in the TLS directory (e.g. [`CA_CERT_FILE`]).
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The CA certificate (PEM).
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// The API server's serving certificate (PEM).
    pub fn serving_cert_pem(&self) -> &str {
        &self.serving_cert_pem
    }

    /// The API server's serving key (PKCS#8 PEM).
    pub fn serving_key_pem(&self) -> &str {
        &self.serving_key_pem
    }

    /// The admin client certificate (PEM), CN `admin`, O `system:masters`.
    pub fn admin_cert_pem(&self) -> &str {
        &self.admin_cert_pem
    }

    /// The admin client key (PKCS#8 PEM).
    pub fn admin_key_pem(&self) -> &str {
        &self.admin_key_pem
    }

    /// Issues a client certificate for user `cn` in the groups `orgs`
    /// (subject CN and one O per group, as Kubernetes reads them), signed by
    /// the CA. Returns `(cert_pem, key_pem)`; nothing is written to disk.
    pub fn issue_client_cert(&self, cn: &str, orgs: &[String]) -> Result<(String, String)> {
        issue_client(&self.issuer, cn, orgs)
    }

    /// Issues a serving certificate for exactly `hosts` (DNS names or IP
    /// addresses; the first one is the subject CN), signed by the CA, for
    /// example for a kubelet's HTTPS API. Returns `(cert_pem, key_pem)`.
    pub fn issue_serving_cert(&self, hosts: &[String]) -> Result<(String, String)> {
        let hosts: Vec<Host> = hosts
            .iter()
            .map(|h| Host::parse(h))
            .collect::<Result<_>>()?;
        issue_serving(&self.issuer, &hosts)
    }

    fn load_or_issue_serving(&mut self, serving_hosts: &[String]) -> Result<()> {
        let wanted = parse_hosts(&apiserver_sans(serving_hosts))?;
        let cert_path = self.dir.join(APISERVER_CERT_FILE);
        let key_path = self.dir.join(APISERVER_KEY_FILE);
        let mut hosts = wanted.clone();
        if let (Some(cert), Some(key)) = (read_optional(&cert_path)?, read_optional(&key_path)?) {
            match self.check_leaf(&cert, &key) {
                Ok(existing) => {
                    let missing: Vec<String> =
                        wanted.difference(&existing).map(Host::to_string).collect();
                    if missing.is_empty() {
                        self.serving_cert_pem = cert;
                        self.serving_key_pem = key;
                        return Ok(());
                    }
                    tracing::info!(
                        missing = %missing.join(","),
                        "API server certificate lacks requested hosts; issuing a new one"
                    );
                    // Keep the names the old certificate was valid for.
                    hosts.extend(existing);
                }
                Err(reason) => {
                    tracing::info!(%reason, "issuing a new API server certificate");
                }
            }
        } else {
            tracing::info!(dir = %self.dir.display(), "creating the API server certificate");
        }
        // The CN is the first default name (localhost); the order of the set is
        // irrelevant to clients, which only look at the SANs.
        let localhost = Host::Dns("localhost".to_string());
        let mut ordered: Vec<Host> = vec![localhost.clone()];
        ordered.extend(hosts.into_iter().filter(|h| *h != localhost));
        let (cert, key) = issue_serving(&self.issuer, &ordered)?;
        fsutil::write_atomic(&key_path, key.as_bytes(), KEY_MODE)?;
        fsutil::write_atomic(&cert_path, cert.as_bytes(), CERT_MODE)?;
        self.serving_cert_pem = cert;
        self.serving_key_pem = key;
        Ok(())
    }

    fn load_or_issue_admin(&mut self) -> Result<()> {
        let cert_path = self.dir.join(ADMIN_CERT_FILE);
        let key_path = self.dir.join(ADMIN_KEY_FILE);
        if let (Some(cert), Some(key)) = (read_optional(&cert_path)?, read_optional(&key_path)?) {
            let reason = match self.check_leaf(&cert, &key) {
                Ok(_) => match pem_to_der(&cert, ADMIN_CERT_FILE)
                    .map(|der| crate::tls::identity_from_cert_der(&der))
                {
                    Ok(Some(id)) if id.user == ADMIN_USER && id.groups == [ADMIN_GROUP] => {
                        self.admin_cert_pem = cert;
                        self.admin_key_pem = key;
                        return Ok(());
                    }
                    _ => "subject is not CN=admin,O=system:masters".to_string(),
                },
                Err(reason) => reason,
            };
            tracing::info!(%reason, "issuing a new admin client certificate");
        } else {
            tracing::info!(dir = %self.dir.display(), "creating the admin client certificate");
        }
        let (cert, key) = issue_client(&self.issuer, ADMIN_USER, &[ADMIN_GROUP.to_string()])?;
        fsutil::write_atomic(&key_path, key.as_bytes(), KEY_MODE)?;
        fsutil::write_atomic(&cert_path, cert.as_bytes(), CERT_MODE)?;
        self.admin_cert_pem = cert;
        self.admin_key_pem = key;
        Ok(())
    }

    /// Checks that a leaf certificate on disk is usable: signed by our CA,
    /// matching its key, not expiring soon. Returns the hosts in its SANs, or
    /// why it must be issued again.
    fn check_leaf(&self, cert_pem: &str, key_pem: &str) -> Result<BTreeSet<Host>, String> {
        let der = pem_to_der(cert_pem, "certificate").map_err(|e| e.to_string())?;
        let cert = parse_cert(&der, "certificate").map_err(|e| e.to_string())?;
        let ca_der = pem_to_der(&self.ca_cert_pem, CA_CERT_FILE).map_err(|e| e.to_string())?;
        let ca = parse_cert(&ca_der, CA_CERT_FILE).map_err(|e| e.to_string())?;
        cert.verify_signature(Some(ca.public_key()))
            .map_err(|_| "certificate is not signed by the current CA".to_string())?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("unusable key: {e}"))?;
        if key.subject_public_key_info() != cert.public_key().raw {
            return Err("key does not match certificate".to_string());
        }
        let renew_at = (now() + Duration::days(RENEW_BEFORE_DAYS)).unix_timestamp();
        if cert.validity().not_after.timestamp() < renew_at {
            return Err("certificate expires soon".to_string());
        }
        Ok(san_hosts(&cert))
    }
}

fn san_hosts(cert: &X509Certificate<'_>) -> BTreeSet<Host> {
    let mut hosts = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => {
                    hosts.insert(Host::Dns(n.to_ascii_lowercase()));
                }
                GeneralName::IPAddress(bytes) => {
                    if let Ok(b) = <[u8; 4]>::try_from(*bytes) {
                        hosts.insert(Host::Ip(IpAddr::from(b)));
                    } else if let Ok(b) = <[u8; 16]>::try_from(*bytes) {
                        hosts.insert(Host::Ip(IpAddr::from(b)));
                    }
                }
                _ => {}
            }
        }
    }
    hosts
}

fn load_or_create_ca(dir: &Path) -> Result<(String, KeyPair)> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    match (read_optional(&cert_path)?, read_optional(&key_path)?) {
        (Some(cert_pem), Some(key_pem)) => {
            let key = KeyPair::from_pem(&key_pem)
                .map_err(|e| Error::Invalid(format!("{}: {e}", key_path.display())))?;
            let der = pem_to_der(&cert_pem, &cert_path.display().to_string())?;
            let cert = parse_cert(&der, &cert_path.display().to_string())?;
            if key.subject_public_key_info() != cert.public_key().raw {
                return Err(Error::Invalid(format!(
                    "{} does not belong to {}",
                    key_path.display(),
                    cert_path.display()
                )));
            }
            if !cert.is_ca() {
                return Err(Error::Invalid(format!(
                    "{} is not a CA certificate",
                    cert_path.display()
                )));
            }
            Ok((cert_pem, key))
        }
        (None, None) => {
            tracing::info!(dir = %dir.display(), "creating the cluster CA");
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::default();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::CommonName, CA_COMMON_NAME);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
            ];
            validity(&mut params, CA_VALIDITY_DAYS);
            let cert_pem = params.self_signed(&key)?.pem();
            // Key first: a certificate without its key is the state we refuse.
            fsutil::write_atomic(&key_path, key.serialize_pem().as_bytes(), KEY_MODE)?;
            fsutil::write_atomic(&cert_path, cert_pem.as_bytes(), CERT_MODE)?;
            Ok((cert_pem, key))
        }
        (Some(_), None) => Err(Error::Invalid(format!(
            "{} exists but {} does not: restore the CA key or remove the certificate",
            cert_path.display(),
            key_path.display()
        ))),
        (None, Some(_)) => Err(Error::Invalid(format!(
            "{} exists but {} does not: restore the CA certificate or remove the key",
            key_path.display(),
            cert_path.display()
        ))),
    }
}

fn leaf_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, LEAF_VALIDITY_DAYS);
    params
}

fn issue_serving(issuer: &Issuer<'_, KeyPair>, hosts: &[Host]) -> Result<(String, String)> {
    let first = hosts
        .first()
        .ok_or_else(|| Error::Invalid("a serving certificate needs at least one host".into()))?;
    let mut params = leaf_params();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, first.to_string());
    params.subject_alt_names = hosts.iter().map(Host::to_san).collect::<Result<_>>()?;
    // ECDSA keys: digital signature is the only usage TLS needs.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn issue_client(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    orgs: &[String],
) -> Result<(String, String)> {
    if cn.is_empty() {
        return Err(Error::Invalid(
            "a client certificate needs a non-empty common name".into(),
        ));
    }
    if orgs.iter().any(|o| o.is_empty()) {
        return Err(Error::Invalid("empty group name".into()));
    }
    let mut params = leaf_params();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    // ECDSA keys: digital signature is the only usage TLS needs.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    // rcgen keeps one value per attribute type in a subject, but Kubernetes
    // reads one group per O attribute: put the full subject in and sign again.
    let der = der::replace_subject(cert.der().as_ref(), &der::name(cn, orgs), issuer.key())?;
    let pem = der_to_pem("CERTIFICATE", &der);
    Ok((pem, key.serialize_pem()))
}

fn der_to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Just enough DER to write an X.509 Name with repeated attributes and to
/// splice it into a certificate that is then signed again.
mod der {
    use super::{Error, KeyPair, Result, SigningKey};

    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const UTF8_STRING: u8 = 0x0c;
    const BIT_STRING: u8 = 0x03;
    const OID_COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
    const OID_ORGANIZATION: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x0a];

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    /// (header length, content length) of the DER element at the start of `data`.
    fn header(data: &[u8]) -> Result<(usize, usize)> {
        let bad = || Error::Invalid("malformed DER".into());
        let first = *data.get(1).ok_or_else(bad)?;
        if first < 0x80 {
            return Ok((2, first as usize));
        }
        let n = (first & 0x7f) as usize;
        if n == 0 || n > std::mem::size_of::<usize>() {
            return Err(bad());
        }
        let bytes = data.get(2..2 + n).ok_or_else(bad)?;
        let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        Ok((2 + n, len))
    }

    fn attribute(oid: &[u8], value: &str) -> Vec<u8> {
        let mut atv = oid.to_vec();
        atv.extend(tlv(UTF8_STRING, value.as_bytes()));
        tlv(SET, &tlv(SEQUENCE, &atv))
    }

    /// `O=<org>` for each group, then `CN=<cn>`, as kubeadm writes them.
    pub fn name(cn: &str, orgs: &[String]) -> Vec<u8> {
        let mut rdns = Vec::new();
        for org in orgs {
            rdns.extend(attribute(OID_ORGANIZATION, org));
        }
        rdns.extend(attribute(OID_COMMON_NAME, cn));
        tlv(SEQUENCE, &rdns)
    }

    /// Offset of `inner` inside `outer`, when `inner` is a sub-slice of it.
    fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
        let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
        (start.checked_add(inner.len())? <= outer.len()).then_some(start)
    }

    /// Returns `cert` with its subject replaced by `subject` and signed again
    /// with `signer` (the issuer's key, same algorithm as before).
    pub fn replace_subject(cert: &[u8], subject: &[u8], signer: &KeyPair) -> Result<Vec<u8>> {
        let bad = |what: &str| Error::Invalid(format!("cannot re-sign certificate: {what}"));
        let (_, parsed) =
            x509_parser::parse_x509_certificate(cert).map_err(|_| bad("unparsable"))?;
        let tbs = parsed.tbs_certificate.as_ref();
        let old_subject = parsed.tbs_certificate.subject.as_raw();
        let tbs_off = offset_in(cert, tbs).ok_or_else(|| bad("TBS position"))?;
        let subj_off = offset_in(tbs, old_subject).ok_or_else(|| bad("subject position"))?;
        let (tbs_header, _) = header(tbs)?;
        if subj_off < tbs_header {
            return Err(bad("subject position"));
        }

        let mut tbs_content = tbs[tbs_header..subj_off].to_vec();
        tbs_content.extend_from_slice(subject);
        tbs_content.extend_from_slice(&tbs[subj_off + old_subject.len()..]);
        let new_tbs = tlv(SEQUENCE, &tbs_content);

        let (cert_header, cert_len) = header(cert)?;
        let cert_end = cert_header
            .checked_add(cert_len)
            .ok_or_else(|| bad("length"))?;
        let after_tbs = cert
            .get(tbs_off + tbs.len()..cert_end)
            .ok_or_else(|| bad("length"))?;
        let (alg_header, alg_len) = header(after_tbs)?;
        let alg_end = alg_header
            .checked_add(alg_len)
            .ok_or_else(|| bad("algorithm"))?;
        let alg = after_tbs.get(..alg_end).ok_or_else(|| bad("algorithm"))?;

        let mut signature = vec![0u8]; // no unused bits
        signature.extend(signer.sign(&new_tbs)?);
        let mut content = new_tbs;
        content.extend_from_slice(alg);
        content.extend(tlv(BIT_STRING, &signature));
        Ok(tlv(SEQUENCE, &content))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tlv_lengths_round_trip() {
            for len in [0usize, 1, 127, 128, 255, 256, 70000] {
                let data = tlv(SEQUENCE, &vec![7u8; len]);
                let (h, l) = header(&data).expect("header");
                assert_eq!(l, len);
                assert_eq!(h + l, data.len());
            }
        }

        #[test]
        fn header_rejects_truncated_input() {
            assert!(header(&[0x30]).is_err());
            assert!(header(&[0x30, 0x82, 0x01]).is_err());
            assert!(header(&[0x30, 0x80]).is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    fn cert_der(pem: &str) -> Vec<u8> {
        pem_to_der(pem, "test").expect("PEM")
    }

    #[test]
    fn creates_files_with_modes_and_reloads_the_same_ca() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("tls");
        let pki = Pki::load_or_create(&dir, &["api.example.test".into()]).expect("create");
        assert_eq!(mode(&dir), 0o700);
        for key in [CA_KEY_FILE, APISERVER_KEY_FILE, ADMIN_KEY_FILE] {
            assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
        }
        for cert in [CA_CERT_FILE, APISERVER_CERT_FILE, ADMIN_CERT_FILE] {
            assert!(dir.join(cert).is_file(), "{cert}");
        }

        let ca_der = cert_der(pki.ca_cert_pem());
        let ca = parse_cert(&ca_der, "ca").expect("ca");
        assert!(ca.is_ca());
        let cn: Vec<_> = ca
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok())
            .collect();
        assert_eq!(cn, [CA_COMMON_NAME]);
        let years = (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp())
            / (365 * 86400);
        assert!(years >= 9, "CA valid for {years} years");

        let again = Pki::load_or_create(&dir, &["api.example.test".into()]).expect("reload");
        assert_eq!(again.ca_cert_pem(), pki.ca_cert_pem());
        assert_eq!(again.serving_cert_pem(), pki.serving_cert_pem());
        assert_eq!(again.admin_cert_pem(), pki.admin_cert_pem());
        assert_eq!(again.admin_key_pem(), pki.admin_key_pem());

        // The reloaded CA key still signs certificates the CA verifies.
        let (client, _) = again
            .issue_client_cert("alice", &["dev".into()])
            .expect("issue");
        let client_der = cert_der(&client);
        let client = parse_cert(&client_der, "client").expect("client");
        client
            .verify_signature(Some(ca.public_key()))
            .expect("signed by the CA");
    }

    #[test]
    fn serving_certificate_has_all_names() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(tmp.path(), &["10.1.2.3".into(), "Node-A.local".into()])
            .expect("create");
        let der = cert_der(pki.serving_cert_pem());
        let cert = parse_cert(&der, "serving").expect("parse");
        let hosts = san_hosts(&cert);
        for want in [
            "localhost",
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "node-a.local",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "10.96.0.1",
        ] {
            let host = Host::parse(want).expect("host");
            assert!(hosts.contains(&host), "missing {want} in {hosts:?}");
        }
        if let Some(name) = local_hostname() {
            assert!(hosts.contains(&Host::Dns(name)));
        }
        let ca_der = cert_der(pki.ca_cert_pem());
        let ca = parse_cert(&ca_der, "ca").expect("ca");
        cert.verify_signature(Some(ca.public_key()))
            .expect("signed");
    }

    #[test]
    fn reissues_serving_cert_for_new_hosts_and_keeps_old_ones() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let first = Pki::load_or_create(tmp.path(), &["one.example".into()]).expect("create");
        let second = Pki::load_or_create(tmp.path(), &["192.0.2.7".into()]).expect("reload");
        assert_eq!(first.ca_cert_pem(), second.ca_cert_pem());
        assert_ne!(first.serving_cert_pem(), second.serving_cert_pem());
        let der = cert_der(second.serving_cert_pem());
        let hosts = san_hosts(&parse_cert(&der, "serving").expect("parse"));
        assert!(hosts.contains(&Host::parse("192.0.2.7").expect("ip")));
        assert!(hosts.contains(&Host::parse("one.example").expect("dns")));
        // The new certificate is what is on disk now.
        let on_disk = std::fs::read_to_string(tmp.path().join(APISERVER_CERT_FILE)).expect("read");
        assert_eq!(on_disk, second.serving_cert_pem());
        // And asking again for a host it has changes nothing.
        let third = Pki::load_or_create(tmp.path(), &["192.0.2.7".into()]).expect("reload");
        assert_eq!(third.serving_cert_pem(), second.serving_cert_pem());
    }

    #[test]
    fn reissues_leaf_certs_not_signed_by_the_ca() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let other = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(tmp.path(), &[]).expect("create");
        let foreign = Pki::load_or_create(other.path(), &[]).expect("create other");
        std::fs::write(tmp.path().join(ADMIN_CERT_FILE), foreign.admin_cert_pem()).expect("write");
        std::fs::write(tmp.path().join(ADMIN_KEY_FILE), foreign.admin_key_pem()).expect("write");
        let reloaded = Pki::load_or_create(tmp.path(), &[]).expect("reload");
        assert_eq!(reloaded.ca_cert_pem(), pki.ca_cert_pem());
        assert_ne!(reloaded.admin_cert_pem(), foreign.admin_cert_pem());
        let der = cert_der(reloaded.admin_cert_pem());
        let ca_der = cert_der(pki.ca_cert_pem());
        parse_cert(&der, "admin")
            .expect("parse")
            .verify_signature(Some(parse_cert(&ca_der, "ca").expect("ca").public_key()))
            .expect("signed by our CA");
    }

    #[test]
    fn pki_can_be_shared_between_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Pki>();
    }

    #[test]
    fn refuses_a_half_present_ca() {
        let tmp = tempfile::tempdir().expect("tempdir");
        Pki::load_or_create(tmp.path(), &[]).expect("create");
        std::fs::remove_file(tmp.path().join(CA_KEY_FILE)).expect("rm");
        let err = Pki::load_or_create(tmp.path(), &[]).expect_err("must fail");
        assert!(err.to_string().contains("ca.key"), "{err}");
    }

    #[test]
    fn rejects_invalid_hosts() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert!(Pki::load_or_create(tmp.path(), &["bad host".into()]).is_err());
        let pki = Pki::load_or_create(tmp.path(), &[]).expect("create");
        assert!(pki.issue_serving_cert(&[]).is_err());
        assert!(pki.issue_serving_cert(&["host:6443".into()]).is_err());
        assert!(pki.issue_client_cert("", &[]).is_err());
        let (cert, key) = pki
            .issue_serving_cert(&["node1".into(), "[fd00::1]".into()])
            .expect("serving");
        assert!(KeyPair::from_pem(&key).is_ok());
        let der = cert_der(&cert);
        let hosts = san_hosts(&parse_cert(&der, "serving").expect("parse"));
        assert_eq!(
            hosts,
            BTreeSet::from([
                Host::Dns("node1".into()),
                Host::Ip("fd00::1".parse().expect("ip"))
            ])
        );
    }

    #[test]
    fn client_cert_carries_every_group() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(tmp.path(), &[]).expect("create");
        let groups: Vec<String> = ["system:nodes", "dev", "ops-ü"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (cert, _) = pki
            .issue_client_cert("system:node:worker-1", &groups)
            .expect("issue");
        let der = cert_der(&cert);
        let id = crate::tls::identity_from_cert_der(&der).expect("identity");
        assert_eq!(id.user, "system:node:worker-1");
        assert_eq!(id.groups, groups);
        let ca_der = cert_der(pki.ca_cert_pem());
        parse_cert(&der, "client")
            .expect("parse")
            .verify_signature(Some(parse_cert(&ca_der, "ca").expect("ca").public_key()))
            .expect("re-signed by the CA");
    }
}
