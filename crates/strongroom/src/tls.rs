//! TLS for both listeners: rustls with the ring provider, TLS 1.2 and 1.3 only, ECDHE AEAD
//! suites only, server cipher order, ALPN h2 and http/1.1, and a certificate that reloads
//! when its files change or on SIGHUP.

use anyhow::{Context, bail};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Certificate and key files, and whether they were made by us for localhost.
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub self_signed: bool,
}

/// Serves the current certificate and swaps in a new one when the files change.
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: CertificateFiles,
    /// Production: a reloaded certificate that names itself as issuer is refused too.
    refuse_self_issued: bool,
    current: RwLock<(Arc<CertifiedKey>, Option<SystemTime>)>,
}

impl ReloadingCertificate {
    pub fn load(files: CertificateFiles, refuse_self_issued: bool) -> anyhow::Result<Arc<Self>> {
        let key = load_certified_key(&files.cert_file, &files.key_file)?;
        let stamp = modified_stamp(&files);
        Ok(Arc::new(Self {
            files,
            refuse_self_issued,
            current: RwLock::new((Arc::new(key), stamp)),
        }))
    }

    /// Reloads when the files changed (or always when `force`). A broken new pair is logged
    /// and the old certificate stays in use.
    pub fn reload_if_changed(&self, force: bool) {
        let stamp = modified_stamp(&self.files);
        let unchanged = self
            .current
            .read()
            .map(|current| current.1 == stamp)
            .unwrap_or(false);
        if unchanged && !force {
            return;
        }
        if self.refuse_self_issued && is_self_issued(&self.files.cert_file).unwrap_or(true) {
            tracing::error!(cert_file = %self.files.cert_file.display(), "refusing to reload a self-signed or unreadable certificate in production; the previous certificate stays in use");
            return;
        }
        match load_certified_key(&self.files.cert_file, &self.files.key_file) {
            Ok(key) => {
                if let Ok(mut current) = self.current.write() {
                    *current = (Arc::new(key), stamp);
                }
                tracing::info!(cert_file = %self.files.cert_file.display(), "TLS certificate reloaded");
            }
            Err(error) => {
                tracing::error!(%error, "TLS certificate reload failed; the previous certificate stays in use")
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|current| current.0.clone())
    }
}

fn modified_stamp(files: &CertificateFiles) -> Option<SystemTime> {
    let cert = std::fs::metadata(&files.cert_file)
        .and_then(|meta| meta.modified())
        .ok()?;
    let key = std::fs::metadata(&files.key_file)
        .and_then(|meta| meta.modified())
        .ok()?;
    Some(cert.max(key))
}

fn load_certified_key(cert_file: &Path, key_file: &Path) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("cannot read certificate file {}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("certificate file {} is not valid PEM", cert_file.display()))?;
    if chain.is_empty() {
        bail!(
            "certificate file {} holds no certificate",
            cert_file.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("cannot read a private key from {}", key_file.display()))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .context("the private key type is not supported")?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .context("the certificate and the private key do not belong together")?;
    Ok(certified)
}

/// The server configuration shared by both listeners.
pub fn server_config(certificate: Arc<ReloadingCertificate>) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Our suite order (AES-256-GCM first) wins over the client's.
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// Creates (or reuses) a self-signed certificate for localhost under `<data_dir>/tls/`, valid
/// for 90 days and renewed when fewer than 30 remain.
pub fn ensure_self_signed(data_dir: &Path) -> anyhow::Result<CertificateFiles> {
    let directory = data_dir.join("tls");
    let files = CertificateFiles {
        cert_file: directory.join("self-signed.crt"),
        key_file: directory.join("self-signed.key"),
        self_signed: true,
    };
    let renew_after = std::time::Duration::from_secs(60 * 24 * 3600);
    let fresh = std::fs::metadata(&files.cert_file)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age < renew_after);
    if fresh && files.key_file.exists() {
        return Ok(files);
    }
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o700))?;
    let mut params = rcgen::CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(90);
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "localhost (Strongroom self-signed)",
    );
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let certificate = params.self_signed(&key_pair)?;
    write_file(&files.key_file, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_file(&files.cert_file, certificate.pem().as_bytes(), 0o644)?;
    load_certified_key(&files.cert_file, &files.key_file)
        .context("the new self-signed certificate does not load")?;
    tracing::info!(cert_file = %files.cert_file.display(), "created a self-signed certificate for localhost (test and acceptance only)");
    Ok(files)
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut temporary_name = path
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_default();
    temporary_name.push(".tmp");
    let temporary = path.with_file_name(temporary_name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)?;
    // open(2) keeps the mode of a file that already exists; set it explicitly.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// True when the first certificate in the file names itself as its issuer. Production
/// refuses such a certificate: clients cannot verify it against a trusted authority.
pub fn is_self_issued(cert_file: &Path) -> anyhow::Result<bool> {
    let certificate = CertificateDer::pem_file_iter(cert_file)?
        .next()
        .context("no certificate in file")??;
    let (issuer, subject) = issuer_and_subject(certificate.as_ref())
        .context("the certificate's DER structure is not recognised")?;
    Ok(issuer == subject)
}

/// Reads the issuer and subject names of an X.509 certificate as raw DER. Walks only the
/// outer structure: Certificate → TBSCertificate → [version], serial, algorithm, issuer,
/// validity, subject.
fn issuer_and_subject(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (certificate, _) = der_element(der)?;
    let (tbs, _) = der_element(der_content(certificate)?)?;
    let mut rest = der_content(tbs)?;
    let mut fields = Vec::new();
    while !rest.is_empty() && fields.len() < 6 {
        let (element, remainder) = der_element(rest)?;
        if !(fields.is_empty() && element.first() == Some(&0xA0)) {
            fields.push(element);
        }
        rest = remainder;
    }
    Some((fields.get(2)?, fields.get(4)?))
}

/// Splits one DER element (tag, length, content) off the front.
fn der_element(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let first_length = *input.get(1)?;
    let (header, content_length) = if first_length < 0x80 {
        (2, usize::from(first_length))
    } else {
        let bytes = usize::from(first_length & 0x7f);
        if bytes == 0 || bytes > 4 {
            return None;
        }
        let length = input
            .get(2..2 + bytes)?
            .iter()
            .fold(0usize, |sum, byte| (sum << 8) | usize::from(*byte));
        (2 + bytes, length)
    };
    let end = header.checked_add(content_length)?;
    (end <= input.len()).then(|| input.split_at(end))
}

fn der_content(element: &[u8]) -> Option<&[u8]> {
    let first_length = *element.get(1)?;
    let header = if first_length < 0x80 {
        2
    } else {
        2 + usize::from(first_length & 0x7f)
    };
    element.get(header..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificates_are_recognised_and_ca_issued_ones_are_not() {
        let directory = tempfile::tempdir().unwrap();
        let files = ensure_self_signed(directory.path()).unwrap();
        assert!(is_self_issued(&files.cert_file).unwrap());
        let again = ensure_self_signed(directory.path()).unwrap();
        assert_eq!(
            std::fs::read(&again.cert_file).unwrap(),
            std::fs::read(&files.cert_file).unwrap(),
            "a fresh certificate is reused"
        );

        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(vec![]).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf_params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        let leaf_file = directory.path().join("leaf.pem");
        std::fs::write(&leaf_file, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
        assert!(!is_self_issued(&leaf_file).unwrap());
    }

    #[test]
    fn truncated_der_is_refused_without_panicking() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x82, 0xff, 0xff, 0x00],
        ] {
            assert!(issuer_and_subject(input).is_none());
        }
    }
}
