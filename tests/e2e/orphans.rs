//! No orphaned multipart uploads: a write refused at CompleteMultipartUpload aborts its
//! upload; more than 745 parts complete on the emulator; an upload that cannot be aborted
//! (OSS down) is logged with its UploadId and can be found and aborted through the gateway
//! (ListMultipartUploads, AbortMultipartUpload); a SIGTERM that cuts a write off aborts its
//! upload before the process exits. (Every e2e test also checks, through `Stack`, that it
//! leaves no upload behind.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ossgate::{config::auth::AuthSettings, proto};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};

use crate::audit_capture::Capture;
use crate::common::*;

/// The smallest part size the gateway uses (OSS's minimum part, 100 KiB).
const PART: usize = 100 * 1024;

/// A stack whose gateway uploads `PART`-sized parts, its emulator keeping data in
/// `data_dir` (or in memory).
async fn small_part_stack(data_dir: Option<std::path::PathBuf>) -> Stack {
    Stack::start_with(StackOptions {
        settings: vec![("OSSGATE_UPLOAD__PART_SIZE_BYTES", PART.to_string())],
        emulator_data_dir: data_dir,
        ..Default::default()
    })
    .await
}

/// The messages of a write of `data` in `PART`-sized chunks, the first with `spec`; the
/// last finishes the write when `finish`.
fn part_messages(
    spec: Option<proto::WriteObjectSpec>,
    data: &[u8],
    start: usize,
    finish: bool,
) -> Vec<proto::WriteObjectRequest> {
    let count = data.len().div_ceil(PART);
    let mut spec = spec;
    data.chunks(PART)
        .enumerate()
        .map(|(i, chunk)| proto::WriteObjectRequest {
            spec: spec.take(),
            write_offset: (start + i * PART) as i64,
            data: Bytes::copy_from_slice(chunk),
            finish_write: finish && i + 1 == count,
            ..Default::default()
        })
        .collect()
}

/// Waits (at most 10 s) until the emulator holds an upload of `key`; returns its UploadId.
async fn open_upload_of(stack: &Stack, key: &str) -> String {
    for _ in 0..200 {
        if let Some((_, _, id)) = stack
            .emulator
            .open_uploads()
            .into_iter()
            .find(|(_, k, _)| k == key)
        {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no upload of {key} started: {:?}",
        stack.emulator.open_uploads()
    );
}

/// The upload events naming `upload_id` whose message starts with `message`.
fn events_for(capture: &Capture, message: &str, upload_id: &str) -> Vec<serde_json::Value> {
    capture
        .upload_events()
        .into_iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
                && e["upload_id"] == upload_id
        })
        .collect()
}

#[tokio::test]
async fn a_write_refused_at_complete_aborts_its_upload() {
    let stack = small_part_stack(None).await;
    let mut client = stack.client.clone();
    write(&mut client, spec(BUCKET, "taken.bin"), b"already here").await;

    // OSS refuses the Complete (FileAlreadyExists): the parts were stored for nothing.
    let (capture, _guard) = Capture::start();
    let mut refused = spec(BUCKET, "taken.bin");
    refused.forbid_overwrite = true;
    let data = pseudo_random(3 * PART + 10, 3);
    let status = write_chunks(&mut client, refused, &data, PART)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(oss_reason(&status).as_deref(), Some("FileAlreadyExists"));
    assert_eq!(
        read_all(&stack, BUCKET, "taken.bin", "").await,
        b"already here"
    );
    // The upload is gone, and the log says so truthfully.
    stack.assert_no_leftover_uploads().await;
    let aborted: Vec<_> = capture
        .upload_events()
        .into_iter()
        .filter(|e| e["message"] == "multipart upload aborted" && e["key"] == "taken.bin")
        .collect();
    assert_eq!(aborted.len(), 1, "{:#?}", capture.upload_events());
    assert_eq!(aborted[0]["level"], "INFO");
    stack.stop().await;
}

