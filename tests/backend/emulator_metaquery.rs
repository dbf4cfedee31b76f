//! The emulator's MetaQuery data index over real HTTP: OpenMetaQuery, GetMetaQueryStatus,
//! DoMetaQuery and CloseMetaQuery, the index following every kind of write, paging by
//! NextToken, and OSS's errors.

use ossgate::emulator::EmulatorHandle;
use ossgate::emulator::store::PREPARATION;

use crate::support::*;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn body(query: &str, extra: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MetaQuery><Query>{}</Query>{extra}</MetaQuery>",
        escape(query)
    )
    .into_bytes()
}

async fn do_query(e: &EmulatorHandle, bucket: &str, query: &str, extra: &str) -> reqwest::Response {
    Req::new("POST", bucket, "")
        .q("metaQuery", "")
        .q("comp", "query")
        .q("mode", "basic")
        .body(&body(query, extra))
        .send(e)
        .await
}

/// The Filenames a query finds (one page of up to 100).
async fn found(e: &EmulatorHandle, query: &str) -> Vec<String> {
    let r = do_query(e, "bkt", query, "").await;
    assert_eq!(r.status(), 200);
    xml_values(&r.text().await.unwrap(), "Filename")
}

fn tag_eq(key: &str, value: &str) -> String {
    format!(r#"{{"Field":"OSSTagging.{key}","Value":"{value}","Operation":"eq"}}"#)
}

async fn open(e: &EmulatorHandle, bucket: &str) -> reqwest::Response {
    Req::new("POST", bucket, "")
        .q("metaQuery", "")
        .q("comp", "add")
        .q("mode", "basic")
        .send(e)
        .await
}

#[tokio::test]
async fn lifecycle_and_errors() {
    let e = start().await;
    let status = || Req::new("GET", "bkt", "").q("metaQuery", "");
    // No index yet.
    assert_eq!(
        error_code(status().send(&e).await).await,
        (404, "MetaQueryNotExist".into())
    );
    let r = do_query(&e, "bkt", &tag_eq("a", "b"), "").await;
    assert_eq!(error_code(r).await, (404, "MetaQueryNotExist".into()));
    let r = open(&e, "nope").await;
    assert_eq!(error_code(r).await, (404, "NoSuchBucket".into()));

    // Open (signed V1 here: metaQuery and comp are signed sub-resources), then Ready,
    // then Running.
    let r = Req::new("POST", "bkt", "")
        .q("metaQuery", "")
        .q("comp", "add")
        .v1()
        .send(&e)
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = status().v1().send(&e).await;
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    assert_eq!(xml_values(&xml, "State"), ["Ready"]);
    assert_eq!(xml_values(&xml, "MetaQueryMode"), ["basic"]);
    let created = xml_values(&xml, "CreateTime").remove(0);
    assert!(
        created.ends_with("+00:00") && created.len() == 35,
        "{created}"
    );
    tokio::time::sleep(PREPARATION).await;
    let xml = status().send(&e).await.text().await.unwrap();
    assert_eq!(xml_values(&xml, "State"), ["Running"]);
    assert_eq!(xml_values(&xml, "Phase"), ["IncrementalScanning"]);
    assert_eq!(
        error_code(open(&e, "bkt").await).await,
        (400, "MetaQueryAlreadyExist".into())
    );

    // Bad requests.
    for (query, extra, code) in [
        ("not json", "", "InvalidArgument"),
        (
            r#"{"Field":"Colour","Value":"1","Operation":"eq"}"#,
            "",
            "InvalidArgument",
        ),
        (
            r#"{"Field":"Size","Value":"1","Operation":"like"}"#,
            "",
            "InvalidArgument",
        ),
        (&tag_eq("a", "b"), "<Sort>Nope</Sort>", "InvalidArgument"),
        (&tag_eq("a", "b"), "<Order>up</Order>", "InvalidArgument"),
        (
            &tag_eq("a", "b"),
            "<NextToken>garbage</NextToken>",
            "InvalidArgument",
        ),
        (
            &tag_eq("a", "b"),
            "<MaxResults>ten</MaxResults>",
            "InvalidArgument",
        ),
    ] {
        let r = do_query(&e, "bkt", query, extra).await;
        assert_eq!(error_code(r).await, (400, code.into()), "{query} {extra}");
    }
    let r = Req::new("POST", "bkt", "")
        .q("metaQuery", "")
        .q("comp", "query")
        .body(b"<Other/>")
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (400, "MalformedXML".into()));
    let r = Req::new("POST", "bkt", "")
        .q("metaQuery", "")
        .q("comp", "query")
        .q("mode", "semantic")
        .body(&body("a forest", ""))
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (501, "NotImplemented".into()));

    // Close: always 200; afterwards the index is gone.
    for _ in 0..2 {
        let r = Req::new("POST", "bkt", "")
            .q("metaQuery", "")
            .q("comp", "delete")
            .send(&e)
            .await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(
        error_code(status().send(&e).await).await,
        (404, "MetaQueryNotExist".into())
    );
}

