//! From settings to the running parts, in one place: the OSS client (with its credentials,
//! fetched and refreshed, or the embedded emulator when no endpoint is set), the
//! ObjectService with its upload and copy options, the caller authentication and the call
//! limits. `config` checks the settings and turns them into the plain option types of each
//! module (`oss::ClientOptions`, the RRSA and ECS role configurations, `Credentials`); this
//! module builds the things those options configure.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use tracing::{info, warn};

use super::{authn::AuthInterceptor, limits::CallLimits};
use crate::{
    config::Settings,
    emulator::{self, BucketSpec, EmulatorConfig, EmulatorHandle},
    lock::{InProcessLocks, RedisLocks, SharedTagWriteLock},
    oss::{
        self,
        credentials::{Credentials, Refresher, sts},
        upload::{MemoryBudget, UploadOptions},
    },
    rpc::{ObjectServiceImpl, UploadConfig, tag_policy::TagPolicy, upload_token::UploadTokenKey},
};

/// Region the embedded emulator signs with.
const EMULATOR_REGION: &str = "cn-hangzhou";

/// The OSS side of the gateway: the client, and what keeps it working.
pub(super) struct OssBackend {
    pub client: oss::Client,
    /// The embedded emulator, when no endpoint is configured.
    pub emulator: Option<EmulatorHandle>,
    /// Refreshes RRSA or ECS role credentials ahead of expiry.
    pub refresher: Option<Refresher>,
}

/// The OSS client of `[oss]` (starting the embedded emulator when no endpoint is set), with
/// its first credentials fetched and their refresher running.
pub(super) async fn oss_backend(settings: &Settings) -> anyhow::Result<OssBackend> {
    let (client_config, emulator, rrsa) = oss_client_config(settings).await?;
    let client = oss::Client::with_options(client_config, settings.oss_client_options())
        .context("configuring the OSS client")?;
    // One task per process refreshes RRSA credentials ahead of expiry; requests never do.
    let refresher = rrsa.map(|(provider, expiration)| {
        let sink = client.clone();
        Refresher::spawn(provider, expiration, sts::SERVICE, move |credentials| {
            sink.set_credentials(credentials)
        })
    });
    Ok(OssBackend {
        client,
        emulator,
        refresher,
    })
}

/// The per-object tag-write lock of `[lock]`: Redis when `lock.redis_url` is set (connected
/// now, so a wrong URL stops the start), else in process. Says at start how far tag-write
/// atomicity reaches.
pub(super) async fn tag_write_lock(settings: &Settings) -> anyhow::Result<SharedTagWriteLock> {
    let lock = &settings.lock;
    if lock.redis_url.is_empty() {
        if lock.replicas > 1 {
            warn!(
                replicas = lock.replicas,
                "lock.redis_url is not set: PatchObjectTagging and if_tags are atomic per replica only; \
                 concurrent tag writes through different replicas can lose updates (set lock.redis_url)"
            );
        } else {
            info!(
                "tag writes are serialized per object in this process (lock.redis_url is not set): \
                 patch atomicity is per replica; run one replica or set lock.redis_url"
            );
        }
        return Ok(Arc::new(InProcessLocks::new(lock.wait_ms)));
    }
    let url = crate::config::lock::redacted_redis_url(&lock.redis_url);
    let locks = RedisLocks::connect(&lock.redis_url, lock.wait_ms, lock.lease_ms)
        .await
        .with_context(|| format!("connecting to the tag-write lock's Redis at {url}"))?;
    info!(redis = %url, "tag writes are serialized per object across replicas by Redis lease locks");
    Ok(Arc::new(locks))
}

/// The ObjectService over `client`, with the `[upload]`, `[copy]`, `[audit]`, `[list]` and
/// `[tag_policy]` settings and the tag-write lock.
pub(super) fn object_service(
    client: oss::Client,
    settings: &Settings,
    locks: SharedTagWriteLock,
) -> ObjectServiceImpl {
    let upload = &settings.upload;
    let tokens = if upload.resumable_secret.is_empty() {
        info!(
            "upload.resumable_secret is not set: resumable-write ids are valid only in this process"
        );
        UploadTokenKey::random()
    } else {
        UploadTokenKey::new(upload.resumable_secret.as_bytes())
    };
    let budget = usize::try_from(upload.memory_budget_bytes).unwrap_or(usize::MAX);
    let uploads = UploadConfig {
        options: UploadOptions {
            part_size: upload.part_size_bytes,
            parallelism: upload.parallelism,
            budget: MemoryBudget::new(budget),
        },
        tokens,
    };
    ObjectServiceImpl::new(
        client,
        uploads,
        settings.copy.clone(),
        settings.audit.clone(),
        crate::rpc::list::ListOptions {
            tag_parallelism: settings.list.tag_parallelism,
        },
        locks,
    )
    .with_tag_policy(TagPolicy::new(&settings.tag_policy))
    .with_find(&settings.find)
}

/// The authentication of ObjectService callers (`[auth]`).
pub(super) fn authenticator(settings: &Settings) -> AuthInterceptor {
    AuthInterceptor::new(&settings.auth)
}

/// The ObjectService call slots and the stream idle timeout (`[server]`).
pub(super) fn call_limits(settings: &Settings) -> CallLimits {
    CallLimits::new(
        settings.server.max_concurrent_calls,
        settings.server.max_concurrent_streaming_calls,
    )
    .with_idle_timeout(settings.stream_idle_timeout())
}

/// Temporary credentials to keep fresh (RRSA or the ECS RAM role): the provider and when the
/// first credentials expire.
type RrsaRefresh = (oss::credentials::RoleProvider, std::time::SystemTime);

