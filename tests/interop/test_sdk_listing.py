"""Listings (ListObjects V1/V2, ListObjectVersions, ListParts, ListMultipartUploads with
their paginators), DeleteMultipleObjects, object ACLs and RestoreObject through the official
Python SDKs against the ossgate emulator, signature checking on.

Each test works under its own random prefix, so the session's shared buckets do not matter.
"""

import time
import uuid

import alibabacloud_oss_v2 as ossv2
import oss2
import pytest

from test_sdk_multipart import oss2_bucket, v2_client, v2_code

KB = 1024
# Keys that need encoding-type=url to survive XML, and a space, a '+' and non-ASCII.
ODD_KEYS = ["url-%123-/?#:key-0", "url-%123-/?#:key-1", "sp ace+plus/ünï-2"]


def prefix():
    return f"interop-list-{uuid.uuid4().hex[:8]}/"


def put_keys(c, bucket, keys, **kw):
    for k in keys:
        c.put_object(ossv2.PutObjectRequest(bucket=bucket, key=k, body=b"x", **kw))


def test_pyv2_list_objects_v2_pages_prefixes_and_odd_keys(emulator):
    c = v2_client(emulator, "v4")
    b, p = emulator.bucket, prefix()
    keys = [f"{p}k-{i}" for i in range(7)] + [f"{p}dir/a", f"{p}dir/b", f"{p}dir2/c"]
    keys += [p + k for k in ODD_KEYS]
    put_keys(c, b, keys)
    # Every key, 3 per page, in byte order.
    pages = list(c.list_objects_v2_paginator(limit=3).iter_page(ossv2.ListObjectsV2Request(bucket=b, prefix=p)))
    listed = [o.key for page in pages for o in (page.contents or [])]
    assert listed == sorted(keys)
    assert all(page.max_keys == 3 and page.key_count == len(page.contents) for page in pages)
    assert [page.is_truncated for page in pages] == [True] * (len(pages) - 1) + [False]
    # The delimiter rolls up dir/ and dir2/ (and url-%123-/), once each, across pages.
    pages = list(
        c.list_objects_v2_paginator(limit=2).iter_page(
            ossv2.ListObjectsV2Request(bucket=b, prefix=p, delimiter="/", fetch_owner=True)
        )
    )
    prefixes = [cp.prefix for page in pages for cp in (page.common_prefixes or [])]
    assert prefixes == [f"{p}dir/", f"{p}dir2/", f"{p}sp ace+plus/", f"{p}url-%123-/"]
    objects = [o for page in pages for o in (page.contents or [])]
    assert [o.key for o in objects] == [f"{p}k-{i}" for i in range(7)]
    assert all(o.owner is not None and o.owner.id for o in objects)
    assert objects[0].size == 1 and objects[0].etag.startswith('"') and objects[0].object_type == "Normal"
    # start-after, and owner only with fetch-owner.
    r = c.list_objects_v2(ossv2.ListObjectsV2Request(bucket=b, prefix=p, start_after=f"{p}k-5", max_keys=2))
    assert [o.key for o in (r.contents or [])] == [f"{p}k-6", p + ODD_KEYS[2]]
    assert r.start_after == f"{p}k-5" and r.is_truncated and r.contents[0].owner is None


def test_pyv2_list_objects_v1_marker_and_hidden_delete_markers(emulator):
    c = v2_client(emulator, "v1")
    b, p = emulator.versioned_bucket, prefix()
    keys = [f"{p}key-{i}" for i in range(5)]
    put_keys(c, b, keys)
    c.delete_object(ossv2.DeleteObjectRequest(bucket=b, key=keys[2]))
    pages = list(c.list_objects_paginator(limit=2).iter_page(ossv2.ListObjectsRequest(bucket=b, prefix=p)))
    assert [o.key for page in pages for o in (page.contents or [])] == [k for k in keys if k != keys[2]]
    assert pages[0].next_marker == keys[1] and pages[-1].next_marker is None
    r = c.list_objects(ossv2.ListObjectsRequest(bucket=b, prefix=p, marker=keys[3]))
    assert [o.key for o in (r.contents or [])] == [keys[4]] and r.marker == keys[3]


def test_pyv2_list_object_versions_delete_markers_and_pages(emulator):
    c = v2_client(emulator, "v4")
    b, p = emulator.versioned_bucket, prefix()
    k1, k2 = f"{p}a/{ODD_KEYS[0]}", f"{p}b"
    ids = [c.put_object(ossv2.PutObjectRequest(bucket=b, key=k1, body=bytes([i]) * i)).version_id for i in range(1, 4)]
    c.put_object(ossv2.PutObjectRequest(bucket=b, key=k2, body=b"b"))
    marker = c.delete_object(ossv2.DeleteObjectRequest(bucket=b, key=k2)).version_id
    r = c.list_object_versions(ossv2.ListObjectVersionsRequest(bucket=b, prefix=p))
    assert [(v.key, v.version_id, v.is_latest, v.size) for v in (r.version or [])] == [
        (k1, ids[2], True, 3),
        (k1, ids[1], False, 2),
        (k1, ids[0], False, 1),
        (k2, r.version[3].version_id, False, 1),
    ]
    assert [(d.key, d.version_id, d.is_latest) for d in (r.delete_marker or [])] == [(k2, marker, True)]
    # One entry per page: the markers walk inside a key's versions.
    pages = list(
        c.list_object_versions_paginator(limit=1).iter_page(ossv2.ListObjectVersionsRequest(bucket=b, prefix=p))
    )
    walked = [(e.key, e.version_id) for page in pages for e in (page.version or []) + (page.delete_marker or [])]
    assert len(pages) == 5 and len(set(walked)) == 5
    # The delimiter rolls a/ up.
    r = c.list_object_versions(ossv2.ListObjectVersionsRequest(bucket=b, prefix=p, delimiter="/"))
    assert [cp.prefix for cp in (r.common_prefixes or [])] == [f"{p}a/"] and {v.key for v in (r.version or [])} == {k2}


