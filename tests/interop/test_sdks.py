"""The official Python SDKs against the ossgate emulator, signature checking on.

Every test runs for alibabacloud-oss-v2 (V4 and V1) and oss2 (V1, and V4 with AuthV4 +
region). The SDKs check x-oss-hash-crc64ecma themselves on upload and on full downloads.
"""

import uuid
from urllib.parse import quote, unquote

import alibabacloud_oss_v2 as ossv2
import crcmod
import oss2
import pytest

crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)

SPECIAL_TAGS = {
    "plain": "value",
    "punct": "a+b-c=d.e_f:g/h",
    "with space": "two words",
    "ünïcödé": "日本語 値",
    "empty": "",
}


class SdkError(Exception):
    def __init__(self, status, code):
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code


def tag_header(tags):
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags.items())


class PyV2:
    """alibabacloud-oss-v2."""

    def __init__(self, emu, version, secret=None):
        cfg = ossv2.config.load_default()
        cfg.credentials_provider = ossv2.credentials.StaticCredentialsProvider(
            emu.access_key_id, secret or emu.access_key_secret
        )
        cfg.region = emu.region
        cfg.endpoint = emu.endpoint
        cfg.signature_version = version
        cfg.retry_max_attempts = 1
        self.client = ossv2.Client(cfg)
        self.bucket = emu.bucket

    def _call(self, fn, request):
        try:
            return fn(request)
        except ossv2.exceptions.OperationError as e:
            inner = e.unwrap()
            if isinstance(inner, ossv2.exceptions.ServiceError):
                raise SdkError(inner.status_code, inner.code) from e
            raise

    def put(self, key, data, tags=None, meta=None):
        r = self._call(
            self.client.put_object,
            ossv2.PutObjectRequest(
                bucket=self.bucket,
                key=key,
                body=data,
                tagging=tag_header(tags) if tags else None,
                metadata=meta,
            ),
        )
        return r.etag

    def head(self, key):
        r = self._call(self.client.head_object, ossv2.HeadObjectRequest(bucket=self.bucket, key=key))
        meta = {k.lower(): v for k, v in (r.metadata or {}).items()}
        return {
            "tag_count": r.tagging_count or 0,
            "meta": meta,
            "crc64": int(r.hash_crc64),
            "size": r.content_length,
            "object_type": r.object_type,
        }

    def get(self, key, byte_range=None):
        req = ossv2.GetObjectRequest(bucket=self.bucket, key=key)
        if byte_range:
            req.range_header = f"bytes={byte_range[0]}-{byte_range[1]}"
        r = self._call(self.client.get_object, req)
        return r.body.read()

    def delete(self, key):
        self._call(self.client.delete_object, ossv2.DeleteObjectRequest(bucket=self.bucket, key=key))

    def put_tags(self, key, tags):
        tagging = ossv2.Tagging(
            tag_set=ossv2.TagSet(tags=[ossv2.Tag(key=k, value=v) for k, v in tags.items()])
        )
        self._call(
            self.client.put_object_tagging,
            ossv2.PutObjectTaggingRequest(bucket=self.bucket, key=key, tagging=tagging),
        )

    def get_tags(self, key):
        r = self._call(
            self.client.get_object_tagging,
            ossv2.GetObjectTaggingRequest(bucket=self.bucket, key=key),
        )
        tags = (r.tag_set.tags if r.tag_set else None) or []
        return {t.key: t.value or "" for t in tags}

    def delete_tags(self, key):
        self._call(
            self.client.delete_object_tagging,
            ossv2.DeleteObjectTaggingRequest(bucket=self.bucket, key=key),
        )

    def put_symlink(self, link, target):
        self._call(
            self.client.put_symlink,
            # pyv2 1.4.1 sends the target as given; OSS wants it URL-encoded (mandatory for
            # non-ASCII: http.client would send the header as Latin-1).
            ossv2.PutSymlinkRequest(bucket=self.bucket, key=link, target=quote(target)),
        )

    def get_symlink(self, link):
        r = self._call(self.client.get_symlink, ossv2.GetSymlinkRequest(bucket=self.bucket, key=link))
        # pyv2 returns the header as sent; OSS sends it URL-encoded.
        return unquote(r.target)


