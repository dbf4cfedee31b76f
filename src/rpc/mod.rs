//! gRPC services: each call is validated into [`crate::model`] types, sent through
//! [`crate::oss::Client`], and its failures mapped to statuses in [`status`]. One file per
//! RPC family.

pub mod admission;
mod append;
pub mod audit;
pub mod auth;
pub mod codec;
mod condition;
mod convert;
mod copy;
mod find;
pub mod list;
mod object;
mod patch;
pub mod status;
mod symlink;
pub mod tag_policy;
mod tag_write;
mod tagging;
pub mod upload_token;
mod uploads;
mod validate;
mod write;

use std::{any::Any, future::Future, time::Instant};

use tonic::{Request, Response, Status, Streaming};
use tracing::info;

use crate::{
    config::CopySettings,
    lock::SharedTagWriteLock,
    oss::{Client, upload::UploadOptions},
    proto,
    proto::object_service_server::ObjectService,
    telemetry::RpcSpan,
};
use auth::{Access, Operation};
use upload_token::UploadTokenKey;

/// The `ossgate.v1.ObjectService` implementation.
#[derive(Clone)]
pub struct ObjectServiceImpl {
    client: Client,
    uploads: UploadConfig,
    copy: CopySettings,
    audit: crate::config::AuditSettings,
    list: list::ListOptions,
    tag_policy: tag_policy::TagPolicy,
    /// The per-object tag-write lock every tag write takes.
    locks: SharedTagWriteLock,
    find: find::FindConfig,
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
    /// A service that forwards to OSS through `client`, with the upload, copy, audit and
    /// listing settings and the tag-write lock (built from `Settings` by the server).
    pub fn new(
        client: Client,
        uploads: UploadConfig,
        copy: CopySettings,
        audit: crate::config::AuditSettings,
        list: list::ListOptions,
        locks: SharedTagWriteLock,
    ) -> Self {
        Self {
            client,
            uploads,
            copy,
            audit,
            list,
            locks,
            tag_policy: Default::default(),
            find: find::FindConfig::new(&crate::config::FindSettings::default()),
        }
    }

    /// The same service, enforcing `policy` on every call that sets tags.
    pub fn with_tag_policy(self, policy: tag_policy::TagPolicy) -> Self {
        Self {
            tag_policy: policy,
            ..self
        }
    }

    /// FindObjects' scan engine with the `[find]` settings (parallelism and the rate limit
    /// all scans share) instead of the defaults.
    pub fn with_find(mut self, settings: &crate::config::FindSettings) -> Self {
        self.find = find::FindConfig::new(settings);
        self
    }

    /// Bytes all uploads hold in memory right now.
    pub fn upload_memory_in_use(&self) -> usize {
        self.uploads.options.budget.in_use()
    }
}

/// True when a tagging field carries at least one tag.
fn has_tags(tagging: Option<&proto::Tagging>) -> bool {
    tagging.is_some_and(|t| !t.tags.is_empty())
}

/// A write of `bucket`/`key` needs `write` on it, and `tag` too when it sets tags.
fn check_write(access: &Access, bucket: &str, key: &str, with_tags: bool) -> Result<(), Status> {
    access.check(Operation::Write, bucket, key)?;
    if with_tags {
        access.check(Operation::Tag, bucket, key)?;
    }
    Ok(())
}

