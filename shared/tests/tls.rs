//! A real TLS connection: a CA and a leaf certificate for `localhost` made at
//! test time, a TLS-terminating proxy in front of a plaintext tansu (which
//! cannot terminate TLS itself), and the producer configured with
//! `KAFKA_TLS=true` and the CA file. It proves the rustls set-up works with
//! the single `ring` provider.

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lambda_stream_kit::config::Env;
use lambda_stream_kit::kafka::{tls, KafkaConfig, KafkaProducer, OutgoingRecord};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use test_support::{free_port, PrivateBroker};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::rustls;

fn tls_server(dir: &std::path::Path) -> Arc<rustls::ServerConfig> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    Arc::new(config)
}

async fn tls_proxy(listen: SocketAddr, upstream: SocketAddr, config: Arc<rustls::ServerConfig>) {
    let listener = TcpListener::bind(listen).await.unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
}

#[tokio::test]
#[ignore = "needs tansu: make test runs it"]
async fn produces_over_a_verified_tls_connection() {
    let dir = std::env::temp_dir().join(format!("lsk-tls-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tls_port = free_port();
    let broker = PrivateBroker::start("localhost", tls_port).await;
    broker.create_topic("secure", 1).await;

    tls_proxy(
        SocketAddr::from(([127, 0, 0, 1], tls_port)),
        broker.direct.parse().unwrap(),
        tls_server(&dir),
    )
    .await;

    let ca_file = dir.join("ca.pem");
    let config = KafkaConfig::from_env(&Env::from_pairs(&[
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            format!("localhost:{tls_port}").as_str(),
        ),
        ("KAFKA_TLS", "true"),
        ("KAFKA_TLS_CA_FILE", ca_file.to_str().unwrap()),
    ]))
    .unwrap();
    assert!(config.tls);
    let producer = KafkaProducer::new(config);
    let outcomes = producer
        .produce(
            "secure",
            vec![OutgoingRecord {
                value: Some(b"over tls".to_vec()),
                ..Default::default()
            }],
            Instant::now() + Duration::from_secs(15),
        )
        .await;
    assert_eq!(outcomes.len(), 1);
    let delivery = outcomes[0].as_ref().unwrap();
    assert_eq!((delivery.partition, delivery.offset), (0, 0));
}

#[tokio::test]
async fn the_client_config_refuses_an_unknown_ca_and_trusts_the_configured_one() {
    let dir = std::env::temp_dir().join(format!("lsk-tls-untrusted-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tls_port = free_port();
    // The handshake happens before the proxy connects upstream, so the
    // upstream address does not matter here.
    tls_proxy(
        SocketAddr::from(([127, 0, 0, 1], tls_port)),
        SocketAddr::from(([127, 0, 0, 1], 1)),
        tls_server(&dir),
    )
    .await;
    let handshake = |config: Arc<rustls::ClientConfig>| async move {
        let stream = TcpStream::connect(("127.0.0.1", tls_port)).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
    };
    let public_roots_only = tls::client_config(None).unwrap();
    let err = handshake(public_roots_only).await.unwrap_err();
    assert!(
        err.to_string().contains("certificate"),
        "a certificate from an unknown CA must be refused: {err}"
    );
    let with_ca = tls::client_config(Some(&dir.join("ca.pem"))).unwrap();
    handshake(with_ca)
        .await
        .expect("the configured CA is trusted");
}
