//! TLS for the gRPC listener: certificates (settings in `config::tls`) reloaded from their files while
//! the server runs, and the accept loop that turns TCP connections into [`Conn`]s for tonic.
//!
//! * The server certificate, its key and the client CA are read from PEM files. They are
//!   checked at start (a bad file stops the start, naming the setting), then read again every
//!   `tls.reload_interval_ms`. When their contents change, a new rustls `ServerConfig` is
//!   built and used for every later handshake; connections already open keep theirs. A new
//!   set that does not load (unreadable, not PEM, key not matching the certificate) is logged
//!   as an error and the previous one stays in use.
//! * TLS handshakes run in their own tasks, at most [`MAX_PENDING_HANDSHAKES`] at a time and
//!   each within `tls.handshake_timeout_ms`, so a slow or silent client never blocks the
//!   accept loop.
//! * A verified client certificate (mTLS) becomes a [`PeerIdentity`] (subject CN, DNS and URI
//!   SANs) in the connection's [`ConnInfo`], which tonic puts in every request's extensions;
//!   the RPCs' `AuthInterceptor` maps it to a principal.
//! * Every connection, TLS or not, gets `TCP_NODELAY` (`server.tcp_nodelay`) and, when
//!   `server.max_connection_age_secs` and `server.max_connection_age_grace_secs` are both set,
//!   is closed by force once it is older than their sum (tonic sends the graceful GOAWAY at
//!   the age itself).

use std::{
    future::Future,
    io,
    net::SocketAddr,
    path::Path,
    pin::Pin,
    sync::{Arc, Mutex, RwLock, Weak},
    task::{Context, Poll},
    time::Duration,
};

use anyhow::{Context as _, bail};
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tracing::{debug, error, info, warn};

use super::authn::peer::PeerIdentity;
use crate::config::tls::{ClientAuth, TlsSettings};

/// TLS handshakes that may be in progress at once; past this the accept loop waits (and the
/// kernel's listen backlog holds new connections).
pub const MAX_PENDING_HANDSHAKES: usize = 1024;

/// The contents of the TLS files, as last read.
#[derive(Clone, PartialEq, Eq)]
struct TlsFiles {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

fn read_file(setting: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(Path::new(path)).with_context(|| format!("{setting}: cannot read {path:?}"))
}

impl TlsFiles {
    fn read(settings: &TlsSettings) -> anyhow::Result<Self> {
        Ok(Self {
            cert: read_file("tls.cert_file", &settings.cert_file)?,
            key: read_file("tls.key_file", &settings.key_file)?,
            client_ca: if settings.client_ca_file.is_empty() {
                None
            } else {
                Some(read_file("tls.client_ca_file", &settings.client_ca_file)?)
            },
        })
    }
}

fn parse_certificates(setting: &str, pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow::anyhow!("{setting}: not a PEM certificate file: {err}"))?;
    if certs.is_empty() {
        bail!("{setting}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file");
    }
    Ok(certs)
}

