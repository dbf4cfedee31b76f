//! The client operations the emulator tests use (put/get/head/delete, tagging, multipart, copy,
//! append, symlink), run through ossgate's OSS client against a real OSS bucket, so anyone with
//! an account can check the emulator's fidelity against the service.
//!
//! Opt-in: it runs when all of `OSSGATE_TEST_OSS_ENDPOINT` (e.g.
//! `https://oss-cn-hangzhou.aliyuncs.com`), `OSSGATE_TEST_OSS_REGION` (`cn-hangzhou`),
//! `OSSGATE_TEST_OSS_BUCKET`, `OSSGATE_TEST_OSS_ACCESS_KEY_ID` and
//! `OSSGATE_TEST_OSS_ACCESS_KEY_SECRET` are set, and prints that it was skipped otherwise:
//!
//! ```text
//! cargo test --test backend real_oss -- --nocapture
//! ```
//!
//! Everything it writes is under a fresh `ossgate-test/<uuid>/` prefix, deleted at the end.
//! The same suite also runs against the in-process emulator on every test run
//! ([`suite_runs_green_against_the_emulator`]), which is how it is tested without an account.
//! The opt-in path itself is checked by pointing it at a standalone emulator:
//!
//! ```text
//! ossgate emulator --listen 127.0.0.1:19077 --access-key-id ak --access-key-secret sk \
//!     --bucket realtest &
//! OSSGATE_TEST_OSS_ENDPOINT=http://127.0.0.1:19077 OSSGATE_TEST_OSS_REGION=cn-hangzhou \
//! OSSGATE_TEST_OSS_BUCKET=realtest OSSGATE_TEST_OSS_ACCESS_KEY_ID=ak \
//! OSSGATE_TEST_OSS_ACCESS_KEY_SECRET=sk cargo test --test backend real_oss_bucket
//! ```

use std::time::Duration;

use bytes::Bytes;
use ossgate::model::{BucketName, ObjectKey, TagSet};
use ossgate::oss::credentials::Credentials;
use ossgate::oss::sign::SignatureVersion;
use ossgate::oss::{
    Addressing, AppendObjectInput, BoxError, Client, ClientConfig, CompleteMultipartUploadInput,
    CompleteParts, CompletedPart, CopyObjectInput, CopySource, InitiateMultipartUploadInput,
    ObjectId, OssErrorKind, PutObjectInput, PutObjectTaggingInput, PutSymlinkInput,
    UploadPartInput,
};

use crate::support::{self, BUCKET, read_all};

/// Where the suite runs: an endpoint, a region, a bucket and a key pair.
struct Target {
    endpoint: String,
    region: String,
    bucket: String,
    credentials: Credentials,
}

const VARS: [&str; 5] = [
    "OSSGATE_TEST_OSS_ENDPOINT",
    "OSSGATE_TEST_OSS_REGION",
    "OSSGATE_TEST_OSS_BUCKET",
    "OSSGATE_TEST_OSS_ACCESS_KEY_ID",
    "OSSGATE_TEST_OSS_ACCESS_KEY_SECRET",
];

/// The target from the environment, or `None` (with the missing variables) when unset.
fn target_from_env() -> Result<Target, Vec<&'static str>> {
    let values: Vec<Option<String>> = VARS
        .iter()
        .map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .collect();
    let missing: Vec<&'static str> = VARS
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    let [endpoint, region, bucket, id, secret] = <[Option<String>; 5]>::try_from(values)
        .unwrap()
        .map(Option::unwrap);
    Ok(Target {
        endpoint,
        region,
        bucket,
        credentials: Credentials {
            access_key_id: id,
            access_key_secret: secret,
            security_token: None,
        },
    })
}

fn client(target: &Target, version: SignatureVersion) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig {
        endpoint: target.endpoint.clone(),
        region: target.region.clone(),
        signature_version: version,
        addressing: Addressing::Auto,
        credentials: target.credentials.clone(),
        connect_timeout: Duration::from_secs(10),
        request_timeout: Some(Duration::from_secs(60)),
    })
    .unwrap()
}

fn one(data: &[u8]) -> futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, BoxError>>> {
    futures_util::stream::iter(vec![Ok(Bytes::copy_from_slice(data))])
}

