"""OTLP export end to end: the real `ossgate serve` binary (on its embedded emulator) exports
to a real OTLP/gRPC receiver. Calls made with grpcurl carry a W3C `traceparent`; the test
checks the RPC span continues the caller's trace, the OSS request spans (including the
parallel UploadPart spans of a multipart write) are its children with their HTTP status and
OSS request id, and the metrics arrive. The server is stopped before the assertions, so
they also show that shutdown flushes what is pending.
"""

import base64
import json
import os
import secrets
import subprocess

from conftest import attributes
import deploy_helpers as h

SERVICE = "ossgate.v1.ObjectService"
BUCKET = "ossgate-dev"
PART = 128 * 1024
SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
STATUS_CODE_ERROR = 2


def grpcurl(address: str, method: str, messages: list, traceparent: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["grpcurl", "-plaintext", "-H", f"traceparent: {traceparent}", "-d", "@", address,
         f"{SERVICE}/{method}"],
        input="\n".join(json.dumps(m) for m in messages),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def new_parent() -> tuple:
    """A caller's (trace id, span id, traceparent header)."""
    trace_id = secrets.token_hex(16)
    span_id = secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def start_gateway(receiver, tmp_path) -> h.Process:
    env = {k: v for k, v in h.base_env().items() if not k.startswith("OTEL_")}
    env.update({
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": receiver.protocol,
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=otel-test",
        "OSSGATE_LISTEN": "127.0.0.1:0",
        "OSSGATE_UPLOAD__PART_SIZE_BYTES": str(PART),
        "OSSGATE_LOG__FORMAT": "json",
    })
    return h.Process([h.binary(), "serve"], env, tmp_path / "stderr.log", "ossgate serving gRPC on ")


def one_span(spans: list, name: str, trace_id: str) -> tuple:
    found = [(r, s) for r, s in spans if s.name == name and s.trace_id.hex() == trace_id]
    assert len(found) == 1, f"expected one {name} span in trace {trace_id}, got {len(found)}"
    return found[0]


def children(spans: list, parent) -> list:
    return [s for _, s in spans
            if s.trace_id == parent.trace_id and s.parent_span_id == parent.span_id]


def test_rpc_and_oss_spans_continue_the_callers_trace_and_metrics_arrive(receiver, tmp_path):
    gateway = start_gateway(receiver, tmp_path)
    try:
        address = gateway.address
        # A multipart WriteObject: three whole parts and a short one.
        data = os.urandom(3 * PART + 1000)
        chunk = 64 * 1024
        messages = []
        for offset in range(0, len(data), chunk):
            m = {"writeOffset": str(offset),
                 "data": base64.b64encode(data[offset:offset + chunk]).decode()}
            if offset == 0:
                m["spec"] = {"bucket": BUCKET, "key": "otel/multipart.bin"}
            messages.append(m)
        messages[-1]["finishWrite"] = True
        write_trace, write_parent, header = new_parent()
        result = grpcurl(address, "WriteObject", messages, header)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["size"] == str(len(data))

        tag_trace, tag_parent, header = new_parent()
        result = grpcurl(address, "PutObjectTagging", [{
            "bucket": BUCKET, "key": "otel/multipart.bin",
            "tagging": {"tags": {"team": "storage"}},
        }], header)
        assert result.returncode == 0, result.stderr

        read_trace, read_parent, header = new_parent()
        result = grpcurl(address, "ReadObject",
                         [{"bucket": BUCKET, "key": "otel/multipart.bin"}], header)
        assert result.returncode == 0, result.stderr
        decoder = json.JSONDecoder()
        text, pos, read_back = result.stdout, 0, b""
        while text[pos:].strip():
            message, end = decoder.raw_decode(text[pos:].lstrip())
            pos = len(text) - len(text[pos:].lstrip()) + end
            read_back += base64.b64decode(message.get("data", ""))
        assert read_back == data

        missing_trace, missing_parent, header = new_parent()
        result = grpcurl(address, "GetObjectTagging",
                         [{"bucket": BUCKET, "key": "otel/missing"}], header)
        assert result.returncode != 0 and "NotFound" in result.stderr, result.stderr
    finally:
        # SIGTERM: the exporters flush on the way out.
        code = gateway.stop()
    assert code == 0, gateway.stderr_path.read_text()

    spans = receiver.spans()
    assert spans, "no spans were exported"

    # PutObjectTagging: a server span whose parent is the caller's span, in the caller's trace.
    resource, rpc = one_span(spans, f"{SERVICE}/PutObjectTagging", tag_trace)
    assert resource["service.name"] == "ossgate"
    assert resource["deployment.environment.name"] == "otel-test"
    assert rpc.kind == SPAN_KIND_SERVER
    assert rpc.parent_span_id.hex() == tag_parent
    attrs = attributes(rpc.attributes)
    assert attrs["rpc.system"] == "grpc"
    assert attrs["rpc.service"] == SERVICE
    assert attrs["rpc.method"] == "PutObjectTagging"
    assert attrs["rpc.grpc.status_code"] == 0
    assert attrs["oss.bucket"] == BUCKET
    assert attrs["oss.key"] == "otel/multipart.bin"
    # (the audit trail may read the tags before replacing them)
    oss = [s for s in children(spans, rpc) if s.name == "PutObjectTagging"]
    assert len(oss) == 1, [s.name for s in children(spans, rpc)]
    oss_attrs = attributes(oss[0].attributes)
    assert oss[0].kind == SPAN_KIND_CLIENT
    assert oss_attrs["http.request.method"] == "PUT"
    assert oss_attrs["http.response.status_code"] == 200
    assert oss_attrs["oss.request_id"], oss_attrs
    assert oss_attrs["oss.bucket"] == BUCKET
    assert oss_attrs["oss.key"] == "otel/multipart.bin"
    assert oss_attrs["http.request.body.size"] > 0
    # The child lies within its parent.
    assert rpc.start_time_unix_nano <= oss[0].start_time_unix_nano
    assert oss[0].end_time_unix_nano <= rpc.end_time_unix_nano

    # JSON logs: the call's log line carries its trace and span ids.
    logs = [json.loads(line) for line in gateway.stderr_path.read_text().splitlines()
            if line.startswith("{")]
    finished = [log for log in logs if log.get("trace_id") == tag_trace
                and log["fields"].get("message") == "call finished"]
    assert len(finished) == 1, logs
    assert finished[0]["span_id"] == rpc.span_id.hex()
    assert finished[0]["span"]["method"] == "PutObjectTagging"

    # WriteObject: Initiate, every UploadPart (sent from parallel tasks) and Complete are
    # children of the call span.
    _, rpc = one_span(spans, f"{SERVICE}/WriteObject", write_trace)
    assert rpc.parent_span_id.hex() == write_parent
    attrs = attributes(rpc.attributes)
    assert attrs["rpc.grpc.status_code"] == 0
    assert attrs["rpc.request.body.size"] == len(data)
    oss = children(spans, rpc)
    names = sorted(s.name for s in oss)
    assert names == sorted(["InitiateMultipartUpload", "CompleteMultipartUpload"]
                           + ["UploadPart"] * 4), names
    parts = [attributes(s.attributes) for s in oss if s.name == "UploadPart"]
    assert sorted(p["http.request.body.size"] for p in parts) == [1000, PART, PART, PART]
    for s in oss:
        a = attributes(s.attributes)
        assert a["http.response.status_code"] == 200, (s.name, a)
        assert a["oss.request_id"], (s.name, a)
    request_ids = [attributes(s.attributes)["oss.request_id"] for s in oss]
    assert len(set(request_ids)) == len(request_ids)

    # ReadObject: the span covers the whole response stream and counts the bytes sent.
    _, rpc = one_span(spans, f"{SERVICE}/ReadObject", read_trace)
    assert rpc.parent_span_id.hex() == read_parent
    attrs = attributes(rpc.attributes)
    assert attrs["rpc.grpc.status_code"] == 0
    assert attrs["rpc.response.body.size"] == len(data)
    (get,) = children(spans, rpc)
    assert get.name == "GetObject"
    assert attributes(get.attributes)["http.response.body.size"] == len(data)
    assert get.end_time_unix_nano <= rpc.end_time_unix_nano

    # A failed call: NOT_FOUND is the caller's error (span status unset); the OSS span
    # records the 404, its OSS error code and request id, and is an error.
    _, rpc = one_span(spans, f"{SERVICE}/GetObjectTagging", missing_trace)
    assert rpc.parent_span_id.hex() == missing_parent
    assert attributes(rpc.attributes)["rpc.grpc.status_code"] == 5
    assert rpc.status.code != STATUS_CODE_ERROR
    (oss,) = children(spans, rpc)
    a = attributes(oss.attributes)
    assert a["http.response.status_code"] == 404
    assert a["error.type"] == "NoSuchKey"
    assert a["oss.request_id"]
    assert oss.status.code == STATUS_CODE_ERROR

    # Metrics: the same instruments as /metrics, with their labels as attributes.
    metrics = {}
    for resource, metric in receiver.metrics():
        assert resource["service.name"] == "ossgate"
        metrics.setdefault(metric.name, []).append(metric)
    for name in ["ossgate.rpc.duration", "ossgate.rpc.bytes", "ossgate.oss.request.duration",
                 "ossgate.oss.errors", "ossgate.uploads.in_flight", "ossgate.upload.memory"]:
        assert name in metrics, f"{name} not exported: {sorted(metrics)}"
    rpc_points = [attributes(p.attributes) | {"count": p.count}
                  for m in metrics["ossgate.rpc.duration"] for p in m.histogram.data_points]
    assert {"method": "PutObjectTagging", "code": "Ok", "count": 1} in rpc_points, rpc_points
    assert {"method": "GetObjectTagging", "code": "NotFound", "count": 1} in rpc_points
    assert metrics["ossgate.rpc.duration"][-1].unit == "s"
    bytes_in = [p.as_int for m in metrics["ossgate.rpc.bytes"] for p in m.sum.data_points
                if attributes(p.attributes) == {"method": "WriteObject", "direction": "in"}]
    assert bytes_in and max(bytes_in) == len(data)
    errors = [attributes(p.attributes) for m in metrics["ossgate.oss.errors"]
              for p in m.sum.data_points]
    assert {"operation": "GET ?tagging", "code": "NoSuchKey"} in errors