/// The OSS credentials, in this order of precedence: static keys when configured; else RRSA;
/// else the ECS instance's RAM role. The first temporary credentials are fetched now: a
/// failure stops the start, naming the settings to check.
async fn oss_credentials(
    settings: &Settings,
) -> anyhow::Result<(Credentials, Option<RrsaRefresh>)> {
    use oss::credentials::{RoleProvider, ecs};
    let rrsa = settings.rrsa();
    let ecs_role = settings.ecs_role();
    if let Some(credentials) = settings.credentials() {
        if rrsa.is_some() {
            info!("static OSS keys are configured: the RRSA settings are not used");
        }
        if ecs_role.is_some() {
            info!("static OSS keys are configured: oss.ecs_ram_role is not used");
        }
        return Ok((credentials, None));
    }
    let (provider, settings_to_check) = match (rrsa, ecs_role) {
        (Some(config), ecs_role) => {
            if ecs_role.is_some() {
                info!("RRSA is configured: oss.ecs_ram_role is not used");
            }
            let endpoint = config.endpoint.clone();
            let provider = sts::OidcRoleProvider::new(config).context("configuring RRSA")?;
            (
                RoleProvider::Oidc(provider),
                format!(
                    "RRSA at {endpoint}; check oss.role_arn / ALIBABA_CLOUD_ROLE_ARN, \
                     oss.oidc_provider_arn / ALIBABA_CLOUD_OIDC_PROVIDER_ARN, \
                     oss.oidc_token_file / ALIBABA_CLOUD_OIDC_TOKEN_FILE and oss.sts_endpoint"
                ),
            )
        }
        (None, Some(config)) => {
            let endpoint = config.endpoint.clone();
            let provider =
                ecs::EcsRoleProvider::new(config).context("configuring the ECS RAM role")?;
            (
                RoleProvider::Ecs(provider),
                format!(
                    "the ECS RAM role at {endpoint}; check oss.ecs_ram_role / {}, \
                     oss.ecs_metadata_endpoint and oss.ecs_disable_imdsv1 / {}",
                    ecs::ROLE_ENV,
                    ecs::IMDSV1_DISABLED_ENV
                ),
            )
        }
        (None, None) => anyhow::bail!(
            "no OSS credentials: set oss.access_key_id and oss.access_key_secret, or the RRSA \
             settings oss.role_arn, oss.oidc_provider_arn and oss.oidc_token_file, or \
             oss.ecs_ram_role"
        ),
    };
    let first = oss::credentials::fetch_initial(&provider, 3)
        .await
        .with_context(|| {
            format!(
                "fetching OSS credentials from {} ({settings_to_check})",
                provider.service()
            )
        })?;
    info!(
        source = provider.service(),
        access_key_id = %first.credentials.access_key_id,
        expires_in_secs = oss::credentials::remaining(first.expiration, std::time::SystemTime::now()).as_secs(),
        "OSS credentials from {}",
        provider.service()
    );
    Ok((first.credentials, Some((provider, first.expiration))))
}

/// The OSS client configuration, starting the embedded emulator when no endpoint is set.
async fn oss_client_config(
    settings: &Settings,
) -> anyhow::Result<(
    oss::ClientConfig,
    Option<EmulatorHandle>,
    Option<RrsaRefresh>,
)> {
    let signature_version = settings.oss.signature_version;
    let connect_timeout = settings.oss.connect_timeout_ms;
    if !settings.uses_embedded_emulator() {
        let (credentials, rrsa) = oss_credentials(settings).await?;
        let config = oss::ClientConfig {
            endpoint: settings.oss.endpoint.clone(),
            region: settings.oss.region.clone(),
            signature_version,
            addressing: settings.oss.addressing,
            credentials,
            connect_timeout,
            request_timeout: None,
        };
        return Ok((config, None, rrsa));
    }

    // The embedded emulator checks signatures with the service's own credentials, or with a
    // throwaway pair made for this process when none are configured.
    let credentials = settings.credentials().unwrap_or_else(throwaway_credentials);
    let buckets = settings
        .emulator
        .buckets
        .iter()
        .map(|bucket| BucketSpec {
            name: bucket.name.as_str().to_owned(),
            versioned: bucket.versioned,
        })
        .collect();
    let data_dir = settings.emulator_data_dir();
    let emulator = emulator::start(EmulatorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.clone(),
        credentials: vec![credentials.clone()],
        buckets,
        region: EMULATOR_REGION.into(),
        verify_signatures: true,
    })
    .await
    .context("starting the embedded OSS emulator")?;
    warn!(
        endpoint = %emulator.endpoint(),
        data_dir = %data_dir.as_deref().map_or("<memory>".into(), |d| d.display().to_string()),
        "oss.endpoint is not set: serving from the embedded OSS emulator, objects are stored locally, not in Alibaba Cloud OSS"
    );
    let config = oss::ClientConfig {
        endpoint: emulator.endpoint(),
        region: EMULATOR_REGION.into(),
        signature_version,
        addressing: oss::Addressing::Path,
        credentials,
        connect_timeout,
        request_timeout: None,
    };
    Ok((config, Some(emulator), None))
}

/// A random key pair that lives as long as this process (embedded emulator only).
fn throwaway_credentials() -> Credentials {
    use rand::distr::{Alphanumeric, SampleString};
    let mut rng = rand::rng();
    Credentials {
        access_key_id: format!("LTAIdev{}", Alphanumeric.sample_string(&mut rng, 16)),
        access_key_secret: Alphanumeric.sample_string(&mut rng, 30),
        security_token: None,
    }
}
