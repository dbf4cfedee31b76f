"""The official Python SDKs' copy calls against the ossgate emulator, signature checking on.

alibabacloud-oss-v2: CopyObject (both directives, version ids, preconditions,
forbid-overwrite), UploadPartCopy, and its Copier's multipart path. oss2: copy_object with
directive headers, upload_part_copy and symlink copies. (oss2 2.19 has no resumable copy.)
"""

import uuid
from urllib.parse import quote

import alibabacloud_oss_v2 as ossv2
import oss2
import pytest

SPECIAL_TAGS = {
    "punct": "a+b-c=d.e_f:g/h",
    "with space": "two words",
    "ünïcödé": "日本語 値",
    "empty": "",
}
PART = 100 * 1024


def tag_header(tags):
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags.items())


def unique(prefix):
    return f"copy/{prefix} {uuid.uuid4().hex[:8]}/obj+1.txt"


def body(size, seed=0):
    return bytes(((i * 31) ^ seed ^ (i >> 9)) & 0xFF for i in range(size))


def pyv2_client(emu, version):
    cfg = ossv2.config.load_default()
    cfg.credentials_provider = ossv2.credentials.StaticCredentialsProvider(
        emu.access_key_id, emu.access_key_secret
    )
    cfg.region = emu.region
    cfg.endpoint = emu.endpoint
    cfg.signature_version = version
    cfg.retry_max_attempts = 1
    return ossv2.Client(cfg)


def service_error(exc):
    inner = exc.unwrap() if hasattr(exc, "unwrap") else exc
    while hasattr(inner, "unwrap") and not isinstance(inner, ossv2.exceptions.ServiceError):
        inner = inner.unwrap()
    assert isinstance(inner, ossv2.exceptions.ServiceError), repr(exc)
    return inner


def pyv2_tags(client, bucket, key, version_id=None):
    r = client.get_object_tagging(
        ossv2.models.GetObjectTaggingRequest(bucket=bucket, key=key, version_id=version_id)
    )
    return {t.key: t.value or "" for t in (r.tag_set.tags or [])}


def pyv2_put(client, bucket, key, data, tags=None, meta=None):
    return client.put_object(
        ossv2.models.PutObjectRequest(
            bucket=bucket,
            key=key,
            body=data,
            tagging=tag_header(tags) if tags else None,
            metadata=meta,
            content_type="text/x-source",
        )
    )


@pytest.fixture(params=["v4", "v1"])
def pyv2(request, emulator):
    return pyv2_client(emulator, request.param)


def test_pyv2_copy_object_directives(pyv2, emulator):
    b = emulator.bucket
    src = unique("pyv2-src")
    pyv2_put(pyv2, b, src, body(5000), SPECIAL_TAGS, {"owner": "alice"})

    # Default directives: tags, metadata and content type come from the source.
    dst = unique("pyv2-dst-copy")
    pyv2.copy_object(ossv2.models.CopyObjectRequest(bucket=b, key=dst, source_key=src))
    assert pyv2_tags(pyv2, b, dst) == SPECIAL_TAGS
    h = pyv2.head_object(ossv2.models.HeadObjectRequest(bucket=b, key=dst))
    assert h.metadata == {"owner": "alice"}
    assert h.content_type == "text/x-source"

    # Replace both, independently of each other.
    new_tags = {"status": "copied = yes", "über": "x/y+z"}
    dst = unique("pyv2-dst-replace")
    r = pyv2.copy_object(
        ossv2.models.CopyObjectRequest(
            bucket=b,
            key=dst,
            source_bucket=b,
            source_key=src,
            tagging_directive="Replace",
            tagging=tag_header(new_tags),
            metadata_directive="REPLACE",
            metadata={"reviewer": "bob"},
            content_type="application/json",
        )
    )
    assert r.etag
    assert pyv2_tags(pyv2, b, dst) == new_tags
    h = pyv2.head_object(ossv2.models.HeadObjectRequest(bucket=b, key=dst))
    assert h.metadata == {"reviewer": "bob"}
    assert h.content_type == "application/json"
    got = pyv2.get_object(ossv2.models.GetObjectRequest(bucket=b, key=dst)).body.read()
    assert got == body(5000)

    # Replace tags with nothing, keep metadata.
    dst = unique("pyv2-dst-notags")
    pyv2.copy_object(
        ossv2.models.CopyObjectRequest(
            bucket=b, key=dst, source_key=src, tagging_directive="Replace"
        )
    )
    assert pyv2_tags(pyv2, b, dst) == {}
    h = pyv2.head_object(ossv2.models.HeadObjectRequest(bucket=b, key=dst))
    assert h.metadata == {"owner": "alice"}