def test_pyv2_delete_multiple_objects_versions_quiet_and_encoding(emulator):
    c = v2_client(emulator, "v4")
    b, vb, p = emulator.bucket, emulator.versioned_bucket, prefix()
    keys = [p + k for k in ODD_KEYS]
    put_keys(c, b, keys)
    r = c.delete_multiple_objects(
        ossv2.DeleteMultipleObjectsRequest(bucket=b, encoding_type="url", objects=[ossv2.DeleteObject(key=k) for k in keys])
    )
    assert sorted(d.key for d in (r.deleted_objects or [])) == sorted(keys)
    assert c.list_objects_v2(ossv2.ListObjectsV2Request(bucket=b, prefix=p)).key_count == 0
    # Quiet: nothing listed. A key that does not exist counts as deleted.
    put_keys(c, b, keys[:1])
    r = c.delete_multiple_objects(
        ossv2.DeleteMultipleObjectsRequest(
            bucket=b, delete=ossv2.Delete(quiet=True, objects=[ossv2.DeleteObject(key=keys[0]), ossv2.DeleteObject(key=f"{p}none")])
        )
    )
    assert not r.deleted_objects
    # Versioned: a delete marker; then the marker and the version removed by ID.
    v = c.put_object(ossv2.PutObjectRequest(bucket=vb, key=keys[0], body=b"v")).version_id
    r = c.delete_multiple_objects(ossv2.DeleteMultipleObjectsRequest(bucket=vb, objects=[ossv2.DeleteObject(key=keys[0])]))
    d = r.deleted_objects[0]
    assert d.delete_marker and d.delete_marker_version_id and d.version_id is None
    r = c.delete_multiple_objects(
        ossv2.DeleteMultipleObjectsRequest(
            bucket=vb,
            objects=[
                ossv2.DeleteObject(key=keys[0], version_id=d.delete_marker_version_id),
                ossv2.DeleteObject(key=keys[0], version_id=v),
            ],
        )
    )
    assert [(x.version_id, bool(x.delete_marker)) for x in (r.deleted_objects or [])] == [(d.delete_marker_version_id, True), (v, False)]
    listed = c.list_object_versions(ossv2.ListObjectVersionsRequest(bucket=vb, prefix=p))
    assert not listed.version and not listed.delete_marker


def test_pyv2_object_acl(emulator):
    c = v2_client(emulator, "v4")
    b, key = emulator.bucket, prefix() + "acl"
    c.put_object(ossv2.PutObjectRequest(bucket=b, key=key, acl="private", body=b"x"))
    assert c.get_object_acl(ossv2.GetObjectAclRequest(bucket=b, key=key)).acl == "private"
    for acl in ["public-read", "public-read-write", "default"]:
        c.put_object_acl(ossv2.PutObjectAclRequest(bucket=b, key=key, acl=acl))
        assert c.get_object_acl(ossv2.GetObjectAclRequest(bucket=b, key=key)).acl == acl
    with pytest.raises(ossv2.exceptions.OperationError) as e:
        c.put_object_acl(ossv2.PutObjectAclRequest(bucket=b, key=key, acl="everyone"))
    assert v2_code(e) == (400, "InvalidArgument")
    with pytest.raises(ossv2.exceptions.OperationError) as e:
        c.get_object_acl(ossv2.GetObjectAclRequest(bucket=b, key=key + "-missing"))
    assert v2_code(e) == (404, "NoSuchKey")


