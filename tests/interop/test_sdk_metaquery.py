"""The official Python SDKs' MetaQuery calls against the ossgate emulator, signature checking on.

alibabacloud-oss-v2: open_meta_query, get_meta_query_status, do_meta_query (tags, user
metadata, sort, aggregations, paging by NextToken while objects change), close_meta_query and
the errors. oss2: open_bucket_meta_query, get_bucket_meta_query_status,
do_bucket_meta_query paging, close_bucket_meta_query. Every test scopes its queries to its own
prefix in the shared bucket, opens the index itself and closes it at the end.
"""

import json
import time
import uuid
from urllib.parse import quote

import alibabacloud_oss_v2 as ossv2
import oss2
import pytest


def tag_header(tags):
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags.items())


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


def prefix_query(prefix, *conditions):
    """`Filename prefix <prefix>` AND every condition, as MetaQuery JSON."""
    subs = [{"Field": "Filename", "Value": prefix, "Operation": "prefix"}, *conditions]
    return json.dumps({"Operation": "and", "SubQueries": subs})


def tag_eq(key, value):
    return {"Field": f"OSSTagging.{key}", "Value": value, "Operation": "eq"}


@pytest.fixture(params=["v4", "v1"])
def pyv2(request, emulator):
    client = pyv2_client(emulator, request.param)
    # A clean index for each test (another test may have left one open after a failure).
    client.close_meta_query(ossv2.models.CloseMetaQueryRequest(bucket=emulator.bucket))
    yield client
    client.close_meta_query(ossv2.models.CloseMetaQueryRequest(bucket=emulator.bucket))


def pyv2_pages(client, bucket, query, **kwargs):
    """Every page of a DoMetaQuery, following NextToken."""
    pages, token = [], None
    while True:
        r = client.do_meta_query(
            ossv2.models.DoMetaQueryRequest(
                bucket=bucket,
                mode="basic",
                meta_query=ossv2.models.MetaQuery(query=query, next_token=token, **kwargs),
            )
        )
        assert r.status_code == 200
        pages.append(r)
        token = r.next_token
        if not token:
            return pages


def files_of(pages):
    return [f for p in pages for f in ((p.files.file or []) if p.files else [])]


def test_pyv2_status_query_tags_and_paging(pyv2, emulator):
    b = emulator.bucket
    prefix = f"mq/{uuid.uuid4().hex[:8]}/"
    # No index yet: OSS's error.
    with pytest.raises(Exception) as info:
        pyv2.get_meta_query_status(ossv2.models.GetMetaQueryStatusRequest(bucket=b))
    err = service_error(info.value)
    assert (err.status_code, err.code) == (404, "MetaQueryNotExist")

    r = pyv2.open_meta_query(ossv2.models.OpenMetaQueryRequest(bucket=b, mode="basic"))
    assert r.status_code == 200
    st = pyv2.get_meta_query_status(ossv2.models.GetMetaQueryStatusRequest(bucket=b))
    assert st.meta_query_status.state in ("Ready", "Running")
    assert st.meta_query_status.meta_query_mode == "basic"
    assert st.meta_query_status.create_time

    # Objects written after the index opened are found at once (the emulator's index
    # never lags).
    for i in range(7):
        tags = {"team": "blue" if i % 2 == 0 else "red", "n": str(i)}
        pyv2.put_object(
            ossv2.models.PutObjectRequest(
                bucket=b,
                key=f"{prefix}obj-{i}",
                body=b"x" * (10 * i + 1),
                tagging=tag_header(tags),
                metadata={"owner": "alice"},
            )
        )
    query = prefix_query(prefix, tag_eq("team", "blue"))
    pages = pyv2_pages(
        pyv2,
        b,
        query,
        max_results=3,
        sort="Size",
        order="desc",
        aggregations=ossv2.models.MetaQueryAggregations(
            aggregations=[ossv2.models.MetaQueryAggregation(field="Size", operation="sum")]
        ),
    )
    files = files_of(pages)
    assert [f.filename for f in files] == [f"{prefix}obj-{i}" for i in (6, 4, 2, 0)]
    assert len(pages) == 2
    f = files[0]
    assert f.size == 61
    assert f.oss_tagging_count == 2
    assert {t.key: t.value for t in f.oss_tagging.taggings} == {"n": "6", "team": "blue"}
    assert {m.key: m.value for m in f.oss_user_meta.user_metas} == {"x-oss-meta-owner": "alice"}
    assert f.oss_object_type == "Normal"
    assert f.oss_storage_class == "Standard"
    assert f.etag.startswith('"')
    agg = pages[0].aggregations.aggregations[0]
    assert (agg.field, agg.operation, agg.value) == ("Size", "sum", 61 + 41 + 21 + 1)

    # Retagging and deleting are reflected in the next query.
    pyv2.put_object_tagging(
        ossv2.models.PutObjectTaggingRequest(
            bucket=b,
            key=f"{prefix}obj-1",
            tagging=ossv2.models.Tagging(
                tag_set=ossv2.models.TagSet(tags=[ossv2.models.Tag(key="team", value="blue")])
            ),
        )
    )
    pyv2.delete_object(ossv2.models.DeleteObjectRequest(bucket=b, key=f"{prefix}obj-6"))
    files = files_of(pyv2_pages(pyv2, b, query, max_results=100))
    assert [f.filename for f in files] == [f"{prefix}obj-{i}" for i in (0, 1, 2, 4)]

    # An invalid query is OSS's InvalidArgument.
    with pytest.raises(Exception) as info:
        pyv2_pages(pyv2, b, '{"Field": "Size", "Operation": "between", "Value": "1"}')
    err = service_error(info.value)
    assert (err.status_code, err.code) == (400, "InvalidArgument")

    r = pyv2.close_meta_query(ossv2.models.CloseMetaQueryRequest(bucket=b))
    assert r.status_code == 200
    with pytest.raises(Exception) as info:
        pyv2_pages(pyv2, b, query)
    assert service_error(info.value).code == "MetaQueryNotExist"


