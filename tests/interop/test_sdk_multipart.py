"""Multipart uploads, AppendObject and CopyObject through the official Python SDKs against
the ossgate emulator, signature checking on (alibabacloud-oss-v2 V4/V1, oss2 V1/V4).

The SDKs check x-oss-hash-crc64ecma themselves where they support it (uploads, appends,
the resumable uploaders).
"""

import io
import os
import uuid

import alibabacloud_oss_v2 as ossv2
import crcmod
import oss2
import pytest

crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)
KB = 1024


def unique(prefix):
    return f"interop-mp/{prefix} {uuid.uuid4().hex[:8]}/obj+1.bin"


def blob(n, seed):
    return bytes((i * 31 + seed) % 256 for i in range(n))


def v2_client(emu, version):
    cfg = ossv2.config.load_default()
    cfg.credentials_provider = ossv2.credentials.StaticCredentialsProvider(
        emu.access_key_id, emu.access_key_secret
    )
    cfg.region = emu.region
    cfg.endpoint = emu.endpoint
    cfg.signature_version = version
    cfg.retry_max_attempts = 1
    return ossv2.Client(cfg)


def oss2_bucket(emu, version, bucket=None):
    bucket = bucket or emu.bucket
    if version == "v4":
        return oss2.Bucket(oss2.AuthV4(emu.access_key_id, emu.access_key_secret), emu.endpoint, bucket, region=emu.region)
    return oss2.Bucket(oss2.Auth(emu.access_key_id, emu.access_key_secret), emu.endpoint, bucket)