class Oss2:
    """oss2 (the older SDK)."""

    def __init__(self, emu, version, secret=None):
        secret = secret or emu.access_key_secret
        if version == "v4":
            auth = oss2.AuthV4(emu.access_key_id, secret)
            self.b = oss2.Bucket(auth, emu.endpoint, emu.bucket, region=emu.region)
        else:
            auth = oss2.Auth(emu.access_key_id, secret)
            self.b = oss2.Bucket(auth, emu.endpoint, emu.bucket)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except oss2.exceptions.OssError as e:
            raise SdkError(e.status, e.code) from e

    def put(self, key, data, tags=None, meta=None):
        headers = {}
        if tags:
            headers["x-oss-tagging"] = tag_header(tags)
        for k, v in (meta or {}).items():
            headers[f"x-oss-meta-{k}"] = v
        return self._call(self.b.put_object, key, data, headers=headers).etag

    def head(self, key):
        r = self._call(self.b.head_object, key)
        h = r.headers
        meta = {
            k.lower()[len("x-oss-meta-"):]: v
            for k, v in h.items()
            if k.lower().startswith("x-oss-meta-")
        }
        return {
            "tag_count": int(h.get("x-oss-tagging-count", "0")),
            "meta": meta,
            "crc64": int(r.server_crc),
            "size": r.content_length,
            "object_type": r.object_type,
        }

    def get(self, key, byte_range=None):
        return self._call(self.b.get_object, key, byte_range=byte_range).read()

    def delete(self, key):
        self._call(self.b.delete_object, key)

    def put_tags(self, key, tags):
        rule = oss2.models.TaggingRule()
        for k, v in tags.items():
            rule.add(k, v)
        self._call(self.b.put_object_tagging, key, oss2.models.Tagging(rule))

    def get_tags(self, key):
        r = self._call(self.b.get_object_tagging, key)
        return dict(r.tag_set.tagging_rule)

    def delete_tags(self, key):
        self._call(self.b.delete_object_tagging, key)

    def put_symlink(self, link, target):
        self._call(self.b.put_symlink, target, link)

    def get_symlink(self, link):
        return self._call(self.b.get_symlink, link).target_key


CLIENTS = [
    pytest.param((PyV2, "v4"), id="pyv2-v4"),
    pytest.param((PyV2, "v1"), id="pyv2-v1"),
    pytest.param((Oss2, "v1"), id="oss2-v1"),
    pytest.param((Oss2, "v4"), id="oss2-v4"),
]


@pytest.fixture(params=CLIENTS)
def sdk(request, emulator):
    cls, version = request.param
    return cls(emulator, version)


def unique(prefix):
    return f"interop/{prefix} {uuid.uuid4().hex[:8]}/obj+1.txt"


def test_put_with_tags_and_metadata_then_head(sdk):
    key = unique("put")
    data = b"hello from the interop test\n" * 100
    etag = sdk.put(key, data, tags={"project": "alpha", "team": "storage ops"}, meta={"color": "Red", "size": "L"})
    assert etag.strip('"') == etag.strip('"').upper() and len(etag.strip('"')) == 32
    head = sdk.head(key)
    assert head["tag_count"] == 2
    assert head["meta"] == {"color": "Red", "size": "L"}
    assert head["crc64"] == crc64(data)
    assert head["size"] == len(data)
    assert head["object_type"] == "Normal"
    assert sdk.get(key) == data
    assert sdk.get_tags(key) == {"project": "alpha", "team": "storage ops"}


def test_tagging_put_get_delete_with_special_characters(sdk):
    key = unique("tags")
    sdk.put(key, b"x")
    assert sdk.get_tags(key) == {}
    sdk.put_tags(key, SPECIAL_TAGS)
    assert sdk.get_tags(key) == SPECIAL_TAGS
    assert sdk.head(key)["tag_count"] == len(SPECIAL_TAGS)
    sdk.delete_tags(key)
    assert sdk.get_tags(key) == {}
    assert sdk.head(key)["tag_count"] == 0


def test_special_tags_in_the_put_header(sdk):
    key = unique("header tags")
    sdk.put(key, b"tagged", tags=SPECIAL_TAGS)
    assert sdk.get_tags(key) == SPECIAL_TAGS


def test_symlink_put_get_and_follow(sdk):
    target = unique("target ü")
    link = unique("link")
    data = b"symlinked data"
    sdk.put(target, data)
    sdk.put_symlink(link, target)
    assert sdk.get_symlink(link) == target
    assert sdk.get(link) == data
    head = sdk.head(link)
    assert head["object_type"] == "Symlink"
    assert head["crc64"] == crc64(data)
    sdk.delete(target)
    with pytest.raises(SdkError) as e:
        sdk.get(link)
    assert (e.value.status, e.value.code) == (404, "SymlinkTargetNotExist")


