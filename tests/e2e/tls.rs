//! TLS and mTLS on the gRPC listener: a round trip over TLS, client certificates mapped to
//! principals under the policy, required client auth, certificates reloaded from their
//! files while the server runs, and the plaintext health listener next to a TLS listener.
//! Certificates are made here with rcgen.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use ossgate::{
    config::auth::{AuthSettings, CertificateSetting},
    proto::{self, object_service_client::ObjectServiceClient},
    server::{RunningServer, tls::Reload},
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use tonic::{
    Code, Status,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;

use crate::common::*;

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A test CA that issues server and client certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self) -> Pem {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .distinguished_name
            .push(DnType::CommonName, "ossgate");
        self.issue(params)
    }

    /// A client certificate with this CN and URI SANs.
    pub fn client(&self, common_name: &str, uris: &[&str]) -> Pem {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        for uri in uris {
            params
                .subject_alt_names
                .push(SanType::URI((*uri).try_into().unwrap()));
        }
        params
            .extended_key_usages
            .push(rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Pem {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Writes `contents` to `path` atomically (as a Kubernetes secret update does, by renaming).
pub fn write_atomically(path: &Path, contents: &str) {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, contents).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// Files of one gateway's TLS setup.
pub struct TlsFiles {
    _dir: tempfile::TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TlsFiles {
    pub fn new(server: &Pem, client_ca: &Ca) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = Self {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
            ca: dir.path().join("ca.crt"),
            _dir: dir,
        };
        std::fs::write(&files.cert, &server.cert).unwrap();
        std::fs::write(&files.key, &server.key).unwrap();
        std::fs::write(&files.ca, client_ca.pem()).unwrap();
        files
    }
}

/// A gateway with TLS in front of the stack's emulator.
pub async fn tls_gateway(
    stack: &Stack,
    files: &TlsFiles,
    client_auth: &str,
    auth: AuthSettings,
    extra: &[(&str, &str)],
) -> RunningServer {
    let (cert, key, ca) = (
        files.cert.display().to_string(),
        files.key.display().to_string(),
        files.ca.display().to_string(),
    );
    let mut settings = vec![
        ("OSSGATE_TLS__CERT_FILE", cert.as_str()),
        ("OSSGATE_TLS__KEY_FILE", key.as_str()),
        ("OSSGATE_TLS__CLIENT_AUTH", client_auth),
    ];
    if client_auth != "none" {
        settings.push(("OSSGATE_TLS__CLIENT_CA_FILE", ca.as_str()));
    }
    settings.extend_from_slice(extra);
    start_gateway(stack, auth, &settings).await
}

/// A TLS channel trusting `ca`, presenting `identity` when given.
pub async fn tls_channel(
    addr: SocketAddr,
    ca: &str,
    identity: Option<&Pem>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(pem) = identity {
        tls = tls.identity(Identity::from_pem(&pem.cert, &pem.key));
    }
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
}

async fn tls_client(
    addr: SocketAddr,
    ca: &str,
    identity: Option<&Pem>,
) -> ObjectServiceClient<Channel> {
    ObjectServiceClient::new(tls_channel(addr, ca, identity).await.expect("TLS connect"))
}

/// The certificate the server presents to a new connection (DER).
pub async fn served_certificate(addr: SocketAddr, ca: &str) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    let (_, session) = stream.get_ref();
    session.peer_certificates().unwrap()[0].to_vec()
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

const WRITER_SPIFFE: &str = "spiffe://ossgate.test/ns/ingest/sa/writer";

fn mtls_auth() -> AuthSettings {
    AuthSettings {
        tokens: Vec::new(),
        certificates: vec![
            CertificateSetting {
                principal: "writer".into(),
                san: WRITER_SPIFFE.into(),
                common_name: String::new(),
            },
            CertificateSetting {
                principal: "tagger".into(),
                san: String::new(),
                common_name: "tagger".into(),
            },
        ],
        policy: vec![
            policy_rule("writer", &[BUCKET], &[], &["*"]),
            policy_rule("tagger", &[BUCKET], &["logs/"], &["read", "tag"]),
        ],
    }
}

fn assert_denied(status: &Status, principal: &str, operation: &str) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.domain, "ossgate.auth");
    assert_eq!(info.metadata["principal"], principal);
    assert_eq!(info.metadata["operation"], operation);
}

async fn write_over(client: &mut ObjectServiceClient<Channel>, key: &str, data: &[u8]) {
    let message = proto::WriteObjectRequest {
        spec: Some(spec(BUCKET, key)),
        data: bytes::Bytes::copy_from_slice(data),
        finish_write: true,
        ..Default::default()
    };
    client
        .write_object(tokio_stream::iter(vec![message]))
        .await
        .expect("write over TLS");
}

#[tokio::test]
async fn mtls_principals_under_the_policy_and_open_health() {
    let stack = Stack::start().await;
    let ca = Ca::new("ossgate test CA");
    let files = TlsFiles::new(&ca.server(), &ca);
    let gateway = tls_gateway(&stack, &files, "optional", mtls_auth(), &[]).await;
    let addr = gateway.local_addr();
    let ca_pem = ca.pem();

    // TLS round trip as the writer (URI SAN → principal "writer").
    let writer_cert = ca.client("writer-pod", &[WRITER_SPIFFE]);
    let mut writer = tls_client(addr, &ca_pem, Some(&writer_cert)).await;
    let data = pseudo_random(300_000, 7);
    write_over(&mut writer, "logs/a.bin", &data).await;
    write_over(&mut writer, "other/b.bin", b"other").await;
    let (_, read_back) = read(
        &mut writer,
        proto::ReadObjectRequest {
            bucket: BUCKET.into(),
            key: "logs/a.bin".into(),
            ..Default::default()
        },
    )
    .await
    .expect("read over TLS");
    assert_eq!(read_back, data);

    // The tagger (CN → principal "tagger") may tag under logs/ only.
    let mut tagger = tls_client(addr, &ca_pem, Some(&ca.client("tagger", &[]))).await;
    let put = |key: &str| proto::PutObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        tagging: Some(tags(&[("via", "mtls")])),
        ..Default::default()
    };
    tagger
        .put_object_tagging(put("logs/a.bin"))
        .await
        .expect("tagger tags logs/");
    assert_eq!(
        get_tags(&mut tagger, BUCKET, "logs/a.bin", "").await,
        tags(&[("via", "mtls")])
    );
    let before = stack.oss_requests();
    // Wrong prefix.
    let status = tagger
        .put_object_tagging(put("other/b.bin"))
        .await
        .unwrap_err();
    assert_denied(&status, "tagger", "tag");
    // Wrong operation.
    let status = tagger
        .delete_object(proto::DeleteObjectRequest {
            bucket: BUCKET.into(),
            key: "logs/a.bin".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_denied(&status, "tagger", "delete");

    // A valid certificate that maps to no principal, and no certificate at all.
    let mut stranger = tls_client(addr, &ca_pem, Some(&ca.client("stranger", &[]))).await;
    let status = stranger
        .put_object_tagging(put("logs/a.bin"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("CN=stranger"), "{status:?}");
    let anonymous = tls_channel(addr, &ca_pem, None)
        .await
        .expect("optional client auth");
    let status = ObjectServiceClient::new(anonymous.clone())
        .put_object_tagging(put("logs/a.bin"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(
        stack.oss_requests(),
        before,
        "refused calls must not reach OSS"
    );

    // Health and reflection need no identity.
    assert_health_and_reflection_open(anonymous).await;

    // A certificate from another CA fails the handshake.
    let other_ca = Ca::new("someone else's CA");
    let forged = other_ca.client("tagger", &[]);
    let refused = match tls_channel(addr, &ca_pem, Some(&forged)).await {
        Err(_) => true,
        Ok(channel) => health(channel).await.is_err(),
    };
    assert!(
        refused,
        "a client certificate from an unknown CA must be refused"
    );
    // Plaintext to a TLS port gets nowhere either.
    let plaintext = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await;
    let refused = match plaintext {
        Err(_) => true,
        Ok(channel) => health(channel).await.is_err(),
    };
    assert!(refused, "plaintext must not be served on a TLS listener");

    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn required_client_auth_refuses_connections_without_a_certificate() {
    let stack = Stack::start().await;
    let ca = Ca::new("ossgate test CA");
    let files = TlsFiles::new(&ca.server(), &ca);
    // No [auth]: the CA is the gate; any certificate it issued gets in.
    let gateway = tls_gateway(&stack, &files, "required", AuthSettings::default(), &[]).await;
    let addr = gateway.local_addr();
    let ca_pem = ca.pem();

    let refused = match tls_channel(addr, &ca_pem, None).await {
        Err(_) => true,
        Ok(channel) => health(channel).await.is_err(),
    };
    assert!(refused, "no client certificate: the handshake must fail");

    let channel = tls_channel(addr, &ca_pem, Some(&ca.client("anyone", &[])))
        .await
        .expect("a certificate from the CA is accepted");
    health(channel.clone()).await.expect("health over mTLS");
    let status = ObjectServiceClient::new(channel)
        .head_object(proto::HeadObjectRequest {
            bucket: BUCKET.into(),
            key: "missing".into(),
            version_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "reached OSS: {status:?}");

    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn certificates_are_reloaded_without_a_restart() {
    let stack = Stack::start().await;
    let ca = Ca::new("ossgate test CA");
    let first = ca.server();
    let files = TlsFiles::new(&first, &ca);
    let gateway = tls_gateway(
        &stack,
        &files,
        "none",
        AuthSettings::default(),
        &[("OSSGATE_TLS__RELOAD_INTERVAL_MS", "100")],
    )
    .await;
    let addr = gateway.local_addr();
    let ca_pem = ca.pem();
    assert_eq!(served_certificate(addr, &ca_pem).await, der_of(&first.cert));
    // A connection made now keeps working across the reload.
    let mut old_client = tls_client(addr, &ca_pem, None).await;

    // New files, key first (as a secret rotation might write them).
    let second = ca.server();
    write_atomically(&files.key, &second.key);
    write_atomically(&files.cert, &second.cert);
    let wanted = der_of(&second.cert);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if served_certificate(addr, &ca_pem).await == wanted {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not served within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut new_client = tls_client(addr, &ca_pem, None).await;
    write_over(&mut new_client, "reloaded.txt", b"after reload").await;
    assert!(
        old_client
            .head_object(proto::HeadObjectRequest {
                bucket: BUCKET.into(),
                key: "reloaded.txt".into(),
                version_id: String::new(),
                ..Default::default()
            })
            .await
            .is_ok(),
        "connections made before the reload keep working"
    );

    // A broken certificate file is refused; the last good certificate stays in use.
    write_atomically(&files.cert, "-----BEGIN CERTIFICATE-----\nbroken\n");
    let tls = gateway.tls().expect("TLS is on");
    let outcome = tls.reload_if_changed();
    assert!(
        matches!(outcome, Reload::Failed | Reload::Unchanged),
        "{outcome:?}"
    );
    assert_eq!(served_certificate(addr, &ca_pem).await, wanted);

    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

/// The status of `service` on grpc.health.v1 over `channel`.
async fn health_status(channel: Channel, service: &str) -> Result<i32, Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|r| r.into_inner().status)
}

/// Waits until `gateway` has `calls` streaming ObjectService calls in progress.
async fn wait_for_streaming_calls(gateway: &RunningServer, calls: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while gateway.call_limits().streaming_in_use() != calls {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{calls} streaming call(s) did not reach the gateway within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kubernetes `grpc` probes speak plaintext: `server.health_listen` serves grpc.health.v1
/// (and nothing else) without TLS, with the statuses of the TLS listener, until shutdown.
#[tokio::test]
async fn plaintext_health_listener_serves_only_health_and_follows_shutdown() {
    use tonic_reflection::pb::{v1, v1alpha};
    let stack = Stack::start().await;
    let ca = Ca::new("ossgate test CA");
    let files = TlsFiles::new(&ca.server(), &ca);
    let gateway = tls_gateway(
        &stack,
        &files,
        "none",
        AuthSettings::default(),
        &[("OSSGATE_SERVER__HEALTH_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let addr = gateway.local_addr();
    let health_addr = gateway.health_addr().expect("server.health_listen is set");
    assert!(health_addr.ip().is_loopback() && health_addr.port() != 0);
    assert_ne!(health_addr, addr);
    let ca_pem = ca.pem();

    // Plaintext health: what the readiness and liveness probes ask.
    let plain = channel(health_addr).await;
    for service in ["ossgate.v1.ObjectService", ""] {
        assert_eq!(
            health_status(plain.clone(), service).await.unwrap(),
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let status = health_status(plain.clone(), "no.such.Service")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Nothing else is served there: no ObjectService, no reflection.
    let before = stack.oss_requests();
    let status = ObjectServiceClient::new(plain.clone())
        .head_object(proto::HeadObjectRequest {
            bucket: BUCKET.into(),
            key: "missing".into(),
            version_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let status = ObjectServiceClient::new(plain.clone())
        .write_object(tokio_stream::iter(write_messages(
            spec(BUCKET, "via-health-port.txt"),
            b"must not be written",
            1024,
        )))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(stack.oss_requests(), before, "nothing reached OSS");
    let status = v1::server_reflection_client::ServerReflectionClient::new(plain.clone())
        .server_reflection_info(tokio_stream::iter(vec![v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        }]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let status = v1alpha::server_reflection_client::ServerReflectionClient::new(plain.clone())
        .server_reflection_info(tokio_stream::iter(vec![v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
        }]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");

    // The TLS listener still serves everything, and no plaintext.
    let secure = tls_channel(addr, &ca_pem, None).await.expect("TLS connect");
    assert_health_and_reflection_open(secure.clone()).await;
    let mut client = ObjectServiceClient::new(secure.clone());
    write_over(&mut client, "tls-with-health-port.txt", b"over TLS").await;
    let plaintext_on_tls = match Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
    {
        Err(_) => true,
        Ok(channel) => health(channel).await.is_err(),
    };
    assert!(
        plaintext_on_tls,
        "the TLS listener must not serve plaintext"
    );

    // Shutdown with a write in flight on the TLS listener: while it drains, the health
    // listener answers NOT_SERVING (a Watch sees the change, a new Check too).
    let mut watch = HealthClient::new(plain.clone())
        .watch(HealthCheckRequest {
            service: "ossgate.v1.ObjectService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    let (tx, write) = open_write(&client, spec(BUCKET, "draining.txt"), b"first, ").await;
    wait_for_streaming_calls(&gateway, 1).await;
    let shutdown = tokio::spawn(gateway.shutdown());
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::NotServing as i32
    );
    for service in ["ossgate.v1.ObjectService", ""] {
        assert_eq!(
            health_status(channel(health_addr).await, service)
                .await
                .unwrap(),
            ServingStatus::NotServing as i32,
            "{service:?} while draining"
        );
    }
    assert!(!shutdown.is_finished(), "the write is still in flight");

    tx.send(proto::WriteObjectRequest {
        write_offset: 7,
        data: bytes::Bytes::from_static(b"second"),
        finish_write: true,
        ..Default::default()
    })
    .await
    .unwrap();
    // The stream ends after finish_write: the write is answered once it has.
    drop(tx);
    let written = write.await.unwrap().expect("the in-flight write completes");
    assert_eq!(written.into_inner().size, 13);
    shutdown.await.unwrap().unwrap();

    // Stopped with the server: the open Watch ended cleanly, and the port is closed.
    let end = watch.message().await;
    assert!(
        matches!(end, Ok(None)),
        "the Watch stream ends when the health listener stops: {end:?}"
    );
    assert!(
        Channel::from_shared(format!("http://{health_addr}"))
            .unwrap()
            .connect()
            .await
            .is_err(),
        "the health listener is closed after shutdown"
    );
    stack.stop().await;
}