#[tokio::test]
async fn the_index_follows_every_write() {
    let e = start().await;
    assert_eq!(open(&e, "bkt").await.status(), 200);
    let team = tag_eq("team", "blue");

    // PutObject with tags and user metadata.
    let r = Req::new("PUT", "bkt", "put")
        .h("x-oss-tagging", "team=blue&kind=doc")
        .h("x-oss-meta-Location", "hangzhou")
        .h("x-oss-storage-class", "IA")
        .body(b"hello")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(found(&e, &team).await, ["put"]);
    let user_meta =
        r#"{"Field":"OSSUserMeta.x-oss-meta-location","Value":"hangzhou","Operation":"eq"}"#;
    assert_eq!(found(&e, user_meta).await, ["put"]);

    // The File as OSS describes it.
    let xml = do_query(&e, "bkt", &team, "").await.text().await.unwrap();
    assert_eq!(xml_values(&xml, "Size"), ["5"]);
    assert_eq!(xml_values(&xml, "OSSObjectType"), ["Normal"]);
    assert_eq!(xml_values(&xml, "OSSStorageClass"), ["IA"]);
    assert_eq!(xml_values(&xml, "ObjectACL"), ["default"]);
    assert_eq!(xml_values(&xml, "OSSTaggingCount"), ["2"]);
    assert_eq!(
        xml_values(&xml, "Key"),
        ["kind", "team", "x-oss-meta-location"]
    );
    assert_eq!(xml_values(&xml, "NextToken"), [""]);
    let etag = xml_values(&xml, "ETag").remove(0);
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    // PutObjectTagging and DeleteObjectTagging.
    let tags =
        br#"<Tagging><TagSet><Tag><Key>team</Key><Value>red</Value></Tag></TagSet></Tagging>"#;
    let r = Req::new("PUT", "bkt", "put")
        .q("tagging", "")
        .body(tags)
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert!(found(&e, &team).await.is_empty());
    assert_eq!(found(&e, &tag_eq("team", "red")).await, ["put"]);
    let r = Req::new("DELETE", "bkt", "put")
        .q("tagging", "")
        .send(&e)
        .await;
    assert_eq!(r.status(), 204);
    assert!(found(&e, &tag_eq("team", "red")).await.is_empty());

    // AppendObject.
    let r = Req::new("POST", "bkt", "appended")
        .q("append", "")
        .q("position", "0")
        .h("x-oss-tagging", "team=blue")
        .body(b"abc")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let r = Req::new("POST", "bkt", "appended")
        .q("append", "")
        .q("position", "3")
        .body(b"def")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let size6 = r#"{"Operation":"and","SubQueries":[{"Field":"Size","Value":"6","Operation":"eq"},
        {"Field":"OSSObjectType","Value":"Appendable","Operation":"eq"}]}"#;
    assert_eq!(found(&e, size6).await, ["appended"]);

    // CopyObject (tags copied), and a metadata update (copy onto itself, REPLACE).
    let r = Req::new("PUT", "bkt", "src")
        .h("x-oss-tagging", "team=blue")
        .body(b"source")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let r = Req::new("PUT", "bkt", "copied")
        .h("x-oss-copy-source", "/bkt/src")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = Req::new("DELETE", "bkt", "src").send(&e).await;
    assert_eq!(r.status(), 204);
    assert_eq!(found(&e, &team).await, ["appended", "copied"]);
    let r = Req::new("PUT", "bkt", "copied")
        .h("x-oss-copy-source", "/bkt/copied")
        .h("x-oss-metadata-directive", "REPLACE")
        .h("x-oss-meta-owner", "alice")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let owner = r#"{"Field":"OSSUserMeta.owner","Value":"alice","Operation":"eq"}"#;
    assert_eq!(found(&e, owner).await, ["copied"]);

    // PutSymlink with tags.
    let r = Req::new("PUT", "bkt", "link")
        .q("symlink", "")
        .h("x-oss-symlink-target", "copied")
        .h("x-oss-tagging", "team=blue")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let links = r#"{"Field":"OSSObjectType","Value":"Symlink","Operation":"eq"}"#;
    assert_eq!(found(&e, links).await, ["link"]);

    // CompleteMultipartUpload (tags given at initiate).
    let r = Req::new("POST", "bkt", "multi")
        .q("uploads", "")
        .h("x-oss-tagging", "team=blue")
        .send(&e)
        .await;
    let id = xml_values(&r.text().await.unwrap(), "UploadId").remove(0);
    let r = Req::new("PUT", "bkt", "multi")
        .q("partNumber", "1")
        .q("uploadId", &id)
        .body(b"part")
        .send(&e)
        .await;
    let part_etag = hv(&r, "etag").unwrap();
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{part_etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let r = Req::new("POST", "bkt", "multi")
        .q("uploadId", &id)
        .body(complete.as_bytes())
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        found(&e, &team).await,
        ["appended", "copied", "link", "multi"]
    );

    // DeleteObject.
    for key in ["appended", "link"] {
        let r = Req::new("DELETE", "bkt", key).send(&e).await;
        assert_eq!(r.status(), 204);
    }
    assert_eq!(found(&e, &team).await, ["copied", "multi"]);
    let not_blue = format!(r#"{{"Operation":"not","SubQueries":[{team}]}}"#);
    assert_eq!(found(&e, &not_blue).await, ["put"]);
}