/// Builds the rustls configuration from the files' contents; errors name the setting.
fn build_server_config(settings: &TlsSettings, files: &TlsFiles) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = parse_certificates("tls.cert_file", &files.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|err| {
        anyhow::anyhow!("tls.key_file: no PEM private key (PKCS#8, PKCS#1 or SEC1): {err}")
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("tls: the TLS provider supports no protocol version")?;
    let builder = match (settings.client_auth, &files.client_ca) {
        (ClientAuth::Optional | ClientAuth::Required, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for cert in parse_certificates("tls.client_ca_file", ca)? {
                roots.add(cert).map_err(|err| {
                    anyhow::anyhow!("tls.client_ca_file: not a usable CA certificate: {err}")
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if settings.client_auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|err| anyhow::anyhow!("tls.client_ca_file: {err}"))?,
            )
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|err| {
        anyhow::anyhow!(
            "tls.key_file: the key does not fit the certificate in tls.cert_file, or is unusable: {err}"
        )
    })?;
    // gRPC is HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Checks the `[tls]` settings and loads their files, naming the first bad setting: what
/// `serve` and `check-config` refuse before starting.
pub fn check(settings: &TlsSettings) -> anyhow::Result<()> {
    settings.validate()?;
    ServerTls::load(settings)?;
    Ok(())
}

/// The TLS configuration in force, replaced when the files change.
pub struct ServerTls {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
    /// The files as last read (loaded or not), so a broken set is reported once.
    seen: Mutex<TlsFiles>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_file", &self.settings.cert_file)
            .field("client_auth", &self.settings.client_auth)
            .finish_non_exhaustive()
    }
}

/// What [`ServerTls::reload_if_changed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// The files are as last read.
    Unchanged,
    /// New files were loaded and are used from the next handshake on.
    Reloaded,
    /// The files changed but do not load; the previous configuration stays.
    Failed,
}

impl ServerTls {
    /// Loads the configured files; `None` when TLS is off.
    pub fn load(settings: &TlsSettings) -> anyhow::Result<Option<Arc<Self>>> {
        if !settings.enabled() {
            return Ok(None);
        }
        let files = TlsFiles::read(settings)?;
        let config = build_server_config(settings, &files)?;
        Ok(Some(Arc::new(Self {
            settings: settings.clone(),
            current: RwLock::new(Arc::new(config)),
            seen: Mutex::new(files),
        })))
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again and switches to them when they changed and load.
    pub fn reload_if_changed(&self) -> Reload {
        let files = match TlsFiles::read(&self.settings) {
            Ok(files) => files,
            Err(err) => {
                // A file in the middle of being replaced; try again next time.
                warn!(error = %format!("{err:#}"), "TLS files not readable; keeping the current certificate");
                return Reload::Failed;
            }
        };
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == files {
                return Reload::Unchanged;
            }
            *seen = files.clone();
        }
        match build_server_config(&self.settings, &files) {
            Ok(config) => {
                let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
                *current = Arc::new(config);
                info!(cert_file = %self.settings.cert_file, "TLS certificate reloaded");
                Reload::Reloaded
            }
            Err(err) => {
                error!(
                    error = %format!("{err:#}"),
                    "new TLS files do not load; keeping the previous certificate"
                );
                Reload::Failed
            }
        }
    }

    /// Checks the files every `tls.reload_interval_ms` until the last [`Arc`] is dropped.
    fn spawn_watcher(self: &Arc<Self>) {
        if self.settings.reload_interval_ms.is_zero() {
            return;
        }
        let interval = self.settings.reload_interval_ms;
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(tls) = weak.upgrade() else { break };
                // File reads and certificate parsing are blocking work.
                let _ = tokio::task::spawn_blocking(move || tls.reload_if_changed()).await;
            }
        });
    }
}

/// Connection-level options applied by [`incoming`].
#[derive(Clone, Debug)]
pub struct ConnOptions {
    /// Set `TCP_NODELAY` on accepted sockets.
    pub tcp_nodelay: bool,
    /// Close a connection by force once it is this old (max age + grace); `None` = never.
    pub force_close_after: Option<Duration>,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// How long a client has, once connected (and past TLS), to send the HTTP/2 preface.
    pub preface_timeout: Duration,
}

/// Length of the HTTP/2 client connection preface (`PRI * HTTP/2.0...`).
const HTTP2_PREFACE_LEN: usize = 24;

/// The deadline for a connection's HTTP/2 preface. hyper waits for the preface forever, and a
/// connection that never sends one holds a socket and a task; keepalive PINGs cannot start
/// before it.
struct PrefaceDeadline {
    expires: Pin<Box<tokio::time::Sleep>>,
    /// Preface bytes not yet received.
    awaited: usize,
    timeout: Duration,
}

/// What tonic records about a connection (in each request's extensions).
#[derive(Clone, Debug, Default)]
pub struct ConnInfo {
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// The verified client certificate's identity (mTLS), if one was presented.
    pub peer: Option<Arc<PeerIdentity>>,
}

enum ConnIo {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection, plaintext or TLS.
pub struct Conn {
    io: ConnIo,
    info: ConnInfo,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Cleared once the whole preface has arrived.
    preface: Option<PrefaceDeadline>,
}

impl Conn {
    fn new(io: ConnIo, info: ConnInfo, options: &ConnOptions) -> Self {
        Self {
            io,
            info,
            deadline: options
                .force_close_after
                .map(|after| Box::pin(tokio::time::sleep(after))),
            preface: Some(PrefaceDeadline {
                expires: Box::pin(tokio::time::sleep(options.preface_timeout)),
                awaited: HTTP2_PREFACE_LEN,
                timeout: options.preface_timeout,
            }),
        }
    }