def test_pyv2_paging_is_stable_while_objects_change(pyv2, emulator):
    b = emulator.bucket
    prefix = f"mq/{uuid.uuid4().hex[:8]}/"
    pyv2.open_meta_query(ossv2.models.OpenMetaQueryRequest(bucket=b))
    for i in range(10):
        pyv2.put_object(
            ossv2.models.PutObjectRequest(
                bucket=b, key=f"{prefix}k{i:02}", body=b"-", tagging="team=blue"
            )
        )
    query = prefix_query(prefix, tag_eq("team", "blue"))
    seen, token, pages = [], None, 0
    while True:
        r = pyv2.do_meta_query(
            ossv2.models.DoMetaQueryRequest(
                bucket=b,
                meta_query=ossv2.models.MetaQuery(query=query, max_results=4, next_token=token),
            )
        )
        seen += [f.filename for f in r.files.file or []]
        pages += 1
        if pages == 1:
            # Before the token's place (already returned) and far after it: the pages still
            # to come hold the new object once and lose the deleted one.
            pyv2.put_object(
                ossv2.models.PutObjectRequest(
                    bucket=b, key=f"{prefix}k00a", body=b"-", tagging="team=blue"
                )
            )
            pyv2.put_object(
                ossv2.models.PutObjectRequest(
                    bucket=b, key=f"{prefix}k99", body=b"-", tagging="team=blue"
                )
            )
            pyv2.delete_object(ossv2.models.DeleteObjectRequest(bucket=b, key=f"{prefix}k09"))
        token = r.next_token
        if not token:
            break
    expected = [f"{prefix}k{i:02}" for i in range(9)] + [f"{prefix}k99"]
    assert seen == expected


def oss2_bucket(emu, version):
    if version == "v4":
        auth = oss2.AuthV4(emu.access_key_id, emu.access_key_secret)
        return oss2.Bucket(auth, emu.endpoint, emu.bucket, region=emu.region)
    return oss2.Bucket(oss2.Auth(emu.access_key_id, emu.access_key_secret), emu.endpoint, emu.bucket)


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_meta_query(emulator, version):
    bucket = oss2_bucket(emulator, version)
    bucket.close_bucket_meta_query()
    prefix = f"mq2/{uuid.uuid4().hex[:8]}/"
    try:
        assert bucket.open_bucket_meta_query().status == 200
        with pytest.raises(oss2.exceptions.ServerError) as info:
            bucket.open_bucket_meta_query()
        assert info.value.code == "MetaQueryAlreadyExist"
        status = bucket.get_bucket_meta_query_status()
        assert status.state == "Ready"
        assert status.phase == "FullScanning"
        time.sleep(0.4)
        status = bucket.get_bucket_meta_query_status()
        assert (status.state, status.phase) == ("Running", "IncrementalScanning")

        for i in range(5):
            bucket.put_object(
                f"{prefix}f{i}",
                b"y" * i,
                headers={"x-oss-tagging": f"team={'blue' if i < 3 else 'red'}", "x-oss-meta-n": str(i)},
            )
        query = prefix_query(
            prefix, {"Field": "OSSUserMeta.x-oss-meta-n", "Value": "1", "Operation": "gte"}
        )
        names, token = [], None
        while True:
            r = bucket.do_bucket_meta_query(
                oss2.models.MetaQuery(
                    next_token=token,
                    max_results=2,
                    query=query,
                    sort="Filename",
                    order="asc",
                    aggregations=[oss2.models.AggregationsRequest(field="OSSTagging.team", operation="group")],
                )
            )
            names += [f.file_name for f in r.files]
            groups = {g.value: g.count for g in r.aggregations[0].groups}
            assert groups == {"blue": 2, "red": 2}
            token = r.next_token
            if not token:
                break
        assert names == [f"{prefix}f{i}" for i in range(1, 5)]
        f = r.files[-1]
        assert f.size == 4
        assert [(t.key, t.value) for t in f.oss_tagging] == [("team", "red")]
        assert [(m.key, m.value) for m in f.oss_user_meta] == [("x-oss-meta-n", "4")]
        assert f.oss_tagging_count == 1
    finally:
        assert bucket.close_bucket_meta_query().status == 200
    with pytest.raises(oss2.exceptions.ServerError) as info:
        bucket.get_bucket_meta_query_status()
    assert (info.value.status, info.value.code) == (404, "MetaQueryNotExist")