#[tokio::test]
async fn pages_by_next_token_in_the_requested_order() {
    let e = start().await;
    assert_eq!(open(&e, "bkt").await.status(), 200);
    for i in 0..25u32 {
        let tag = if i % 5 == 0 { "team=x" } else { "team=y" };
        let r = Req::new("PUT", "bkt", &format!("f/{i:02}"))
            .h("x-oss-tagging", tag)
            .body(&vec![b'.'; (i * 7 % 11) as usize])
            .send(&e)
            .await;
        assert_eq!(r.status(), 200);
    }
    let query = r#"{"Field":"Filename","Value":"f/","Operation":"prefix"}"#;
    let extra = |token: &str| {
        format!(
            "<MaxResults>10</MaxResults><Sort>Size</Sort><Order>desc</Order><NextToken>{token}</NextToken><Aggregations><Aggregation><Field>Size</Field><Operation>sum</Operation></Aggregation><Aggregation><Field>OSSTagging.team</Field><Operation>group</Operation></Aggregation></Aggregations>"
        )
    };
    let mut token = String::new();
    let mut sizes = Vec::new();
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let r = do_query(&e, "bkt", query, &extra(&token)).await;
        assert_eq!(r.status(), 200);
        let xml = r.text().await.unwrap();
        pages += 1;
        // Aggregations cover every match, on every page.
        let total: u32 = (0..25u32).map(|i| i * 7 % 11).sum();
        assert!(
            xml.contains(&format!("<Operation>sum</Operation><Value>{total}</Value>")),
            "{xml}"
        );
        assert!(
            xml.contains("<Group><Value>y</Value><Count>20</Count></Group>"),
            "{xml}"
        );
        sizes.extend(
            xml_values(&xml, "Size")
                .into_iter()
                .map(|s| s.parse::<u32>().unwrap()),
        );
        names.extend(xml_values(&xml, "Filename"));
        if pages == 1 {
            // Writes while paging: a new object and a deleted one do not shift the pages.
            Req::new("PUT", "bkt", "f/new")
                .body(b"0123456789")
                .send(&e)
                .await;
            Req::new("DELETE", "bkt", "f/new").send(&e).await;
        }
        token = xml_values(&xml, "NextToken").remove(0);
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);
    let mut want = sizes.clone();
    want.sort_by(|a, b| b.cmp(a));
    assert_eq!(sizes, want);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 25, "each object exactly once");
}