def test_range_get(sdk):
    key = unique("range")
    data = bytes(range(256)) * 40
    sdk.put(key, data)
    assert sdk.get(key, (0, 9)) == data[:10]
    assert sdk.get(key, (100, 5000)) == data[100:5001]


def test_delete(sdk):
    key = unique("delete")
    sdk.put(key, b"bye")
    sdk.delete(key)
    with pytest.raises(SdkError) as e:
        sdk.get(key)
    assert (e.value.status, e.value.code) == (404, "NoSuchKey")
    with pytest.raises(SdkError) as e:
        sdk.head(key)
    assert e.value.status == 404
    # Deleting again is not an error.
    sdk.delete(key)


@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_secret_gets_signature_does_not_match(emulator, client):
    cls, version = client
    sdk = cls(emulator, version, secret="not-the-secret")
    with pytest.raises(SdkError) as e:
        sdk.put(unique("denied"), b"nope")
    assert (e.value.status, e.value.code) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_pyv2_raw_ascii_symlink_target(emulator, version):
    """pyv2 1.4.1 sends x-oss-symlink-target unencoded; an ASCII target still works."""
    sdk = PyV2(emulator, version)
    target = unique("raw target")
    sdk.put(target, b"raw")
    sdk._call(
        sdk.client.put_symlink,
        ossv2.PutSymlinkRequest(bucket=sdk.bucket, key=target + ".lnk", target=target),
    )
    assert sdk.get_symlink(target + ".lnk") == target
    assert sdk.get(target + ".lnk") == b"raw"


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_pyv2_versioned_bucket_tags_per_version(emulator, version):
    sdk = PyV2(emulator, version)
    c, bucket, key = sdk.client, emulator.versioned_bucket, unique("versioned")
    v1 = c.put_object(ossv2.PutObjectRequest(bucket=bucket, key=key, body=b"one")).version_id
    v2 = c.put_object(ossv2.PutObjectRequest(bucket=bucket, key=key, body=b"two")).version_id
    assert v1 and v2 and v1 != v2
    tagging = ossv2.Tagging(tag_set=ossv2.TagSet(tags=[ossv2.Tag(key="old", value="yes")]))
    r = c.put_object_tagging(
        ossv2.PutObjectTaggingRequest(bucket=bucket, key=key, tagging=tagging, version_id=v1)
    )
    assert r.version_id == v1
    got = c.get_object_tagging(ossv2.GetObjectTaggingRequest(bucket=bucket, key=key, version_id=v1))
    assert [(t.key, t.value) for t in got.tag_set.tags] == [("old", "yes")]
    got = c.get_object_tagging(ossv2.GetObjectTaggingRequest(bucket=bucket, key=key))
    assert not (got.tag_set and got.tag_set.tags)
    d = c.delete_object(ossv2.DeleteObjectRequest(bucket=bucket, key=key))
    assert d.delete_marker
    old = c.get_object(ossv2.GetObjectRequest(bucket=bucket, key=key, version_id=v1))
    assert old.body.read() == b"one"
    with pytest.raises(ossv2.exceptions.OperationError) as e:
        c.get_object(ossv2.GetObjectRequest(bucket=bucket, key=key))
    assert e.value.unwrap().code == "NoSuchKey"


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_versioned_bucket_tags_per_version(emulator, version):
    sdk = Oss2(emulator, version)
    if version == "v4":
        b = oss2.Bucket(sdk.b.auth, emulator.endpoint, emulator.versioned_bucket, region=emulator.region)
    else:
        b = oss2.Bucket(sdk.b.auth, emulator.endpoint, emulator.versioned_bucket)
    key = unique("versioned oss2")
    v1 = b.put_object(key, b"one").versionid
    v2 = b.put_object(key, b"two").versionid
    assert v1 and v2 and v1 != v2
    rule = oss2.models.TaggingRule()
    rule.add("old", "yes")
    b.put_object_tagging(key, oss2.models.Tagging(rule), params={"versionId": v1})
    assert b.get_object_tagging(key, params={"versionId": v1}).tag_set.tagging_rule == {"old": "yes"}
    assert b.get_object_tagging(key).tag_set.tagging_rule == {}
    assert b.get_object(key, params={"versionId": v1}).read() == b"one"
