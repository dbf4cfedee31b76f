//! RestoreObject (`POST /key?restore`) and the archive states it changes.
//!
//! An Archive, ColdArchive or DeepColdArchive object cannot be read (GET is 403
//! InvalidObjectState; HEAD works) until a restore has finished. The first RestoreObject
//! answers 202 and starts one; another while it runs is 409 RestoreAlreadyInProgress; one
//! after it finished answers 200 and moves the expiry. HEAD and GET show the state in
//! `x-oss-restore`: `ongoing-request="true"`, then `ongoing-request="false",
//! expiry-date="…"`. OSS takes minutes to hours; the emulator finishes a restore after
//! [`State::restore_delay`] (1 s by default, `--restore-delay-ms`): long enough that an
//! immediate second request sees it running, as the SDKs' own tests expect, short enough
//! for a test to wait for the restored state.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;

use super::request::read_small_body;
use super::{Ctx, base_response, blocking, finish, set, version_header};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::store::{Restore, Version, now_ms};
use crate::oss::protocol;

/// The restore delay when none is configured.
pub(crate) const DEFAULT_RESTORE_DELAY: Duration = Duration::from_secs(1);

/// The largest `<RestoreRequest>` body.
const MAX_RESTORE_BODY: usize = 16 * 1024;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Deserialize, Default)]
struct RestoreRequestXml {
    #[serde(rename = "Days", default)]
    days: Option<String>,
    #[serde(rename = "JobParameters", default)]
    job_parameters: Option<JobParametersXml>,
}

#[derive(Deserialize, Default)]
struct JobParametersXml {
    #[serde(rename = "Tier", default)]
    tier: Option<String>,
}

/// What a RestoreObject asks for: days and, for cold archives, the tier.
#[derive(Debug, PartialEq, Eq)]
struct RestoreAsk {
    days: u64,
    tier: Option<String>,
}

fn parse_restore(bytes: &[u8], storage_class: &str) -> Result<RestoreAsk, ApiError> {
    let doc = if bytes.iter().all(u8::is_ascii_whitespace) {
        RestoreRequestXml::default()
    } else {
        let xml = std::str::from_utf8(bytes).map_err(|_| ApiError::malformed_xml())?;
        quick_xml::de::from_str(xml).map_err(|_| ApiError::malformed_xml())?
    };
    // Archive objects stay restored 1 to 7 days, cold archives 1 to 365.
    let max_days = if storage_class == "Archive" { 7 } else { 365 };
    let days = match doc.days.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(raw) => match raw.parse::<u64>() {
            Ok(d) if (1..=max_days).contains(&d) => d,
            _ => {
                return Err(ApiError::invalid_argument(format!(
                    "Days must be 1 to {max_days} for {storage_class} objects."
                ))
                .with("ArgumentName", "Days")
                .with("ArgumentValue", raw));
            }
        },
    };
    let tier = if storage_class == "Archive" {
        None
    } else {
        let tier = doc
            .job_parameters
            .and_then(|j| j.tier)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "Standard".to_owned());
        if !["Expedited", "Standard", "Bulk"].contains(&tier.as_str()) {
            return Err(
                ApiError::invalid_argument("Tier must be Expedited, Standard or Bulk.")
                    .with("ArgumentName", "Tier")
                    .with("ArgumentValue", tier),
            );
        }
        Some(tier)
    };
    Ok(RestoreAsk { days, tier })
}

fn restore_in_progress() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "RestoreAlreadyInProgress",
        "The restore operation is in progress.",
    )
}

/// 403 InvalidObjectState: GetObject of an archive object that is not restored.
pub(super) fn invalid_object_state() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "InvalidObjectState",
        "The operation is not valid for the object's state.",
    )
}

/// Whether GetObject may read `v` now.
pub(super) fn check_readable(v: &Version) -> Result<(), ApiError> {
    if v.is_archived() && !v.restore.as_ref().is_some_and(|r| r.readable(now_ms())) {
        return Err(invalid_object_state());
    }
    Ok(())
}

