//! gRPC services: each call is validated into [`crate::model`] types, sent through
//! [`crate::oss::Client`], and its failures mapped to statuses in [`status`]. One file per
//! RPC family.

mod append;
mod convert;
mod copy;
mod object;
pub mod status;
mod symlink;
mod tagging;
pub mod upload_token;
mod validate;
mod write;

use std::{future::Future, time::Instant};

use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, info, info_span};

use crate::{
    config::{CopySettings, Settings},
    oss::{
        Client,
        upload::{MemoryBudget, UploadOptions},
    },
    proto,
    proto::object_service_server::ObjectService,
};
use upload_token::UploadTokenKey;

pub use object::READ_CHUNK_BYTES;
pub use write::MAX_PUT_OBJECT_BYTES;

/// The `ossgate.v1.ObjectService` implementation.
#[derive(Clone)]
pub struct ObjectServiceImpl {
    client: Client,
    uploads: UploadConfig,
    copy: CopySettings,
}

/// How streamed writes run, shared by every call.
#[derive(Clone, Debug)]
pub struct UploadConfig {
    /// Part size, parallelism and the memory budget shared by all uploads.
    pub options: UploadOptions,
    /// Protects resumable-write ids.
    pub tokens: UploadTokenKey,
}

impl ObjectServiceImpl {
    /// A service that forwards to OSS through `client`, with the `[upload]` and `[copy]`
    /// settings.
    pub fn new(client: Client, settings: &Settings) -> Self {
        let upload = &settings.upload;
        let tokens = if upload.resumable_secret.is_empty() {
            tracing::info!(
                "upload.resumable_secret is not set: resumable-write ids are valid only in this process"
            );
            UploadTokenKey::random()
        } else {
            UploadTokenKey::new(upload.resumable_secret.as_bytes())
        };
        let budget = usize::try_from(upload.memory_budget_bytes).unwrap_or(usize::MAX);
        Self {
            client,
            uploads: UploadConfig {
                options: UploadOptions {
                    part_size: upload.part_size_bytes,
                    parallelism: upload.parallelism,
                    budget: MemoryBudget::new(budget),
                },
                tokens,
            },
            copy: settings.copy.clone(),
        }
    }

    /// Bytes all uploads hold in memory right now.
    pub fn upload_memory_in_use(&self) -> usize {
        self.uploads.options.budget.in_use()
    }
}

/// Runs one call inside a span and logs its outcome (method, gRPC code, duration).
async fn observe<T>(
    method: &'static str,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<Response<T>, Status> {
    let started = Instant::now();
    let span = info_span!("rpc", method);
    let result = call.instrument(span.clone()).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| match &result {
        Ok(_) => info!(code = "OK", elapsed_ms, "call finished"),
        Err(status) => info!(
            code = ?status.code(),
            message = status.message(),
            elapsed_ms,
            "call failed"
        ),
    });
    result.map(Response::new)
}

#[tonic::async_trait]
impl ObjectService for ObjectServiceImpl {
    async fn write_object(
        &self,
        request: Request<Streaming<proto::WriteObjectRequest>>,
    ) -> Result<Response<proto::WriteObjectResponse>, Status> {
        observe(
            "WriteObject",
            write::write(&self.client, &self.uploads, request.into_inner()),
        )
        .await
    }

    type ReadObjectStream = object::ReadObjectStream;

    async fn read_object(
        &self,
        request: Request<proto::ReadObjectRequest>,
    ) -> Result<Response<Self::ReadObjectStream>, Status> {
        observe(
            "ReadObject",
            object::read(&self.client, request.into_inner()),
        )
        .await
    }

    async fn head_object(
        &self,
        request: Request<proto::HeadObjectRequest>,
    ) -> Result<Response<proto::HeadObjectResponse>, Status> {
        observe(
            "HeadObject",
            object::head(&self.client, request.into_inner()),
        )
        .await
    }

    async fn delete_object(
        &self,
        request: Request<proto::DeleteObjectRequest>,
    ) -> Result<Response<proto::DeleteObjectResponse>, Status> {
        observe(
            "DeleteObject",
            object::delete(&self.client, request.into_inner()),
        )
        .await
    }

    async fn put_object_tagging(
        &self,
        request: Request<proto::PutObjectTaggingRequest>,
    ) -> Result<Response<proto::PutObjectTaggingResponse>, Status> {
        observe(
            "PutObjectTagging",
            tagging::put(&self.client, request.into_inner()),
        )
        .await
    }

    async fn get_object_tagging(
        &self,
        request: Request<proto::GetObjectTaggingRequest>,
    ) -> Result<Response<proto::GetObjectTaggingResponse>, Status> {
        observe(
            "GetObjectTagging",
            tagging::get(&self.client, request.into_inner()),
        )
        .await
    }

    async fn delete_object_tagging(
        &self,
        request: Request<proto::DeleteObjectTaggingRequest>,
    ) -> Result<Response<proto::DeleteObjectTaggingResponse>, Status> {
        observe(
            "DeleteObjectTagging",
            tagging::delete(&self.client, request.into_inner()),
        )
        .await
    }

    async fn put_symlink(
        &self,
        request: Request<proto::PutSymlinkRequest>,
    ) -> Result<Response<proto::PutSymlinkResponse>, Status> {
        observe(
            "PutSymlink",
            symlink::put(&self.client, request.into_inner()),
        )
        .await
    }

    async fn get_symlink(
        &self,
        request: Request<proto::GetSymlinkRequest>,
    ) -> Result<Response<proto::GetSymlinkResponse>, Status> {
        observe(
            "GetSymlink",
            symlink::get(&self.client, request.into_inner()),
        )
        .await
    }

    async fn copy_object(
        &self,
        request: Request<proto::CopyObjectRequest>,
    ) -> Result<Response<proto::CopyObjectResponse>, Status> {
        observe(
            "CopyObject",
            copy::copy(&self.client, &self.copy, request.into_inner()),
        )
        .await
    }

    async fn update_object_metadata(
        &self,
        request: Request<proto::UpdateObjectMetadataRequest>,
    ) -> Result<Response<proto::UpdateObjectMetadataResponse>, Status> {
        observe(
            "UpdateObjectMetadata",
            copy::update_metadata(&self.client, request.into_inner()),
        )
        .await
    }

    async fn append_object(
        &self,
        request: Request<Streaming<proto::AppendObjectRequest>>,
    ) -> Result<Response<proto::AppendObjectResponse>, Status> {
        observe(
            "AppendObject",
            append::append(&self.client, request.into_inner()),
        )
        .await
    }

    async fn start_resumable_write(
        &self,
        request: Request<proto::StartResumableWriteRequest>,
    ) -> Result<Response<proto::StartResumableWriteResponse>, Status> {
        observe(
            "StartResumableWrite",
            write::start_resumable(&self.client, &self.uploads, request.into_inner()),
        )
        .await
    }

    async fn query_write_status(
        &self,
        request: Request<proto::QueryWriteStatusRequest>,
    ) -> Result<Response<proto::QueryWriteStatusResponse>, Status> {
        observe(
            "QueryWriteStatus",
            write::query_status(&self.client, &self.uploads, request.into_inner()),
        )
        .await
    }

    async fn abort_resumable_write(
        &self,
        request: Request<proto::AbortResumableWriteRequest>,
    ) -> Result<Response<proto::AbortResumableWriteResponse>, Status> {
        observe(
            "AbortResumableWrite",
            write::abort_resumable(&self.client, &self.uploads, request.into_inner()),
        )
        .await
    }
}