def v2_code(exc_info):
    inner = exc_info.value.unwrap()
    return inner.status_code, inner.code


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_pyv2_multipart_upload_list_complete_and_abort(emulator, version):
    c = v2_client(emulator, version)
    b = emulator.bucket
    key = unique("pyv2-mp")
    init = c.initiate_multipart_upload(
        ossv2.InitiateMultipartUploadRequest(bucket=b, key=key, tagging="a=1&b=2", metadata={"color": "red"})
    )
    assert init.key == key
    parts = [blob(100 * KB, 1), blob(120 * KB, 2), blob(5, 3)]
    etags = []
    for n, data in enumerate(parts, start=1):
        r = c.upload_part(ossv2.UploadPartRequest(bucket=b, key=key, upload_id=init.upload_id, part_number=n, body=data))
        assert int(r.hash_crc64) == crc64(data)
        etags.append(r.etag)
    listed = c.list_parts(ossv2.ListPartsRequest(bucket=b, key=key, upload_id=init.upload_id, max_parts=2))
    assert listed.is_truncated
    assert [p.part_number for p in listed.parts] == [1, 2]
    rest = c.list_parts(
        ossv2.ListPartsRequest(
            bucket=b, key=key, upload_id=init.upload_id, part_number_marker=listed.next_part_number_marker
        )
    )
    assert [(p.part_number, p.etag, p.size) for p in rest.parts] == [(3, etags[2], 5)]
    uploads = c.list_multipart_uploads(ossv2.ListMultipartUploadsRequest(bucket=b, prefix=key))
    assert [u.upload_id for u in uploads.uploads] == [init.upload_id]
    done = c.complete_multipart_upload(
        ossv2.CompleteMultipartUploadRequest(
            bucket=b,
            key=key,
            upload_id=init.upload_id,
            complete_multipart_upload=ossv2.CompleteMultipartUpload(
                parts=[ossv2.UploadPart(part_number=n, etag=e) for n, e in enumerate(etags, start=1)]
            ),
        )
    )
    assert done.etag.strip('"').endswith("-3")
    whole = b"".join(parts)
    assert int(done.hash_crc64) == crc64(whole)
    got = c.get_object(ossv2.GetObjectRequest(bucket=b, key=key))
    assert got.body.read() == whole
    assert got.object_type == "Multipart"
    assert got.tagging_count == 2
    assert {k.lower(): v for k, v in got.metadata.items()} == {"color": "red"}

    # complete-all, then abort of another upload.
    key2 = unique("pyv2-all")
    init = c.initiate_multipart_upload(ossv2.InitiateMultipartUploadRequest(bucket=b, key=key2))
    c.upload_part(ossv2.UploadPartRequest(bucket=b, key=key2, upload_id=init.upload_id, part_number=1, body=b"only"))
    done = c.complete_multipart_upload(
        ossv2.CompleteMultipartUploadRequest(bucket=b, key=key2, upload_id=init.upload_id, complete_all="yes")
    )
    assert int(done.hash_crc64) == crc64(b"only")
    init = c.initiate_multipart_upload(ossv2.InitiateMultipartUploadRequest(bucket=b, key=key2))
    c.abort_multipart_upload(ossv2.AbortMultipartUploadRequest(bucket=b, key=key2, upload_id=init.upload_id))
    with pytest.raises(ossv2.exceptions.OperationError) as exc:
        c.abort_multipart_upload(ossv2.AbortMultipartUploadRequest(bucket=b, key=key2, upload_id=init.upload_id))
    assert v2_code(exc) == (404, "NoSuchUpload")


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_multipart_upload_list_complete_and_abort(emulator, version):
    bkt = oss2_bucket(emulator, version)
    key = unique("oss2-mp")
    upload_id = bkt.init_multipart_upload(key, headers={"x-oss-tagging": "k=v", "Content-Type": "text/plain"}).upload_id
    parts = [blob(100 * KB, 5), blob(3 * KB, 6)]
    infos = []
    for n, data in enumerate(parts, start=1):
        r = bkt.upload_part(key, upload_id, n, data)
        infos.append(oss2.models.PartInfo(n, r.etag))
    listed = bkt.list_parts(key, upload_id)
    assert [(p.part_number, p.etag, p.size) for p in listed.parts] == [
        (1, infos[0].etag, 100 * KB),
        (2, infos[1].etag, 3 * KB),
    ]
    bkt.complete_multipart_upload(key, upload_id, infos)
    got = bkt.get_object(key)
    assert got.read() == b"".join(parts)
    assert got.headers["x-oss-object-type"] == "Multipart"
    assert got.headers["Content-Type"] == "text/plain"
    assert bkt.get_object_tagging(key).tag_set.tagging_rule == {"k": "v"}
    # Too-small non-last part.
    upload_id = bkt.init_multipart_upload(key).upload_id
    small = [oss2.models.PartInfo(n, bkt.upload_part(key, upload_id, n, b"tiny").etag) for n in (1, 2)]
    with pytest.raises(oss2.exceptions.OssError) as exc:
        bkt.complete_multipart_upload(key, upload_id, small)
    assert (exc.value.status, exc.value.code) == (400, "EntityTooSmall")
    bkt.abort_multipart_upload(key, upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bkt.abort_multipart_upload(key, upload_id)


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_pyv2_append_with_conflict(emulator, version):
    c = v2_client(emulator, version)
    b = emulator.bucket
    key = unique("pyv2-append")
    r = c.append_object(ossv2.AppendObjectRequest(bucket=b, key=key, position=0, body=b"hello", tagging="t=1"))
    assert r.next_position == 5
    assert int(r.hash_crc64) == crc64(b"hello")
    with pytest.raises(ossv2.exceptions.OperationError) as exc:
        c.append_object(ossv2.AppendObjectRequest(bucket=b, key=key, position=3, body=b"x"))
    assert v2_code(exc) == (409, "PositionNotEqualToLength")
    assert exc.value.unwrap().headers.get("x-oss-next-append-position") == "5"
    r = c.append_object(
        ossv2.AppendObjectRequest(bucket=b, key=key, position=5, body=b" world", init_hash_crc64=str(crc64(b"hello")))
    )
    assert r.next_position == 11
    assert int(r.hash_crc64) == crc64(b"hello world")
    got = c.get_object(ossv2.GetObjectRequest(bucket=b, key=key))
    assert got.body.read() == b"hello world"
    assert got.object_type == "Appendable"


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_append_with_conflict(emulator, version):
    bkt = oss2_bucket(emulator, version)
    key = unique("oss2-append")
    r = bkt.append_object(key, 0, b"abc", headers={"x-oss-meta-first": "yes"})
    assert r.next_position == 3
    with pytest.raises(oss2.exceptions.PositionNotEqualToLength) as exc:
        bkt.append_object(key, 1, b"def")
    assert exc.value.next_position == 3
    r = bkt.append_object(key, exc.value.next_position, b"def", init_crc=r.crc)
    assert r.next_position == 6 and r.crc == crc64(b"abcdef")
    head = bkt.head_object(key)
    assert head.object_type == "Appendable"
    assert head.headers["x-oss-meta-first"] == "yes"
    bkt.put_object(unique("normal"), b"n")
    normal = unique("normal")
    bkt.put_object(normal, b"n")
    with pytest.raises(oss2.exceptions.ObjectNotAppendable):
        bkt.append_object(normal, 1, b"x")


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_pyv2_copy_with_tagging_directives(emulator, version):
    c = v2_client(emulator, version)
    b = emulator.bucket
    src = unique("pyv2-src")
    c.put_object(ossv2.PutObjectRequest(bucket=b, key=src, body=b"copy me", tagging="a=1", metadata={"m": "1"}))
    dst = unique("pyv2-dst")
    r = c.copy_object(
        ossv2.CopyObjectRequest(
            bucket=b, key=dst, source_bucket=b, source_key=src, tagging_directive="Replace", tagging="x=9"
        )
    )
    assert r.etag
    tags = c.get_object_tagging(ossv2.GetObjectTaggingRequest(bucket=b, key=dst)).tag_set.tags
    assert {t.key: t.value for t in tags} == {"x": "9"}
    dst2 = unique("pyv2-dst2")
    c.copy_object(ossv2.CopyObjectRequest(bucket=b, key=dst2, source_bucket=b, source_key=src, tagging_directive="Copy"))
    tags = c.get_object_tagging(ossv2.GetObjectTaggingRequest(bucket=b, key=dst2)).tag_set.tags
    assert {t.key: t.value for t in tags} == {"a": "1"}
    got = c.get_object(ossv2.GetObjectRequest(bucket=b, key=dst2))
    assert got.body.read() == b"copy me"
    assert {k.lower(): v for k, v in got.metadata.items()} == {"m": "1"}
    # In place, metadata REPLACE: tags stay.
    c.copy_object(
        ossv2.CopyObjectRequest(
            bucket=b, key=src, source_bucket=b, source_key=src, metadata_directive="REPLACE", metadata={"m": "2"}
        )
    )
    head = c.head_object(ossv2.HeadObjectRequest(bucket=b, key=src))
    assert {k.lower(): v for k, v in head.metadata.items()} == {"m": "2"}
    assert head.tagging_count == 1


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_copy_with_tagging_directives(emulator, version):
    bkt = oss2_bucket(emulator, version)
    src = unique("oss2-src")
    bkt.put_object(src, b"copy me too", headers={"x-oss-tagging": "a=1&b=2"})
    dst = unique("oss2-dst")
    r = bkt.copy_object(
        emulator.bucket, src, dst, headers={"x-oss-tagging-directive": "Replace", "x-oss-tagging": "x=9"}
    )
    assert r.etag
    assert bkt.get_object_tagging(dst).tag_set.tagging_rule == {"x": "9"}
    dst2 = unique("oss2-dst2")
    bkt.copy_object(emulator.bucket, src, dst2, headers={"x-oss-tagging-directive": "Copy"})
    assert bkt.get_object_tagging(dst2).tag_set.tagging_rule == {"a": "1", "b": "2"}
    assert bkt.get_object(dst2).read() == b"copy me too"
    # UploadPartCopy through oss2 (it reads the part ETag from the response header).
    key = unique("oss2-partcopy")
    upload_id = bkt.init_multipart_upload(key).upload_id
    r = bkt.upload_part_copy(emulator.bucket, src, (0, 3), key, upload_id, 1)
    assert r.etag and r.etag != "None"
    bkt.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, r.etag)])
    assert bkt.get_object(key).read() == b"copy"


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_resumable_upload(emulator, version, tmp_path):
    bkt = oss2_bucket(emulator, version)
    # No space in this key: ObjectUploadIterator lists with prefix=<key>, and oss2 sends a
    # space in a query value as '+', which the emulator reads as a literal '+' (V4 mismatch).
    key = unique("oss2-resumable").replace(" ", "-")
    data = os.urandom(450 * KB)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    r = oss2.resumable_upload(
        bkt,
        key,
        str(path),
        store=oss2.ResumableStore(root=str(tmp_path / "store")),
        multipart_threshold=200 * KB,
        part_size=100 * KB,
        num_threads=3,
        headers={"x-oss-tagging": "via=resumable"},
    )
    assert r.etag.strip('"').endswith("-5")
    got = bkt.get_object(key)
    assert got.read() == data
    assert got.headers["x-oss-object-type"] == "Multipart"
    assert int(got.headers["x-oss-hash-crc64ecma"]) == crc64(data)
    assert list(oss2.ObjectUploadIterator(bkt, key)) == []


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_pyv2_uploader(emulator, version, tmp_path):
    c = v2_client(emulator, version)
    key = unique("pyv2-uploader")
    data = os.urandom(350 * KB)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    up = c.uploader(part_size=100 * KB, parallel_num=3)
    r = up.upload_file(ossv2.PutObjectRequest(bucket=emulator.bucket, key=key, tagging="via=uploader"), str(path))
    assert r.etag.strip('"').endswith("-4")
    assert int(r.hash_crc64) == crc64(data)
    got = c.get_object(ossv2.GetObjectRequest(bucket=emulator.bucket, key=key))
    assert got.body.read() == data
    assert got.tagging_count == 1
    key2 = unique("pyv2-uploader-stream")
    r = up.upload_from(ossv2.PutObjectRequest(bucket=emulator.bucket, key=key2), io.BytesIO(data))
    assert int(r.hash_crc64) == crc64(data)
    uploads = c.list_multipart_uploads(ossv2.ListMultipartUploadsRequest(bucket=emulator.bucket, prefix="interop-mp/"))
    assert [u.key for u in (uploads.uploads or []) if u.key in (key, key2)] == []


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_pyv2_is_bucket_exist_with_an_unknown_key(emulator, version):
    # OSS answers 404 NoSuchBucket before it checks the AccessKeyId; is_bucket_exist()
    # (GetBucketAcl) relies on it: False for a missing bucket, True for an existing one.
    c = v2_client(emulator, version)
    assert not c.is_bucket_exist("interop-no-such-bucket")
    cfg = ossv2.config.load_default()
    cfg.credentials_provider = ossv2.credentials.StaticCredentialsProvider("unknown-ak", "unknown-secret")
    cfg.region = emulator.region
    cfg.endpoint = emulator.endpoint
    cfg.signature_version = version
    cfg.retry_max_attempts = 1
    stranger = ossv2.Client(cfg)
    assert not stranger.is_bucket_exist("interop-no-such-bucket")
    assert stranger.is_bucket_exist(emulator.bucket)


