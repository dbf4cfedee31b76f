"""Bucket and service operations through the official Python SDKs against the ossgate
emulator, signature checking on (alibabacloud-oss-v2 V4/V1, oss2 V1/V4): PutBucket with a
storage class and ACL, GetBucketInfo/Location/Stat, bucket ACL, versioning, tags and the
ListBuckets tag filters, the ListBuckets paginator, DescribeRegions, DeleteBucket, and the
errors the SDKs' own checks rely on.
"""

import uuid

import alibabacloud_oss_v2 as ossv2
import oss2
import pytest


def new_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def v2_client(emu, version, key_id=None):
    cfg = ossv2.config.load_default()
    cfg.credentials_provider = ossv2.credentials.StaticCredentialsProvider(
        key_id or emu.access_key_id, emu.access_key_secret
    )
    cfg.region = emu.region
    cfg.endpoint = emu.endpoint
    cfg.signature_version = version
    cfg.retry_max_attempts = 1
    return ossv2.Client(cfg)


def oss2_auth(emu, version):
    if version == "v4":
        return oss2.AuthV4(emu.access_key_id, emu.access_key_secret)
    return oss2.Auth(emu.access_key_id, emu.access_key_secret)


def oss2_bucket(emu, version, name):
    if version == "v4":
        return oss2.Bucket(oss2_auth(emu, version), emu.endpoint, name, region=emu.region)
    return oss2.Bucket(oss2_auth(emu, version), emu.endpoint, name)


def oss2_service(emu, version):
    if version == "v4":
        return oss2.Service(oss2_auth(emu, version), emu.endpoint, region=emu.region)
    return oss2.Service(oss2_auth(emu, version), emu.endpoint)