/// The suite: every object it creates is under `prefix` and deleted before it returns.
async fn run(target: &Target, version: SignatureVersion) {
    let client = client(target, version);
    let bucket = BucketName::parse(&target.bucket).unwrap();
    let prefix = format!("ossgate-test/{}/", uuid::Uuid::new_v4());
    let key = |name: &str| ObjectKey::parse(&format!("{prefix}{name}")).unwrap();
    let id = |k: &ObjectKey| ObjectId::new(bucket.clone(), k.clone());
    let mut created = Vec::new();

    // put, head, get
    let plain = key("plain object é+1.txt");
    let data = b"hello from the ossgate real-OSS suite\n";
    let mut put = PutObjectInput::new(bucket.clone(), plain.clone());
    put.attributes.tags = TagSet::from_pairs([("suite", "real oss")]).unwrap();
    client.put_object(&put, one(data)).await.unwrap();
    created.push(plain.clone());
    let head = client.head_object(&id(&plain)).await.unwrap();
    assert_eq!(head.size, data.len() as u64);
    assert_eq!(head.tag_count, 1);
    assert_eq!(read_all(&client, &bucket, &plain).await, data);

    // tagging: get, replace, delete
    let tags = client.get_object_tagging(&id(&plain)).await.unwrap();
    assert_eq!(tags.tags, [("suite".to_string(), "real oss".to_string())]);
    let new_tags = TagSet::from_pairs([("k1", "v 1"), ("a+b", "c/d")]).unwrap();
    client
        .put_object_tagging(&PutObjectTaggingInput::new(
            bucket.clone(),
            plain.clone(),
            new_tags,
        ))
        .await
        .unwrap();
    let mut tags = client.get_object_tagging(&id(&plain)).await.unwrap().tags;
    tags.sort();
    assert_eq!(
        tags,
        [
            ("a+b".to_string(), "c/d".to_string()),
            ("k1".to_string(), "v 1".to_string())
        ]
    );
    client.delete_object_tagging(&id(&plain)).await.unwrap();
    let tags = client.get_object_tagging(&id(&plain)).await.unwrap();
    assert!(tags.tags.is_empty());

    // symlink
    let link = key("link");
    client
        .put_symlink(&PutSymlinkInput::new(
            bucket.clone(),
            link.clone(),
            plain.clone(),
        ))
        .await
        .unwrap();
    created.push(link.clone());
    let sym = client.get_symlink(&id(&link)).await.unwrap();
    assert_eq!(sym.target, plain.as_str());

    // copy
    let copied = key("copied");
    client
        .copy_object(&CopyObjectInput::new(
            CopySource::new(bucket.clone(), plain.clone()),
            bucket.clone(),
            copied.clone(),
        ))
        .await
        .unwrap();
    created.push(copied.clone());
    assert_eq!(read_all(&client, &bucket, &copied).await, data);

    // append
    let log = key("appended.log");
    let first = client
        .append_object(&AppendObjectInput::new(
            bucket.clone(),
            log.clone(),
            0,
            Bytes::from_static(b"line 1\n"),
        ))
        .await
        .unwrap();
    created.push(log.clone());
    assert_eq!(first.next_position, 7);
    client
        .append_object(&AppendObjectInput::new(
            bucket.clone(),
            log.clone(),
            first.next_position,
            Bytes::from_static(b"line 2\n"),
        ))
        .await
        .unwrap();
    assert_eq!(read_all(&client, &bucket, &log).await, b"line 1\nline 2\n");

    // multipart: a 100 KiB part (the smallest a non-last part may be) and a short last part
    let multi = key("multipart.bin");
    let part1: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    let part2 = b"the short last part".to_vec();
    let upload = client
        .initiate_multipart_upload(&InitiateMultipartUploadInput::new(
            bucket.clone(),
            multi.clone(),
        ))
        .await
        .unwrap()
        .upload;
    let mut parts = Vec::new();
    for (n, body) in [(1u32, &part1), (2, &part2)] {
        let out = client
            .upload_part(&UploadPartInput {
                upload: upload.clone(),
                part_number: n,
                body: Bytes::from(body.clone()),
                content_md5: None,
            })
            .await
            .unwrap();
        parts.push(CompletedPart {
            part_number: n,
            etag: out.etag,
        });
    }
    client
        .complete_multipart_upload(&CompleteMultipartUploadInput::new(
            upload,
            CompleteParts::List(parts),
        ))
        .await
        .unwrap();
    created.push(multi.clone());
    let mut expected = part1;
    expected.extend_from_slice(&part2);
    assert!(read_all(&client, &bucket, &multi).await == expected);

    // delete everything, then nothing is left
    for k in &created {
        client.delete_object(&id(k)).await.unwrap();
    }
    for k in &created {
        let err = client.head_object(&id(k)).await.unwrap_err();
        assert_eq!(err.kind, OssErrorKind::NotFound, "{k}: {err}");
    }
}

#[tokio::test]
async fn real_oss_bucket() {
    let target = match target_from_env() {
        Ok(t) => t,
        Err(missing) => {
            println!(
                "real_oss: skipped (opt-in suite against a real OSS bucket; set {})",
                missing.join(", ")
            );
            return;
        }
    };
    run(&target, SignatureVersion::V4).await;
    run(&target, SignatureVersion::V1).await;
}

/// The suite against the in-process emulator, with its keys: what the real-OSS run is
/// compared with, and the suite's own test.
#[tokio::test]
async fn suite_runs_green_against_the_emulator() {
    let emulator = support::start().await;
    let target = Target {
        endpoint: emulator.endpoint(),
        region: "cn-hangzhou".into(),
        bucket: BUCKET.into(),
        credentials: support::creds(),
    };
    run(&target, SignatureVersion::V4).await;
    run(&target, SignatureVersion::V1).await;
    emulator.shutdown().await;
}