def test_pyv2_list_parts_returns_the_client_side_encryption_envelope(emulator):
    c = v2_client(emulator, "v4")
    b = emulator.bucket
    key = unique("pyv2-cse")
    meta = {
        "client-side-encryption-key": "ZW5jcnlwdGVkIGtleQ==",
        "client-side-encryption-start": "aXY=",
        "client-side-encryption-cek-alg": "AES/CTR/NoPadding",
        "client-side-encryption-wrap-alg": "RSA/NONE/PKCS1Padding",
        "client-side-encryption-data-size": "307200",
        "client-side-encryption-part-size": "102400",
    }
    init = c.initiate_multipart_upload(ossv2.InitiateMultipartUploadRequest(bucket=b, key=key, metadata=meta))
    listed = c.list_parts(ossv2.ListPartsRequest(bucket=b, key=key, upload_id=init.upload_id))
    assert listed.client_encryption_key == "ZW5jcnlwdGVkIGtleQ=="
    assert listed.client_encryption_start == "aXY="
    assert listed.client_encryption_cek_alg == "AES/CTR/NoPadding"
    assert listed.client_encryption_wrap_alg == "RSA/NONE/PKCS1Padding"
    assert listed.client_encryption_data_size == 307200
    assert listed.client_encryption_part_size == 102400
    c.abort_multipart_upload(ossv2.AbortMultipartUploadRequest(bucket=b, key=key, upload_id=init.upload_id))