/// `x-oss-restore` for `v` now, if a restore was asked for and has not expired.
pub(super) fn restore_header(h: &mut http::HeaderMap, v: &Version) {
    if let Some(status) = v.restore.as_ref().and_then(|r| r.status(now_ms())) {
        set(h, protocol::header::RESTORE, &status);
    }
}

pub(super) async fn restore_object(
    state: &Arc<State>,
    ctx: &Ctx,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let bytes = read_small_body(
        body.take().unwrap_or_default(),
        &ctx.headers,
        MAX_RESTORE_BODY,
    )
    .await?;
    let delay_ms = state.restore_delay().as_millis() as u64;
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.clone());
    let vid = ctx.version_id().map(str::to_owned);
    let (v, started) = blocking(state, move |s| {
        let mut started = false;
        let v = s.update_version(&bucket, &key, vid.as_deref(), |v| {
            if !v.is_archived() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "OperationNotSupported",
                    "The operation is not supported for this resource.",
                ));
            }
            let ask = parse_restore(&bytes, &v.storage_class)?;
            let now = now_ms();
            let ready_ms = match &v.restore {
                Some(r) if r.ongoing(now) => return Err(restore_in_progress()),
                // Restored already: a new request only moves the expiry.
                Some(r) if r.readable(now) => r.ready_ms,
                _ => {
                    started = true;
                    now + delay_ms
                }
            };
            v.restore = Some(Restore {
                ready_ms,
                expiry_ms: ready_ms.max(now) + ask.days * DAY_MS,
                priority: ask.tier,
            });
            Ok(())
        })?;
        Ok((v, started))
    })
    .await?;
    let status = if started {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut resp = finish(base_response(status), Body::empty())?;
    let rh = resp.headers_mut();
    if let Some(priority) = v.restore.as_ref().and_then(|r| r.priority.as_deref()) {
        set(rh, protocol::header::RESTORE_PRIORITY, priority);
    }
    version_header(rh, &v);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_requests() {
        let ask = |xml: &str, class: &str| parse_restore(xml.as_bytes(), class);
        assert_eq!(
            ask("", "Archive").unwrap(),
            RestoreAsk {
                days: 1,
                tier: None
            }
        );
        assert_eq!(
            ask("<RestoreRequest><Days>7</Days><JobParameters><Tier>Bulk</Tier></JobParameters></RestoreRequest>", "ColdArchive").unwrap(),
            RestoreAsk {
                days: 7,
                tier: Some("Bulk".into())
            }
        );
        assert_eq!(
            ask(
                "<RestoreRequest><Days>2</Days></RestoreRequest>",
                "DeepColdArchive"
            )
            .unwrap()
            .tier
            .as_deref(),
            Some("Standard")
        );
        assert!(ask("<RestoreRequest><Days>8</Days></RestoreRequest>", "Archive").is_err());
        assert!(
            ask(
                "<RestoreRequest><Days>0</Days></RestoreRequest>",
                "ColdArchive"
            )
            .is_err()
        );
        assert!(
            ask(
                "<RestoreRequest><JobParameters><Tier>Fast</Tier></JobParameters></RestoreRequest>",
                "ColdArchive"
            )
            .is_err()
        );
        assert!(ask("<RestoreRequest><Days>", "Archive").is_err());
    }

    #[test]
    fn restore_states() {
        let r = Restore {
            ready_ms: 1_000,
            expiry_ms: 1_000 + DAY_MS,
            priority: None,
        };
        assert_eq!(r.status(500).as_deref(), Some("ongoing-request=\"true\""));
        assert!(
            r.status(2_000)
                .unwrap()
                .starts_with("ongoing-request=\"false\", expiry-date=\"Fri, 02 Jan 1970")
        );
        assert_eq!(r.status(2 * DAY_MS), None);
    }
}