#[tokio::test]
async fn an_object_of_more_than_745_parts_completes() {
    // 800 parts: the CompleteMultipartUpload body is ~70 KB, over the 64 KiB the emulator
    // used to accept.
    let stack = small_part_stack(None).await;
    let mut client = stack.client.clone();
    let data = pseudo_random(800 * PART, 5);
    let written = write_chunks(&mut client, spec(BUCKET, "many-parts.bin"), &data, 1 << 20)
        .await
        .expect("an 800-part write completes");
    assert_eq!(written.size as usize, data.len());
    let head = head(&mut client, BUCKET, "many-parts.bin").await;
    assert_eq!(head.crc64ecma, Some(ossgate::model::crc64(&data)));
    assert!(head.etag.ends_with("-800\""), "{}", head.etag);
    stack.stop().await;
}

/// Three uploads under `left/` (one of them IA) and one under `kept/`, started as resumable
/// writes (which keep their uploads).
async fn start_uploads(stack: &Stack) -> Vec<(String, String)> {
    let mut client = stack.client.clone();
    let mut started = Vec::new();
    for (key, class) in [
        ("left/a.bin", proto::StorageClass::Unspecified),
        ("left/b.bin", proto::StorageClass::Ia),
        ("left/b.bin", proto::StorageClass::Unspecified),
        ("kept/c.bin", proto::StorageClass::Unspecified),
    ] {
        let mut s = spec(BUCKET, key);
        s.storage_class = class as i32;
        client
            .start_resumable_write(proto::StartResumableWriteRequest { spec: Some(s) })
            .await
            .unwrap();
    }
    for (_, key, id) in stack.emulator.open_uploads() {
        started.push((key, id));
    }
    started
}

fn list_request(prefix: &str, max_uploads: i32) -> proto::ListMultipartUploadsRequest {
    proto::ListMultipartUploadsRequest {
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        max_uploads,
        ..Default::default()
    }
}

fn abort_request(key: &str, upload_id: &str) -> proto::AbortMultipartUploadRequest {
    proto::AbortMultipartUploadRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        upload_id: upload_id.into(),
    }
}

/// Every upload under `prefix`, paging with the markers, `page` at a time.
async fn list_all(
    client: &mut proto::object_service_client::ObjectServiceClient<tonic::transport::Channel>,
    prefix: &str,
    page: i32,
) -> Vec<proto::MultipartUpload> {
    let mut request = list_request(prefix, page);
    let mut all = Vec::new();
    for _ in 0..10 {
        let listed = client
            .list_multipart_uploads(request.clone())
            .await
            .unwrap()
            .into_inner();
        let limit = if page == 0 { 1000 } else { page as usize };
        assert!(listed.uploads.len() <= limit);
        all.extend(listed.uploads);
        if !listed.is_truncated {
            return all;
        }
        request.key_marker = listed.next_key_marker;
        request.upload_id_marker = listed.next_upload_id_marker;
    }
    panic!("the listing did not end");
}

#[tokio::test]
async fn leftover_uploads_are_listed_and_aborted_through_the_gateway() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let started = start_uploads(&stack).await;
    assert_eq!(started.len(), 4);

    // Pages of one, by key then upload ID: every upload under left/ exactly once.
    let listed = list_all(&mut client, "left/", 1).await;
    let mut expected: Vec<(String, String)> = started
        .iter()
        .filter(|(key, _)| key.starts_with("left/"))
        .cloned()
        .collect();
    expected.sort();
    let seen: Vec<(String, String)> = listed
        .iter()
        .map(|u| (u.key.clone(), u.upload_id.clone()))
        .collect();
    assert_eq!(seen, expected);
    for upload in &listed {
        let initiated = upload.initiated.as_ref().expect("initiated time");
        assert!(initiated.seconds > 1_700_000_000, "{initiated:?}");
    }
    let classes: Vec<i32> = listed.iter().map(|u| u.storage_class).collect();
    assert!(
        classes.contains(&(proto::StorageClass::Ia as i32)),
        "{classes:?}"
    );
    assert!(
        classes.contains(&(proto::StorageClass::Standard as i32)),
        "{classes:?}"
    );

    // Abort each; a second abort of the same upload is NOT_FOUND.
    for upload in &listed {
        let request = abort_request(&upload.key, &upload.upload_id);
        client
            .abort_multipart_upload(request.clone())
            .await
            .unwrap();
        let again = client.abort_multipart_upload(request).await.unwrap_err();
        assert_eq!(again.code(), Code::NotFound, "{again:?}");
        assert_eq!(oss_reason(&again).as_deref(), Some("NoSuchUpload"));
    }
    assert!(list_all(&mut client, "left/", 1000).await.is_empty());
    let kept = list_all(&mut client, "", 0).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].key, "kept/c.bin");

    // Bad requests are refused field by field, before OSS.
    let before = stack.oss_requests();
    let status = client
        .list_multipart_uploads(list_request("", 1001))
        .await
        .unwrap_err();
    assert_invalid(&status, "max_uploads");
    let status = client
        .abort_multipart_upload(abort_request("kept/c.bin", ""))
        .await
        .unwrap_err();
    assert_invalid(&status, "upload_id");
    let status = client
        .abort_multipart_upload(proto::AbortMultipartUploadRequest {
            bucket: "Bad_Bucket".into(),
            key: String::new(),
            upload_id: "x\ny".into(),
        })
        .await
        .unwrap_err();
    for field in ["bucket", "key", "upload_id"] {
        assert_invalid(&status, field);
    }
    assert_eq!(stack.oss_requests(), before);

    // The test started kept/c.bin as a resumable write and leaves it.
    stack.expect_leftover_upload("kept/c.bin");
    stack.stop().await;
}