    /// Fails the connection when its preface is overdue.
    fn check_preface(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(preface) = self.preface.as_mut()
            && preface.expires.as_mut().poll(cx).is_ready()
        {
            debug!(remote_addr = ?self.info.remote_addr, "no HTTP/2 preface in time; closing the connection");
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "connection closed: no HTTP/2 preface within {} ms (server.preface_timeout_ms)",
                    preface.timeout.as_millis()
                ),
            ));
        }
        Ok(())
    }

    /// Counts `read` bytes towards the preface.
    fn preface_received(&mut self, read: usize) {
        if let Some(preface) = self.preface.as_mut() {
            preface.awaited = preface.awaited.saturating_sub(read);
            if preface.awaited == 0 {
                self.preface = None;
            }
        }
    }

    /// Fails the connection once its forced-close deadline has passed.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection closed: older than server.max_connection_age_secs + max_connection_age_grace_secs",
            ));
        }
        Ok(())
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_deadline(cx)?;
        this.check_preface(cx)?;
        let before = buf.filled().len();
        let read = match &mut this.io {
            ConnIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if read.is_ready() {
            this.preface_received(buf.filled().len() - before);
        }
        read
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_deadline(cx)?;
        match &mut this.io {
            ConnIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_deadline(cx)?;
        match &mut this.io {
            ConnIo::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            ConnIo::Plain(s) => s.is_write_vectored(),
            ConnIo::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            ConnIo::Plain(s) => Pin::new(s).poll_flush(cx),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            ConnIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ConnIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The identity in a TLS connection's verified client certificate, if any.
fn peer_identity(stream: &TlsStream<TcpStream>) -> Option<Arc<PeerIdentity>> {
    let (_, session) = stream.get_ref();
    let leaf = session.peer_certificates()?.first()?;
    match PeerIdentity::from_der(leaf) {
        Ok(identity) => Some(Arc::new(identity)),
        Err(err) => {
            // rustls verified it, so this is unexpected; the caller stays anonymous.
            warn!(error = %err, "cannot read the client certificate's names");
            None
        }
    }
}

/// Accepts connections until the returned stream is dropped (tonic drops it when the server
/// stops). With `tls`, each handshake runs in its own task with a timeout.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
    options: ConnOptions,
) -> ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = mpsc::channel::<io::Result<Conn>>(64);
    if let Some(tls) = &tls {
        tls.spawn_watcher();
    }
    tokio::spawn(async move {
        let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, remote_addr) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // E.g. out of file descriptors: do not spin.
                    warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if options.tcp_nodelay
                && let Err(err) = stream.set_nodelay(true)
            {
                debug!(error = %err, "cannot set TCP_NODELAY");
            }
            let Some(tls) = &tls else {
                let info = ConnInfo {
                    remote_addr: Some(remote_addr),
                    peer: None,
                };
                if tx
                    .send(Ok(Conn::new(ConnIo::Plain(stream), info, &options)))
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            };
            let permit = tokio::select! {
                () = tx.closed() => break,
                permit = handshakes.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let acceptor = TlsAcceptor::from(tls.current());
            let tx = tx.clone();
            let options = options.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let handshake =
                    tokio::time::timeout(options.handshake_timeout, acceptor.accept(stream)).await;
                match handshake {
                    Ok(Ok(stream)) => {
                        let info = ConnInfo {
                            remote_addr: Some(remote_addr),
                            peer: peer_identity(&stream),
                        };
                        let conn = Conn::new(ConnIo::Tls(Box::new(stream)), info, &options);
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Ok(Err(err)) => log_handshake_error(remote_addr, &err),
                    Err(_) => debug!(%remote_addr, "TLS handshake timed out"),
                }
            });
        }
        debug!("stopped accepting connections");
    });
    ReceiverStream::new(rx)
}

