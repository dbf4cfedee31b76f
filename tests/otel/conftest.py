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
        self._traces = []
        self._metrics = []
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _add(self, kind: str, request):
        with self._lock:
            (self._traces if kind == "traces" else self._metrics).append(request)

    def spans(self) -> list:
        """(resource attributes as a dict, span) for every span received."""
        with self._lock:
            requests = list(self._traces)
        out = []
        for request in requests:
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    out.extend((resource, span) for span in scope_spans.spans)
        return out

    def metrics(self) -> list:
        """(resource attributes, metric) for every metric received."""
        with self._lock:
            requests = list(self._metrics)
        out = []
        for request in requests:
            for resource_metrics in request.resource_metrics:
                resource = attributes(resource_metrics.resource.attributes)
                for scope_metrics in resource_metrics.scope_metrics:
                    out.extend((resource, m) for m in scope_metrics.metrics)
        return out


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