def test_pyv2_copy_object_version_preconditions_and_forbid_overwrite(pyv2, emulator):
    vb = emulator.versioned_bucket
    key = unique("pyv2-versioned")
    v1 = pyv2_put(pyv2, vb, key, body(3000, 1), {"gen": "one"}).version_id
    v2 = pyv2_put(pyv2, vb, key, body(3000, 2), {"gen": "two"}).version_id
    assert v1 and v2 and v1 != v2
    dst = unique("pyv2-versioned-dst")
    r = pyv2.copy_object(
        ossv2.models.CopyObjectRequest(
            bucket=vb, key=dst, source_key=key, source_version_id=v1
        )
    )
    assert r.source_version_id == v1
    assert r.version_id
    got = pyv2.get_object(ossv2.models.GetObjectRequest(bucket=vb, key=dst)).body.read()
    assert got == body(3000, 1)
    assert pyv2_tags(pyv2, vb, dst) == {"gen": "one"}

    etag = pyv2.head_object(ossv2.models.HeadObjectRequest(bucket=vb, key=key)).etag
    pyv2.copy_object(
        ossv2.models.CopyObjectRequest(
            bucket=vb, key=unique("pyv2-ifmatch"), source_key=key, if_match=etag
        )
    )
    with pytest.raises(Exception) as e:
        pyv2.copy_object(
            ossv2.models.CopyObjectRequest(
                bucket=vb, key=unique("pyv2-ifnone"), source_key=key, if_none_match=etag
            )
        )
    assert service_error(e.value).status_code == 412

    # forbid-overwrite applies to unversioned buckets only (OSS ignores it in versioned ones).
    b = emulator.bucket
    taken = unique("pyv2-taken")
    pyv2_put(pyv2, b, taken, b"already here")
    with pytest.raises(Exception) as e:
        pyv2.copy_object(
            ossv2.models.CopyObjectRequest(
                bucket=b, key=taken, source_bucket=vb, source_key=key, forbid_overwrite=True
            )
        )
    err = service_error(e.value)
    assert (err.status_code, err.code) == (409, "FileAlreadyExists")


def test_pyv2_upload_part_copy_with_ranges(pyv2, emulator):
    b = emulator.bucket
    src = unique("pyv2-upc-src")
    data = body(3 * PART + 77, 3)
    pyv2_put(pyv2, b, src, data)
    dst = unique("pyv2-upc-dst")
    init = pyv2.initiate_multipart_upload(
        ossv2.models.InitiateMultipartUploadRequest(
            bucket=b, key=dst, tagging=tag_header(SPECIAL_TAGS)
        )
    )
    parts = []
    for n, start in enumerate(range(0, len(data), PART), start=1):
        end = min(start + PART, len(data)) - 1
        r = pyv2.upload_part_copy(
            ossv2.models.UploadPartCopyRequest(
                bucket=b,
                key=dst,
                upload_id=init.upload_id,
                part_number=n,
                source_key=src,
                source_range=f"bytes={start}-{end}",
            )
        )
        parts.append(ossv2.models.UploadPart(part_number=n, etag=r.etag))
    pyv2.complete_multipart_upload(
        ossv2.models.CompleteMultipartUploadRequest(
            bucket=b,
            key=dst,
            upload_id=init.upload_id,
            complete_multipart_upload=ossv2.models.CompleteMultipartUpload(parts=parts),
        )
    )
    got = pyv2.get_object(ossv2.models.GetObjectRequest(bucket=b, key=dst)).body.read()
    assert got == data
    assert pyv2_tags(pyv2, b, dst) == SPECIAL_TAGS