/// Certificate problems are worth an INFO line (they are what mTLS misconfiguration looks
/// like); anything else (port scans, plaintext clients) only DEBUG.
fn log_handshake_error(remote_addr: SocketAddr, err: &io::Error) {
    let tls_error = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::AlertReceived(_),
        ) => info!(%remote_addr, error = %err, "TLS handshake refused"),
        _ => debug!(%remote_addr, error = %err, "TLS handshake failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pki {
        dir: tempfile::TempDir,
    }

    fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    impl Pki {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn write(&self, name: &str, contents: &str) -> String {
            let path = self.dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path.display().to_string()
        }

        fn settings(&self) -> TlsSettings {
            let (cert, key) = self_signed("localhost");
            TlsSettings {
                cert_file: self.write("tls.crt", &cert),
                key_file: self.write("tls.key", &key),
                ..TlsSettings::default()
            }
        }
    }

    fn error_of(settings: &TlsSettings) -> String {
        format!("{:#}", check(settings).unwrap_err())
    }

    #[test]
    fn plaintext_by_default_and_valid_files_load() {
        assert!(!TlsSettings::default().enabled());
        assert!(TlsSettings::default().validate().is_ok());
        let pki = Pki::new();
        let settings = pki.settings();
        check(&settings).unwrap();
        let tls = ServerTls::load(&settings).unwrap().unwrap();
        assert_eq!(tls.current().alpn_protocols, vec![b"h2".to_vec()]);
    }

    #[test]
    fn bad_tls_settings_are_named() {
        let pki = Pki::new();
        let good = pki.settings();
        let (_, other_key) = self_signed("other");
        let cases: Vec<(TlsSettings, &str)> = vec![
            (
                TlsSettings {
                    key_file: String::new(),
                    ..good.clone()
                },
                "tls.cert_file and tls.key_file",
            ),
            (
                TlsSettings {
                    cert_file: String::new(),
                    ..good.clone()
                },
                "tls.cert_file and tls.key_file",
            ),
            (
                TlsSettings {
                    cert_file: pki.dir.path().join("missing.crt").display().to_string(),
                    ..good.clone()
                },
                "tls.cert_file: cannot read",
            ),
            (
                TlsSettings {
                    cert_file: pki.write("garbage.crt", "not a certificate"),
                    ..good.clone()
                },
                "tls.cert_file",
            ),
            (
                TlsSettings {
                    key_file: pki.write("garbage.key", "not a key"),
                    ..good.clone()
                },
                "tls.key_file",
            ),
            (
                TlsSettings {
                    key_file: pki.write("other.key", &other_key),
                    ..good.clone()
                },
                "tls.key_file: the key does not fit",
            ),
            (
                TlsSettings {
                    client_auth: ClientAuth::Required,
                    ..good.clone()
                },
                "tls.client_ca_file",
            ),
            (
                TlsSettings {
                    client_ca_file: good.cert_file.clone(),
                    ..good.clone()
                },
                "tls.client_auth",
            ),
            (
                TlsSettings {
                    client_ca_file: pki.write("garbage-ca.crt", "nope"),
                    client_auth: ClientAuth::Optional,
                    ..good.clone()
                },
                "tls.client_ca_file",
            ),
            (
                TlsSettings {
                    cert_file: String::new(),
                    key_file: String::new(),
                    client_auth: ClientAuth::Required,
                    ..good.clone()
                },
                "tls.client_ca_file / tls.client_auth",
            ),
            (
                TlsSettings {
                    handshake_timeout_ms: Duration::ZERO,
                    ..good.clone()
                },
                "tls.handshake_timeout_ms",
            ),
            (
                TlsSettings {
                    reload_interval_ms: Duration::from_millis(10),
                    ..good.clone()
                },
                "tls.reload_interval_ms",
            ),
        ];
        for (settings, needle) in cases {
            let err = error_of(&settings);
            assert!(err.contains(needle), "{needle}: {err}");
        }
        // A CA for client certificates, optional or required.
        for mode in [ClientAuth::Optional, ClientAuth::Required] {
            let with_ca = TlsSettings {
                client_ca_file: good.cert_file.clone(),
                client_auth: mode,
                ..good.clone()
            };
            check(&with_ca).unwrap();
            assert!(with_ca.accepts_client_certificates());
            assert_eq!(
                with_ca.requires_client_certificates(),
                mode == ClientAuth::Required
            );
        }
    }

    #[test]
    fn reload_switches_to_new_files_and_keeps_the_old_on_error() {
        let pki = Pki::new();
        let settings = pki.settings();
        let tls = ServerTls::load(&settings).unwrap().unwrap();
        let first = tls.current();
        assert_eq!(tls.reload_if_changed(), Reload::Unchanged);
        assert!(Arc::ptr_eq(&first, &tls.current()));

        // A certificate whose key has not been written yet: refused, the old one stays.
        let (cert, key) = self_signed("localhost");
        std::fs::write(&settings.cert_file, &cert).unwrap();
        assert_eq!(tls.reload_if_changed(), Reload::Failed);
        assert!(Arc::ptr_eq(&first, &tls.current()));
        // Reported once, not at every check.
        assert_eq!(tls.reload_if_changed(), Reload::Unchanged);

        std::fs::write(&settings.key_file, &key).unwrap();
        assert_eq!(tls.reload_if_changed(), Reload::Reloaded);
        assert!(!Arc::ptr_eq(&first, &tls.current()));

        // An unreadable file keeps the current configuration too.
        let second = tls.current();
        std::fs::remove_file(&settings.key_file).unwrap();
        assert_eq!(tls.reload_if_changed(), Reload::Failed);
        assert!(Arc::ptr_eq(&second, &tls.current()));
    }
}