/// Runs one call inside its server span (a child of the caller's `traceparent`, see
/// [`crate::telemetry::trace`]), records its metrics and logs its outcome (method, gRPC code,
/// duration). A ReadObject span stays open until its response stream ends.
async fn observe<T: 'static>(
    method: &'static str,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<Response<T>, Status> {
    let started = Instant::now();
    let rpc = RpcSpan::start(method);
    let span = rpc.span().clone();
    let mut result = rpc.run(call).await;
    let elapsed = started.elapsed();
    // Whole microseconds: 0.994, not 0.9948859999999999.
    let elapsed_ms = elapsed.as_micros() as f64 / 1000.0;
    let code = result.as_ref().err().map_or(tonic::Code::Ok, Status::code);
    crate::telemetry::metrics().record_rpc(method, &format!("{code:?}"), elapsed);
    span.in_scope(|| match &result {
        Ok(_) => info!(code = "OK", elapsed_ms, "call finished"),
        Err(status) => info!(
            code = ?status.code(),
            error = status.message(),
            elapsed_ms,
            "call failed"
        ),
    });
    match &mut result {
        Ok(value) => match (value as &mut dyn Any).downcast_mut::<object::ReadObjectStream>() {
            Some(stream) => {
                let inner = std::mem::replace(stream, Box::pin(futures_util::stream::empty()));
                *stream = Box::pin(rpc.follow_stream(inner, |item| match item {
                    Ok(message) => (message.data.len() as u64, None),
                    Err(status) => (
                        0,
                        Some((
                            status.code() as i32,
                            is_server_error(status.code()),
                            status.message().to_string(),
                        )),
                    ),
                }));
            }
            None => rpc.finish(0, false, ""),
        },
        Err(status) => rpc.finish(
            status.code() as i32,
            is_server_error(status.code()),
            status.message(),
        ),
    }
    result.map(Response::new)
}

/// The codes a gRPC server span reports as errors (OpenTelemetry semantic conventions):
/// the server failed, not the request.
fn is_server_error(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unknown | DeadlineExceeded | Unimplemented | Internal | Unavailable | DataLoss
    )
}

#[tonic::async_trait]
impl ObjectService for ObjectServiceImpl {
    async fn write_object(
        &self,
        request: Request<Streaming<proto::WriteObjectRequest>>,
    ) -> Result<Response<proto::WriteObjectResponse>, Status> {
        let _in_flight = crate::telemetry::InFlightUpload::start();
        // The object is named in the first message: write::write checks the caller there,
        // before anything reaches OSS.
        let access = Access::of(&request);
        let mut trail = audit::Trail::new(access.as_ref().ok(), &self.audit);
        let policy = self.tag_policy.for_request(&request);
        let result = observe("WriteObject", async {
            let access = access?;
            write::write(
                &self.client,
                &self.uploads,
                &*self.locks,
                &access,
                &policy,
                &mut trail,
                request.into_inner(),
            )
            .await
        })
        .await;
        trail.finish_call(&result, |r| &r.version_id);
        result
    }

    type ReadObjectStream = object::ReadObjectStream;