def test_pyv2_copier_multipart_path(pyv2, emulator):
    b = emulator.bucket
    src = unique("pyv2-copier-src")
    data = body(4 * PART + 5, 4)
    # Plain tags only: the SDK's multipart path joins tags as k=v without URL-encoding them.
    plain_tags = {"project": "alpha", "team": "storage"}
    pyv2_put(pyv2, b, src, data, plain_tags, {"owner": "alice"})
    dst = unique("pyv2-copier-dst")
    copier = pyv2.copier(
        part_size=PART,
        parallel_num=3,
        multipart_copy_threshold=PART,
        disable_shallow_copy=True,
    )
    r = copier.copy(ossv2.models.CopyObjectRequest(bucket=b, key=dst, source_key=src))
    assert r.upload_id, "the multipart path was taken"
    got = pyv2.get_object(ossv2.models.GetObjectRequest(bucket=b, key=dst)).body.read()
    assert got == data
    assert pyv2_tags(pyv2, b, dst) == plain_tags
    h = pyv2.head_object(ossv2.models.HeadObjectRequest(bucket=b, key=dst))
    assert h.metadata == {"owner": "alice"}
    assert h.object_type == "Multipart"


@pytest.fixture(params=["v1", "v4"])
def bucket(request, emulator):
    if request.param == "v4":
        auth = oss2.AuthV4(emulator.access_key_id, emulator.access_key_secret)
        return oss2.Bucket(auth, emulator.endpoint, emulator.bucket, region=emulator.region)
    auth = oss2.Auth(emulator.access_key_id, emulator.access_key_secret)
    return oss2.Bucket(auth, emulator.endpoint, emulator.bucket)


def oss2_tags(bucket, key):
    return dict(bucket.get_object_tagging(key).tag_set.tagging_rule)


def test_oss2_copy_object_directives(bucket, emulator):
    src = unique("oss2-src")
    bucket.put_object(
        src,
        body(4000, 5),
        headers={"x-oss-tagging": tag_header(SPECIAL_TAGS), "x-oss-meta-owner": "alice"},
    )
    dst = unique("oss2-dst-copy")
    bucket.copy_object(emulator.bucket, src, dst)
    assert oss2_tags(bucket, dst) == SPECIAL_TAGS
    assert bucket.head_object(dst).headers["x-oss-meta-owner"] == "alice"

    dst = unique("oss2-dst-replace")
    new_tags = {"status": "copied = yes"}
    bucket.copy_object(
        emulator.bucket,
        src,
        dst,
        headers={
            "x-oss-tagging-directive": "Replace",
            "x-oss-tagging": tag_header(new_tags),
            "x-oss-metadata-directive": "REPLACE",
            "x-oss-meta-reviewer": "bob",
        },
    )
    assert oss2_tags(bucket, dst) == new_tags
    h = bucket.head_object(dst).headers
    assert h["x-oss-meta-reviewer"] == "bob"
    assert "x-oss-meta-owner" not in h
    assert bucket.get_object(dst).read() == body(4000, 5)

    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.copy_object(
            emulator.bucket,
            src,
            unique("oss2-ifmatch"),
            headers={"x-oss-copy-source-if-match": '"0123456789ABCDEF0123456789ABCDEF"'},
        )


def test_oss2_upload_part_copy_and_symlink_copy(bucket, emulator):
    src = unique("oss2-upc-src")
    data = body(2 * PART + 10, 6)
    bucket.put_object(src, data)
    dst = unique("oss2-upc-dst")
    upload_id = bucket.init_multipart_upload(dst).upload_id
    parts = []
    for n, start in enumerate(range(0, len(data), PART), start=1):
        end = min(start + PART, len(data)) - 1
        r = bucket.upload_part_copy(emulator.bucket, src, (start, end), dst, upload_id, n)
        parts.append(oss2.models.PartInfo(n, r.etag))
    bucket.complete_multipart_upload(dst, upload_id, parts)
    assert bucket.get_object(dst).read() == data

    link = unique("oss2-link")
    bucket.put_symlink(src, link)
    link_copy = unique("oss2-link-copy")
    bucket.copy_object(emulator.bucket, link, link_copy)
    assert bucket.get_symlink(link_copy).target_key == src
    assert bucket.get_object(link_copy).read() == data