def v2_error(exc_info):
    inner = exc_info.value.unwrap()
    return inner.status_code, inner.code


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_pyv2_bucket_lifecycle(emulator, version):
    c = v2_client(emulator, version)
    name = new_name(f"pyv2-{version}")
    r = c.put_bucket(ossv2.PutBucketRequest(
        bucket=name,
        acl="private",
        create_bucket_configuration=ossv2.CreateBucketConfiguration(storage_class="IA"),
    ))
    assert r.status_code == 200 and len(r.request_id) == 24
    with pytest.raises(ossv2.exceptions.OperationError) as e:
        c.put_bucket(ossv2.PutBucketRequest(bucket=name))
    assert v2_error(e) == (409, "BucketAlreadyExists")
    assert c.is_bucket_exist(name)

    info = c.get_bucket_info(ossv2.GetBucketInfoRequest(bucket=name)).bucket_info
    assert (info.name, info.storage_class, info.acl) == (name, "IA", "private")
    assert info.data_redundancy_type == "LRS" and info.block_public_access is True
    assert info.extranet_endpoint == emulator.endpoint and info.sse_rule.sse_algorithm == "None"
    loc = c.get_bucket_location(ossv2.GetBucketLocationRequest(bucket=name))
    assert loc.location == f"oss-{emulator.region}"
    stat = c.get_bucket_stat(ossv2.GetBucketStatRequest(bucket=name))
    assert (stat.storage, stat.object_count, stat.multi_part_upload_count) == (0, 0, 0)

    c.put_bucket_acl(ossv2.PutBucketAclRequest(bucket=name, acl="public-read-write"))
    assert c.get_bucket_acl(ossv2.GetBucketAclRequest(bucket=name)).acl == "public-read-write"

    # Versioning: Enabled gives version IDs; Suspended writes the null version.
    assert c.get_bucket_versioning(ossv2.GetBucketVersioningRequest(bucket=name)).version_status is None
    c.put_bucket_versioning(ossv2.PutBucketVersioningRequest(
        bucket=name, versioning_configuration=ossv2.VersioningConfiguration(status="Enabled")))
    assert c.get_bucket_versioning(ossv2.GetBucketVersioningRequest(bucket=name)).version_status == "Enabled"
    first = c.put_object(ossv2.PutObjectRequest(bucket=name, key="k", body=b"one"))
    assert first.version_id
    c.put_bucket_versioning(ossv2.PutBucketVersioningRequest(
        bucket=name, versioning_configuration=ossv2.VersioningConfiguration(status="Suspended")))
    c.put_object(ossv2.PutObjectRequest(bucket=name, key="k", body=b"two"))
    got = c.get_object(ossv2.GetObjectRequest(bucket=name, key="k", version_id=first.version_id))
    assert got.body.read() == b"one"
    assert c.get_object(ossv2.GetObjectRequest(bucket=name, key="k")).body.read() == b"two"
    stat = c.get_bucket_stat(ossv2.GetBucketStatRequest(bucket=name))
    # Objects written without a storage class get the bucket's (IA).
    assert (stat.object_count, stat.storage, stat.infrequent_access_object_count) == (1, 3, 1)
    assert c.head_object(ossv2.HeadObjectRequest(bucket=name, key="k")).storage_class == "IA"

    # Not empty while any version is left; empty once they are gone.
    with pytest.raises(ossv2.exceptions.OperationError) as e:
        c.delete_bucket(ossv2.DeleteBucketRequest(bucket=name))
    assert v2_error(e) == (409, "BucketNotEmpty")
    for vid in (first.version_id, "null"):
        c.delete_object(ossv2.DeleteObjectRequest(bucket=name, key="k", version_id=vid))
    assert c.delete_bucket(ossv2.DeleteBucketRequest(bucket=name)).status_code == 204
    assert not c.is_bucket_exist(name)


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_pyv2_list_buckets_paginator_and_tag_filters(emulator, version):
    c = v2_client(emulator, version)
    prefix = new_name(f"pyv2-list-{version}")
    for i, tags in enumerate([[("env", "test")], [("env", "test"), ("team", "dev")], [("env", "prod")]]):
        name = f"{prefix}-{i}"
        c.put_bucket(ossv2.PutBucketRequest(bucket=name))
        c.put_bucket_tags(ossv2.PutBucketTagsRequest(bucket=name, tagging=ossv2.Tagging(
            tag_set=ossv2.TagSet(tags=[ossv2.Tag(key=k, value=v) for k, v in tags]))))
    pages = list(c.list_buckets_paginator(limit=1).iter_page(ossv2.ListBucketsRequest(prefix=prefix)))
    assert [len(p.buckets) for p in pages] == [1, 1, 1]
    assert [p.buckets[0].name for p in pages] == [f"{prefix}-{i}" for i in range(3)]
    assert pages[0].is_truncated and not pages[-1].is_truncated
    one = pages[0].buckets[0]
    assert (one.region, one.location, one.storage_class) == (emulator.region, f"oss-{emulator.region}", "Standard")
    assert one.creation_date is not None and one.extranet_endpoint == emulator.endpoint

    def count(**filters):
        return len(c.list_buckets(ossv2.ListBucketsRequest(prefix=prefix, **filters)).buckets or [])

    assert count(tag_key="env") == 3
    assert count(tag_key="env", tag_value="test") == 2
    assert count(tagging='"env":"test","team":"dev"') == 1
    tags = c.get_bucket_tags(ossv2.GetBucketTagsRequest(bucket=f"{prefix}-1"))
    assert sorted((t.key, t.value) for t in tags.tagging.tag_set.tags) == [("env", "test"), ("team", "dev")]
    c.delete_bucket_tags(ossv2.DeleteBucketTagsRequest(bucket=f"{prefix}-1"))
    assert count(tag_key="team") == 0


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_pyv2_describe_regions_and_error_order(emulator, version):
    c = v2_client(emulator, version)
    assert len(c.describe_regions(ossv2.DescribeRegionsRequest()).region_info) > 1
    one = c.describe_regions(ossv2.DescribeRegionsRequest(regions="oss-cn-hangzhou")).region_info
    assert [(r.region, r.internet_endpoint) for r in one] == [("oss-cn-hangzhou", "oss-cn-hangzhou.aliyuncs.com")]
    bad = v2_client(emulator, version, key_id="unknown-ak")
    missing = new_name("missing")
    # No bucket to be missing: the key is checked first.
    for call in (
        lambda: bad.put_bucket(ossv2.PutBucketRequest(bucket=missing)),
        lambda: bad.put_bucket_acl(ossv2.PutBucketAclRequest(bucket=missing, acl="private")),
        lambda: bad.describe_regions(ossv2.DescribeRegionsRequest()),
        lambda: bad.list_buckets(ossv2.ListBucketsRequest()),
    ):
        with pytest.raises(ossv2.exceptions.OperationError) as e:
            call()
        assert v2_error(e) == (403, "InvalidAccessKeyId")
    # A missing bucket is NoSuchBucket before the key.
    for call in (
        lambda: bad.get_bucket_info(ossv2.GetBucketInfoRequest(bucket=missing)),
        lambda: bad.get_bucket_stat(ossv2.GetBucketStatRequest(bucket=missing)),
        lambda: bad.put_bucket_versioning(ossv2.PutBucketVersioningRequest(bucket=missing)),
    ):
        with pytest.raises(ossv2.exceptions.OperationError) as e:
            call()
        assert v2_error(e) == (404, "NoSuchBucket")
    # The SDK checks bucket names itself (tests/backend checks the emulator's InvalidBucketName).
    with pytest.raises(ossv2.exceptions.OperationError):
        c.put_bucket(ossv2.PutBucketRequest(bucket="Not_A_Bucket"))


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_bucket_lifecycle(emulator, version):
    name = new_name(f"oss2-{version}")
    b = oss2_bucket(emulator, version, name)
    b.create_bucket(oss2.BUCKET_ACL_PUBLIC_READ, oss2.models.BucketCreateConfig(oss2.BUCKET_STORAGE_CLASS_IA))
    with pytest.raises(oss2.exceptions.ServerError) as e:
        b.create_bucket()
    assert (e.value.status, e.value.code) == (409, "BucketAlreadyExists")
    info = b.get_bucket_info()
    assert (info.name, info.storage_class, info.acl.grant) == (name, "IA", "public-read")
    assert info.location == f"oss-{emulator.region}" and info.owner.id
    assert b.get_bucket_location().location == f"oss-{emulator.region}"
    b.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    assert b.get_bucket_acl().acl == "private"
    b.put_bucket_versioning(oss2.models.BucketVersioningConfig("Enabled"))
    assert b.get_bucket_versioning().status == "Enabled"
    put = b.put_object("k", b"12345")
    stat = b.get_bucket_stat()
    assert (stat.object_count, stat.storage_size_in_bytes) == (1, 5)
    rule = oss2.models.TaggingRule()
    rule.add("env", "test")
    b.put_bucket_tagging(oss2.models.Tagging(rule))
    assert b.get_bucket_tagging().tag_set.tagging_rule == {"env": "test"}

    service = oss2_service(emulator, version)
    names = [x.name for x in oss2.BucketIterator(service, prefix=name, max_keys=1)]
    assert names == [name]
    listed = service.list_buckets(prefix=name).buckets[0]
    assert (listed.storage_class, listed.region) == ("IA", emulator.region)
    assert any(r.region == "oss-cn-hangzhou" for r in service.describe_regions().regions)

    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        b.delete_bucket()
    b.delete_object("k", params={"versionId": put.versionid})
    b.delete_bucket()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.get_bucket_info()