    async fn read_object(
        &self,
        request: Request<proto::ReadObjectRequest>,
    ) -> Result<Response<Self::ReadObjectStream>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::Read, &r.bucket, &r.key)
        });
        observe("ReadObject", async {
            allowed?;
            object::read(&self.client, request.into_inner()).await
        })
        .await
    }

    async fn head_object(
        &self,
        request: Request<proto::HeadObjectRequest>,
    ) -> Result<Response<proto::HeadObjectResponse>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::Read, &r.bucket, &r.key)
        });
        observe("HeadObject", async {
            allowed?;
            object::head(&self.client, request.into_inner()).await
        })
        .await
    }

    async fn delete_object(
        &self,
        request: Request<proto::DeleteObjectRequest>,
    ) -> Result<Response<proto::DeleteObjectResponse>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::Delete, &r.bucket, &r.key)
        });
        observe("DeleteObject", async {
            allowed?;
            object::delete(&self.client, &*self.locks, request.into_inner()).await
        })
        .await
    }

    async fn put_object_tagging(
        &self,
        request: Request<proto::PutObjectTaggingRequest>,
    ) -> Result<Response<proto::PutObjectTaggingResponse>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::Tag, &r.bucket, &r.key)
        });
        let mut trail = audit::Trail::of(&request, &self.audit);
        {
            let r = request.get_ref();
            trail.begin(
                "PutObjectTagging",
                &r.bucket,
                &r.key,
                audit::tags_json(r.tagging.iter().flat_map(|t| t.tags.iter())),
            );
        }
        let result = observe("PutObjectTagging", async {
            allowed?;
            let policy = self.tag_policy.for_request(&request);
            tagging::put(
                &self.client,
                &*self.locks,
                &policy,
                request.into_inner(),
                &mut trail,
            )
            .await
        })
        .await;
        trail.finish_call(&result, |r| &r.version_id);
        result
    }

    async fn get_object_tagging(
        &self,
        request: Request<proto::GetObjectTaggingRequest>,
    ) -> Result<Response<proto::GetObjectTaggingResponse>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::Read, &r.bucket, &r.key)
        });
        observe("GetObjectTagging", async {
            allowed?;
            tagging::get(&self.client, request.into_inner()).await
        })
        .await
    }

    async fn delete_object_tagging(
        &self,
        request: Request<proto::DeleteObjectTaggingRequest>,
    ) -> Result<Response<proto::DeleteObjectTaggingResponse>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::Tag, &r.bucket, &r.key)
        });
        let mut trail = audit::Trail::of(&request, &self.audit);
        {
            let r = request.get_ref();
            trail.begin("DeleteObjectTagging", &r.bucket, &r.key, "{}".to_owned());
        }
        let result = observe("DeleteObjectTagging", async {
            allowed?;
            let policy = self.tag_policy.for_request(&request);
            tagging::delete(
                &self.client,
                &*self.locks,
                &policy,
                request.into_inner(),
                &mut trail,
            )
            .await
        })
        .await;
        trail.finish_call(&result, |r| &r.version_id);
        result
    }

    async fn put_symlink(
        &self,
        request: Request<proto::PutSymlinkRequest>,
    ) -> Result<Response<proto::PutSymlinkResponse>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            check_write(&a, &r.bucket, &r.key, has_tags(r.tagging.as_ref()))?;
            a.check(Operation::Read, &r.bucket, &r.target_key)
        });
        let mut trail = audit::Trail::of(&request, &self.audit);
        {
            let r = request.get_ref();
            if has_tags(r.tagging.as_ref()) {
                trail.begin(
                    "PutSymlink",
                    &r.bucket,
                    &r.key,
                    audit::tags_json(r.tagging.iter().flat_map(|t| t.tags.iter())),
                );
            }
        }
        let sets_tags = has_tags(request.get_ref().tagging.as_ref());
        let (bucket, key) = (
            request.get_ref().bucket.clone(),
            request.get_ref().key.clone(),
        );
        let result = observe("PutSymlink", async {
            allowed?;
            let policy = self.tag_policy.for_request(&request);
            let _held = tag_write::lock_for_tagged_write(
                &*self.locks,
                sets_tags,
                &bucket,
                &key,
                &mut trail,
            )
            .await?;
            symlink::put(&self.client, &policy, request.into_inner(), &mut trail).await
        })
        .await;
        trail.finish_call(&result, |r| &r.version_id);
        result
    }

    async fn get_symlink(
        &self,
        request: Request<proto::GetSymlinkRequest>,
    ) -> Result<Response<proto::GetSymlinkResponse>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::Read, &r.bucket, &r.key)
        });
        observe("GetSymlink", async {
            allowed?;
            symlink::get(&self.client, request.into_inner()).await
        })
        .await
    }

    async fn copy_object(
        &self,
        request: Request<proto::CopyObjectRequest>,
    ) -> Result<Response<proto::CopyObjectResponse>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::Read, &r.source_bucket, &r.source_key)?;
            a.check(Operation::Copy, &r.destination_bucket, &r.destination_key)?;
            // REPLACE sets the caller's own tags on the copy (COPY carries the source's,
            // which the caller may read but does not choose).
            if r.tagging_directive == proto::TaggingDirective::Replace as i32
                && has_tags(r.tagging.as_ref())
            {
                a.check(Operation::Tag, &r.destination_bucket, &r.destination_key)?;
            }
            Ok(())
        });
        let mut trail = audit::Trail::of(&request, &self.audit);
        {
            let r = request.get_ref();
            if r.tagging_directive == proto::TaggingDirective::Replace as i32 {
                trail.begin(
                    "CopyObject",
                    &r.destination_bucket,
                    &r.destination_key,
                    audit::tags_json(r.tagging.iter().flat_map(|t| t.tags.iter())),
                );
            }
        }
        let sets_tags =
            request.get_ref().tagging_directive == proto::TaggingDirective::Replace as i32;
        let (bucket, key) = (
            request.get_ref().destination_bucket.clone(),
            request.get_ref().destination_key.clone(),
        );
        let result = observe("CopyObject", async {
            allowed?;
            let policy = self.tag_policy.for_request(&request);
            let _held = tag_write::lock_for_tagged_write(
                &*self.locks,
                sets_tags,
                &bucket,
                &key,
                &mut trail,
            )
            .await?;
            copy::copy(
                &self.client,
                &self.copy,
                &policy,
                request.into_inner(),
                &mut trail,
            )
            .await
        })
        .await;
        trail.finish_call(&result, |r| &r.version_id);
        result
    }

    async fn update_object_metadata(
        &self,
        request: Request<proto::UpdateObjectMetadataRequest>,
    ) -> Result<Response<proto::UpdateObjectMetadataResponse>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            // Any tagging, even an empty set, replaces the object's tags (empty removes them).
            check_write(&a, &r.bucket, &r.key, r.tagging.is_some())
        });
        let mut trail = audit::Trail::of(&request, &self.audit);
        {
            let r = request.get_ref();
            if r.tagging.is_some() {
                trail.begin(
                    "UpdateObjectMetadata",
                    &r.bucket,
                    &r.key,
                    audit::tags_json(r.tagging.iter().flat_map(|t| t.tags.iter())),
                );
            }
        }
        let sets_tags = request.get_ref().tagging.is_some();
        let (bucket, key) = (
            request.get_ref().bucket.clone(),
            request.get_ref().key.clone(),
        );
        let result = observe("UpdateObjectMetadata", async {
            allowed?;
            let policy = self.tag_policy.for_request(&request);
            let _held = tag_write::lock_for_tagged_write(
                &*self.locks,
                sets_tags,
                &bucket,
                &key,
                &mut trail,
            )
            .await?;
            copy::update_metadata(&self.client, &policy, request.into_inner(), &mut trail).await
        })
        .await;
        trail.finish_call(&result, |r| &r.version_id);
        result
    }

    async fn append_object(
        &self,
        request: Request<Streaming<proto::AppendObjectRequest>>,
    ) -> Result<Response<proto::AppendObjectResponse>, Status> {
        // The object is named in the first message: append::append checks the caller there,
        // before anything reaches OSS.
        let access = Access::of(&request);
        let mut trail = audit::Trail::new(access.as_ref().ok(), &self.audit);
        let policy = self.tag_policy.for_request(&request);
        let result = observe("AppendObject", async {
            let access = access?;
            let stream = request.into_inner();
            append::append(
                &self.client,
                &*self.locks,
                &access,
                &policy,
                &mut trail,
                stream,
            )
            .await
        })
        .await;
        trail.finish_call(&result, |r| &r.version_id);
        result
    }

    async fn start_resumable_write(
        &self,
        request: Request<proto::StartResumableWriteRequest>,
    ) -> Result<Response<proto::StartResumableWriteResponse>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            match r.spec.as_ref() {
                Some(spec) => {
                    check_write(&a, &spec.bucket, &spec.key, has_tags(spec.tagging.as_ref()))
                }
                // No object named: the handler rejects the request.
                None => Ok(()),
            }
        });
        observe("StartResumableWrite", async {
            allowed?;
            let policy = self.tag_policy.for_request(&request);
            let uploads = &self.uploads;
            write::start_resumable(&self.client, uploads, &policy, request.into_inner()).await
        })
        .await
    }

    async fn query_write_status(
        &self,
        request: Request<proto::QueryWriteStatusRequest>,
    ) -> Result<Response<proto::QueryWriteStatusResponse>, Status> {
        // The object is named inside the upload id: write::query_status checks the caller
        // once the id is verified.
        let access = Access::of(&request);
        observe("QueryWriteStatus", async {
            let access = access?;
            write::query_status(&self.client, &self.uploads, &access, request.into_inner()).await
        })
        .await
    }

    async fn abort_resumable_write(
        &self,
        request: Request<proto::AbortResumableWriteRequest>,
    ) -> Result<Response<proto::AbortResumableWriteResponse>, Status> {
        let access = Access::of(&request);
        observe("AbortResumableWrite", async {
            let access = access?;
            write::abort_resumable(&self.client, &self.uploads, &access, request.into_inner()).await
        })
        .await
    }

    async fn list_multipart_uploads(
        &self,
        request: Request<proto::ListMultipartUploadsRequest>,
    ) -> Result<Response<proto::ListMultipartUploadsResponse>, Status> {
        // Listing shows key names: `read` on the prefix, as a read of a key there would need.
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::Read, &r.bucket, &r.prefix)
        });
        observe("ListMultipartUploads", async {
            allowed?;
            uploads::list(&self.client, request.into_inner()).await
        })
        .await
    }

    async fn abort_multipart_upload(
        &self,
        request: Request<proto::AbortMultipartUploadRequest>,
    ) -> Result<Response<proto::AbortMultipartUploadResponse>, Status> {
        // Discarding an upload undoes a write: `write` on the key, as AbortResumableWrite.
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::Write, &r.bucket, &r.key)
        });
        observe("AbortMultipartUpload", async {
            allowed?;
            uploads::abort(&self.client, request.into_inner()).await
        })
        .await
    }

    async fn list_objects(
        &self,
        request: Request<proto::ListObjectsRequest>,
    ) -> Result<Response<proto::ListObjectsResponse>, Status> {
        // `list` on the requested prefix, as asked: a caller allowed only part of it is
        // refused rather than shown a listing that silently leaves keys out. Tags are what
        // GetObjectTagging shows, so `include_tags` needs `read` there too.
        let access = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::List, &r.bucket, &r.prefix)?;
            if r.include_tags {
                a.check(Operation::Read, &r.bucket, &r.prefix)?;
            }
            Ok(a)
        });
        observe("ListObjects", async {
            let access = access?;
            list::list(&self.client, &self.list, &access, request.into_inner()).await
        })
        .await
    }

    async fn patch_object_tagging(
        &self,
        request: Request<proto::PatchObjectTaggingRequest>,
    ) -> Result<Response<proto::PatchObjectTaggingResponse>, Status> {
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::Tag, &r.bucket, &r.key)
        });
        let mut trail = audit::Trail::of(&request, &self.audit);
        {
            // tags_after: the keys set until the call knows the resulting tag set.
            let r = request.get_ref();
            trail.begin(
                "PatchObjectTagging",
                &r.bucket,
                &r.key,
                audit::tags_json(r.set.iter()),
            );
        }
        let result = observe("PatchObjectTagging", async {
            allowed?;
            let policy = self.tag_policy.for_request(&request);
            patch::patch(
                &self.client,
                &*self.locks,
                &policy,
                request.into_inner(),
                &mut trail,
            )
            .await
        })
        .await;
        trail.finish_call(&result, |r| &r.version_id);
        result
    }

    type FindObjectsStream = find::FindObjectsStream;

    async fn find_objects(
        &self,
        request: Request<proto::FindObjectsRequest>,
    ) -> Result<Response<Self::FindObjectsStream>, Status> {
        // A find shows key names (`list`) and tag sets (`read`) under the prefix; each key is
        // checked again before its tags are read or it is returned.
        let allowed = Access::of(&request).and_then(|a| {
            let r = request.get_ref();
            a.check(Operation::List, &r.bucket, &r.prefix)?;
            a.check(Operation::Read, &r.bucket, &r.prefix)?;
            let bucket = r.bucket.clone();
            let visible: find::KeyFilter = std::sync::Arc::new(move |key: &str| {
                a.allows(Operation::List, &bucket, key) && a.allows(Operation::Read, &bucket, key)
            });
            Ok(visible)
        });
        observe("FindObjects", async {
            find::find(&self.client, &self.find, allowed?, request.into_inner()).await
        })
        .await
    }
}
