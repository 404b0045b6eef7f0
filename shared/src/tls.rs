//! TLS client configuration, on rustls with the `ring` provider: for broker
//! connections and for the HTTPS client alike, so it needs no Kafka client.
//!
//! The provider is chosen explicitly: other crates in the tree enable
//! rustls's `aws-lc-rs` feature too, and with two providers compiled in,
//! rustls refuses to guess (`ClientConfig::builder()` panics). Trust is
//! Mozilla's root set (MSK's certificates chain to Amazon's public roots),
//! plus an optional extra CA for private clusters and tests.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The extra CA file could not be read or holds no certificate.
    #[error("cannot use CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls rejected the configuration.
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// A client certificate chain or key is not usable PEM.
    #[error("the client {what} is not usable: {reason}")]
    ClientIdentity {
        /// `certificate chain` or `private key`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A client certificate chain and its private key, for brokers that
/// authenticate clients by certificate (mutual TLS).
pub struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// Reads a PEM chain (leaf first) and a PEM private key (PKCS#8,
    /// PKCS#1 or SEC1, unencrypted).
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::ClientIdentity {
                what: "certificate chain",
                reason: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::ClientIdentity {
                what: "certificate chain",
                reason: "no PEM certificate in it".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError::ClientIdentity {
            what: "private key",
            reason: format!(
                "{e} (an unencrypted PKCS#8, PKCS#1 or SEC1 PEM key is needed; an ENCRYPTED PRIVATE KEY is not read)"
            ),
        })?;
        Ok(Self { chain, key })
    }
}

/// The crypto provider used for every TLS connection in this project.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes [`crypto_provider`] the process default, so any library that calls
/// `ClientConfig::builder()` gets it instead of panicking. Safe to call more
/// than once.
pub fn install_process_default() {
    // An error only means a default is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client configuration trusting the public roots and, when given, the
/// certificates in `extra_ca_file`.
pub fn client_config(extra_ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_with_identity(extra_ca_file, None)
}

/// [`client_config`] that also presents `identity` when the server asks
/// for a client certificate.
pub fn client_config_with_identity(
    extra_ca_file: Option<&Path>,
    identity: Option<ClientIdentity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca_file {
        let ca_error = |reason: String| TlsError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert)?;
        }
    }
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        Some(ClientIdentity { chain, key }) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_roots_alone_make_a_config() {
        client_config(None).unwrap();
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_named_in_the_error() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

        let dir = std::env::temp_dir().join(format!("lsk-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let err = client_config(Some(&empty)).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn a_client_identity_needs_a_certificate_and_an_unencrypted_key() {
        let leaf = rcgen::generate_simple_self_signed(vec!["writer".into()]).unwrap();
        let chain = leaf.cert.pem();
        let key = leaf.signing_key.serialize_pem();
        let identity = ClientIdentity::from_pem(chain.as_bytes(), key.as_bytes()).unwrap();
        client_config_with_identity(None, Some(identity)).unwrap();

        let err = ClientIdentity::from_pem(b"", key.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = ClientIdentity::from_pem(chain.as_bytes(), encrypted.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("private key"), "{err}");
    }

    #[test]
    fn a_generated_ca_is_accepted() {
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = std::env::temp_dir().join(format!("lsk-tls-ok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, ca.cert.pem()).unwrap();
        client_config(Some(&path)).unwrap();
    }
}
