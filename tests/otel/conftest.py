"""Real OTLP receivers for the export tests, on 127.0.0.1 port 0, keeping every export
request they are sent: the collector's gRPC TraceService and MetricsService (stubs from the
`opentelemetry-proto` package), and OTLP/HTTP with protobuf bodies (POST /v1/traces,
/v1/metrics)."""

import http.server
import pathlib
import sys
import threading
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

# Starting the binary the way the deploy tests do.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "deploy"))


class Receiver:
    """Collects OTLP trace and metric export requests (ExportTraceServiceRequest,
    ExportMetricsServiceRequest)."""

    # OTEL_EXPORTER_OTLP_PROTOCOL for this receiver.
    protocol = ""

    def __init__(self):
        self._lock = threading.Lock()
        self._requests = {"traces": [], "metrics": []}
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _add(self, kind: str, request):
        with self._lock:
            self._requests[kind].append(request)

    def _received(self, kind: str, resources: str, scopes: str, items: str) -> list:
        """(resource attributes as a dict, item) for every item of every `kind` request:
        request.<resources>[].<scopes>[].<items>[] (the two OTLP export requests nest alike)."""
        with self._lock:
            requests = list(self._requests[kind])
        out = []
        for request in requests:
            for resource_items in getattr(request, resources):
                resource = attributes(resource_items.resource.attributes)
                for scope_items in getattr(resource_items, scopes):
                    out.extend((resource, item) for item in getattr(scope_items, items))
        return out

    def spans(self) -> list:
        """(resource attributes, span) for every span received."""
        return self._received("traces", "resource_spans", "scope_spans", "spans")

    def metrics(self) -> list:
        """(resource attributes, metric) for every metric received."""
        return self._received("metrics", "resource_metrics", "scope_metrics", "metrics")


class GrpcReceiver(Receiver):
    protocol = "grpc"

    def __init__(self):
        super().__init__()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(self), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(self), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        assert self.port, "cannot bind the OTLP receiver"
        self.server.start()

    def stop(self):
        self.server.stop(grace=None)


class HttpReceiver(Receiver):
    protocol = "http/protobuf"

    def __init__(self):
        super().__init__()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                kinds = {
                    "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest),
                    "/v1/metrics": ("metrics", metrics_service_pb2.ExportMetricsServiceRequest),
                }
                if self.path not in kinds or self.headers.get("content-type") != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                kind, message = kinds[self.path]
                request = message()
                request.ParseFromString(body)
                receiver._add(kind, request)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver):
        self.receiver = receiver

    def Export(self, request, context):
        self.receiver._add("traces", request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver):
        self.receiver = receiver

    def Export(self, request, context):
        self.receiver._add("metrics", request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def attributes(key_values) -> dict:
    """OTLP KeyValue list -> {key: python value}."""
    out = {}
    for kv in key_values:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


@pytest.fixture(params=[GrpcReceiver, HttpReceiver], ids=["grpc", "http-protobuf"])
def receiver(request):
    r = request.param()
    yield r
    r.stop()