#[tokio::test]
async fn listing_needs_read_on_the_prefix_and_aborting_needs_write_on_the_key() {
    const CLEANER: &str = "cleaner-token";
    const READER: &str = "reader-token";
    let stack = Stack::start().await;
    let started = start_uploads(&stack).await;
    let auth = AuthSettings {
        tokens: vec![
            token_setting("cleaner", CLEANER),
            token_setting("reader", READER),
        ],
        policy: vec![
            policy_rule("cleaner", &[BUCKET], &["left/"], &["read", "write"]),
            policy_rule("reader", &[BUCKET], &["left/"], &["read"]),
        ],
        ..Default::default()
    };
    let gateway = start_gateway(&stack, auth, &[]).await;
    let mut client = connect(gateway.local_addr()).await;
    let before = stack.oss_requests();

    // Both may list under left/; nobody may list the whole bucket.
    for token in [CLEANER, READER] {
        let listed = client
            .list_multipart_uploads(bearer(list_request("left/", 0), token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.uploads.len(), 3);
        let status = client
            .list_multipart_uploads(bearer(list_request("", 0), token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    let upload_of = |wanted: &str| {
        started
            .iter()
            .find(|(key, _)| key == wanted)
            .cloned()
            .unwrap()
    };
    let (key, upload_id) = upload_of("left/a.bin");
    let status = client
        .abort_multipart_upload(bearer(abort_request(&key, &upload_id), READER))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let (kept_key, kept_id) = upload_of("kept/c.bin");
    let status = client
        .abort_multipart_upload(bearer(abort_request(&kept_key, &kept_id), CLEANER))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // Two listings reached OSS; the denied calls did not.
    assert_eq!(stack.oss_requests(), before + 2);

    client
        .abort_multipart_upload(bearer(abort_request(&key, &upload_id), CLEANER))
        .await
        .expect("write on left/ may abort");
    assert_eq!(stack.emulator.open_uploads().len(), 3);

    gateway.shutdown().await.unwrap();
    // The other three are resumable writes this test started and leaves.
    for key in ["left/b.bin", "kept/c.bin"] {
        stack.expect_leftover_upload(key);
    }
    stack.stop().await;
}

#[tokio::test]
async fn an_upload_stranded_by_a_backend_restart_is_logged_found_and_aborted() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut stack = small_part_stack(Some(data_dir.path().to_path_buf())).await;
    let (capture, _guard) = Capture::start();
    let key = "restart/big.bin";
    let data = pseudo_random(8 * PART, 9);
    let (tx, rx) = mpsc::channel(16);
    let mut writer = stack.client.clone();
    let mut call = tokio::spawn(async move { writer.write_object(ReceiverStream::new(rx)).await });
    for message in part_messages(Some(spec(BUCKET, key)), &data[..3 * PART], 0, false) {
        tx.send(message).await.unwrap();
    }
    let upload_id = open_upload_of(&stack, key).await;

    // The backend goes away while the write is streaming; the rest of the stream arrives.
    let status: Status = stack
        .restart_emulator(async {
            for message in part_messages(None, &data[3 * PART..], 3 * PART, true) {
                if tx.send(message).await.is_err() {
                    break;
                }
            }
            tokio::time::timeout(Duration::from_secs(30), &mut call)
                .await
                .expect("the write ends while OSS is down")
                .unwrap()
                .unwrap_err()
        })
        .await;
    // A clear, retryable error; and the log names the upload that could not be aborted.
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let left = events_for(&capture, "multipart upload left behind", &upload_id);
    assert_eq!(left.len(), 1, "{:#?}", capture.upload_events());
    assert_eq!(left[0]["level"], "WARN");
    assert_eq!(left[0]["bucket"], BUCKET);
    assert_eq!(left[0]["key"], key);
    assert!(events_for(&capture, "multipart upload aborted", &upload_id).is_empty());

    // OSS is back (same port, same data): the leftover is found and aborted via the gateway.
    let mut client = stack.client.clone();
    let listed = list_all(&mut client, "restart/", 0).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].upload_id, upload_id);
    client
        .abort_multipart_upload(abort_request(key, &upload_id))
        .await
        .expect("the leftover is aborted");
    assert!(list_all(&mut client, "restart/", 0).await.is_empty());
    assert!(!exists(&stack, BUCKET, key).await);
    stack.stop().await;
}

/// Kills the child process when dropped (a failing test leaves no process behind).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn sigterm_aborts_the_upload_of_a_write_cut_off_by_the_grace() {
    let stack = Stack::start().await;
    let child = Command::new(env!("CARGO_BIN_EXE_ossgate"))
        .env_clear()
        .envs([
            ("OSSGATE_LISTEN", "127.0.0.1:0".to_string()),
            ("OSSGATE_OSS__ENDPOINT", stack.emulator.endpoint()),
            ("OSSGATE_OSS__REGION", "cn-hangzhou".into()),
            ("OSSGATE_OSS__ACCESS_KEY_ID", ACCESS_KEY_ID.into()),
            ("OSSGATE_OSS__ACCESS_KEY_SECRET", ACCESS_KEY_SECRET.into()),
            ("OSSGATE_SERVER__SHUTDOWN_GRACE_MS", "300".into()),
            ("OSSGATE_UPLOAD__PART_SIZE_BYTES", PART.to_string()),
            ("OSSGATE_LOG__FORMAT", "json".into()),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ossgate starts");
    let mut child = KillOnDrop(child);
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                logs.lock().unwrap().push(line);
            }
        })
    };
    let addr = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line.trim_end()
            .strip_prefix("ossgate serving gRPC on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse::<std::net::SocketAddr>()
            .unwrap()
    })
    .await
    .unwrap();

    let key = "sigterm/cut.bin";
    let data = pseudo_random(40 * PART, 13);
    let (tx, rx) = mpsc::channel(2);
    let mut writer = connect(addr).await;
    let call = tokio::spawn(async move { writer.write_object(ReceiverStream::new(rx)).await });
    let mut messages = part_messages(Some(spec(BUCKET, key)), &data, 0, true).into_iter();
    for message in messages.by_ref().take(3) {
        tx.send(message).await.unwrap();
    }
    let upload_id = open_upload_of(&stack, key).await;

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The write keeps streaming, slowly, past the 300 ms grace.
    let streaming = Instant::now();
    for message in messages.by_ref().take(15) {
        if tx.send(message).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(streaming.elapsed() > Duration::from_millis(300));
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "ossgate did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    drop(tx);
    assert!(
        call.await.unwrap().is_err(),
        "the cut-off write cannot succeed"
    );
    reader.join().unwrap();

    // Aborted before exit, and logged as such with its UploadId.
    let logs = logs.lock().unwrap().clone();
    let aborted = logs.iter().any(|line| {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        event["fields"]["message"] == "multipart upload aborted"
            && event["fields"]["upload_id"] == upload_id.as_str()
    });
    assert!(
        aborted,
        "no abort of {upload_id} logged:\n{}",
        logs.join("\n")
    );
    stack.stop().await;
}