def test_pyv2_restore_archive_and_cold_archive(emulator):
    c = v2_client(emulator, "v4")
    b, p = emulator.bucket, prefix()
    key = p + "archive"
    c.put_object(ossv2.PutObjectRequest(bucket=b, key=key, storage_class="Archive", body=b"frozen"))
    with pytest.raises(ossv2.exceptions.OperationError) as e:
        c.get_object(ossv2.GetObjectRequest(bucket=b, key=key))
    assert v2_code(e) == (403, "InvalidObjectState")
    assert c.head_object(ossv2.HeadObjectRequest(bucket=b, key=key)).restore is None
    assert c.restore_object(ossv2.RestoreObjectRequest(bucket=b, key=key)).status_code == 202
    with pytest.raises(ossv2.exceptions.OperationError) as e:
        c.restore_object(ossv2.RestoreObjectRequest(bucket=b, key=key))
    assert v2_code(e) == (409, "RestoreAlreadyInProgress")
    assert c.head_object(ossv2.HeadObjectRequest(bucket=b, key=key)).restore == 'ongoing-request="true"'
    listed = c.list_objects_v2(ossv2.ListObjectsV2Request(bucket=b, prefix=p)).contents[0]
    assert listed.storage_class == "Archive" and listed.restore_info == 'ongoing-request="true"'
    time.sleep(1.2)  # the emulator's default restore delay is 1 s
    head = c.head_object(ossv2.HeadObjectRequest(bucket=b, key=key))
    assert head.restore.startswith('ongoing-request="false", expiry-date="')
    assert c.get_object(ossv2.GetObjectRequest(bucket=b, key=key)).body.read() == b"frozen"
    # Restoring a restored object moves its expiry: 200.
    assert c.restore_object(ossv2.RestoreObjectRequest(bucket=b, key=key, restore_request=ossv2.RestoreRequest(days=2))).status_code == 200
    # A cold archive restore says its priority; a Standard object cannot be restored.
    cold = p + "cold"
    c.put_object(ossv2.PutObjectRequest(bucket=b, key=cold, storage_class="ColdArchive", body=b"c"))
    r = c.restore_object(
        ossv2.RestoreObjectRequest(
            bucket=b, key=cold, restore_request=ossv2.RestoreRequest(days=3, job_parameters=ossv2.JobParameters(tier="Bulk"))
        )
    )
    assert (r.status_code, r.restore_priority) == (202, "Bulk")
    put_keys(c, b, [p + "std"])
    with pytest.raises(ossv2.exceptions.OperationError) as e:
        c.restore_object(ossv2.RestoreObjectRequest(bucket=b, key=p + "std"))
    assert v2_code(e) == (400, "OperationNotSupported")


def test_pyv2_list_parts_and_uploads_paginators(emulator):
    c = v2_client(emulator, "v4")
    b, p = emulator.bucket, prefix()
    key = p + ODD_KEYS[0]
    up = c.initiate_multipart_upload(ossv2.InitiateMultipartUploadRequest(bucket=b, key=key))
    for n in range(1, 6):
        c.upload_part(ossv2.UploadPartRequest(bucket=b, key=key, upload_id=up.upload_id, part_number=n, body=b"p" * n))
    pages = list(
        c.list_parts_paginator(limit=2).iter_page(ossv2.ListPartsRequest(bucket=b, key=key, upload_id=up.upload_id))
    )
    assert [[pt.part_number for pt in (page.parts or [])] for page in pages] == [[1, 2], [3, 4], [5]]
    assert pages[0].next_part_number_marker == 2 and pages[0].is_truncated and not pages[-1].is_truncated
    assert all(page.key == key for page in pages)
    others = [c.initiate_multipart_upload(ossv2.InitiateMultipartUploadRequest(bucket=b, key=f"{p}u-{i}")).upload_id for i in range(3)]
    pages = list(
        c.list_multipart_uploads_paginator(limit=2).iter_page(ossv2.ListMultipartUploadsRequest(bucket=b, prefix=p))
    )
    listed = [(u.key, u.upload_id) for page in pages for u in (page.uploads or [])]
    assert listed == sorted([(key, up.upload_id)] + [(f"{p}u-{i}", others[i]) for i in range(3)])
    for k, u in listed:
        c.abort_multipart_upload(ossv2.AbortMultipartUploadRequest(bucket=b, key=k, upload_id=u))


def test_oss2_iterators_batch_delete_and_acl(emulator):
    bkt = oss2_bucket(emulator, "v1")
    p = prefix()
    keys = [f"{p}k-{i}" for i in range(5)] + [f"{p}d/x", p + ODD_KEYS[0]]
    for k in keys:
        bkt.put_object(k, b"o")
    assert [o.key for o in oss2.ObjectIterator(bkt, prefix=p, max_keys=2)] == sorted(keys)
    v2 = list(oss2.ObjectIteratorV2(bkt, prefix=p, delimiter="/", max_keys=2))
    assert [o.key for o in v2 if not o.is_prefix()] == [f"{p}k-{i}" for i in range(5)]
    assert [o.key for o in v2 if o.is_prefix()] == [f"{p}d/", f"{p}url-%123-/"]
    bkt.put_object_acl(keys[0], oss2.OBJECT_ACL_PUBLIC_READ)
    assert bkt.get_object_acl(keys[0]).acl == oss2.OBJECT_ACL_PUBLIC_READ
    r = bkt.batch_delete_objects(keys)
    assert sorted(r.deleted_keys) == sorted(keys)
    assert not list(oss2.ObjectIterator(bkt, prefix=p))
    vb = oss2_bucket(emulator, "v4", emulator.versioned_bucket)
    vb.put_object(f"{p}v", b"1")
    vb.delete_object(f"{p}v")
    r = vb.list_object_versions(prefix=p)
    assert len(r.versions) == 1 and len(r.delete_marker) == 1 and r.delete_marker[0].is_latest
