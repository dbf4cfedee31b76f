"""The world the grpcio, grpcurl and Node runners call: one `ossgate emulator` and the three
gateways scenarios.json names (`ossgate serve`, built binary, all on 127.0.0.1 port 0, with
caller auth), stopped at the end of the session.

* main: the gateway in front of the emulator.
* slow: in front of a loopback TCP proxy that holds back every answer of the emulator by
  `oss_answer_delay_ms` (a slow OSS), so calls outlive their deadline.
* shed: one streaming-call slot, held for the whole session by a WriteObject that this
  fixture opens and never finishes, so every other streaming call is refused.

It also generates the Python gRPC stubs from proto/ into a temporary directory, and serves
the number of open multipart uploads of a key over loopback HTTP for the Node runner.
"""

import hashlib
import http.server
import json
import pathlib
import socket
import sys
import threading
import time
import urllib.parse

import grpc
import oss2
import pytest

HERE = pathlib.Path(__file__).resolve().parent
# Starting the binary the way the deploy tests do.
sys.path.insert(0, str(HERE.parent / "deploy"))

import deploy_helpers as h  # noqa: E402
import matrix  # noqa: E402

ACCESS_KEY_ID = "LTAIconformance"
ACCESS_KEY_SECRET = "conformance-secret"
REGION = "cn-hangzhou"
BUCKET = "conformance"
EMULATOR_PREFIX = "ossgate emulator listening on "
SERVING_PREFIX = "ossgate serving gRPC on "
# How long the world waits for an open upload to appear or go away.
UPLOADS_WAIT_SECONDS = 20


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    """The generated `ossgate.v1` modules (ossgate_pb2, ossgate_pb2_grpc)."""
    import grpc_tools
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("stubs")
    proto_dir = HERE.parents[1] / "proto"
    code = protoc.main([
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        # google/protobuf/*.proto, shipped with grpcio-tools.
        f"-I{pathlib.Path(grpc_tools.__file__).parent / '_proto'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        str(proto_dir / "ossgate" / "v1" / "ossgate.proto"),
    ])
    assert code == 0, "protoc failed on proto/ossgate/v1/ossgate.proto"
    sys.path.insert(0, str(out))
    from ossgate.v1 import ossgate_pb2, ossgate_pb2_grpc

    return ossgate_pb2, ossgate_pb2_grpc


def auth_config() -> str:
    """The `[auth]` TOML of every gateway: scenarios.json's tokens (as SHA-256) and policy."""
    lines = []
    for principal, token in matrix.SPEC["tokens"].items():
        if principal == "bad":  # the token no gateway knows
            continue
        lines += [
            "[[auth.tokens]]",
            f"principal = {json.dumps(principal)}",
            f'sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"',
        ]
    for rule in matrix.SPEC["policy"]:
        lines.append("[[auth.policy]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in rule.items()]
    return "\n".join(lines) + "\n"


class DelayProxy:
    """A loopback TCP proxy to `upstream` (host, port) that forwards requests at once and
    every byte of the answers `delay` seconds after it arrived."""

    def __init__(self, upstream: tuple, delay: float):
        self.upstream = upstream
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.delay), daemon=True).start()

    def _pipe(self, source, sink, delay):
        try:
            while data := source.recv(65536):
                arrived = time.monotonic()
                if self.closed.wait(max(0.0, arrived + delay - time.monotonic())):
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed.set()
        self.listener.close()


class World:
    def __init__(self):
        self.bucket = BUCKET
        self.processes = []
        self.closers = []
        self.gateways = {}

    def start(self, tmp: pathlib.Path, stubs):
        emulator = self._start(
            [h.binary(), "emulator", "--listen", "127.0.0.1:0", "--in-memory",
             "--access-key-id", ACCESS_KEY_ID, "--access-key-secret", ACCESS_KEY_SECRET,
             "--region", REGION, "--bucket", BUCKET],
            {}, tmp / "emulator.stderr", EMULATOR_PREFIX,
        )
        endpoint = emulator.address
        self.oss = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), endpoint, BUCKET)
        config = tmp / "auth.toml"
        config.write_text(auth_config())
        for name, gateway in matrix.SPEC["gateways"].items():
            oss_endpoint = endpoint
            if "oss_answer_delay_ms" in gateway:
                parsed = urllib.parse.urlsplit(endpoint)
                proxy = DelayProxy((parsed.hostname, parsed.port), gateway["oss_answer_delay_ms"] / 1000)
                self.closers.append(proxy.close)
                oss_endpoint = f"http://{proxy.address[0]}:{proxy.address[1]}"
            env = {
                "OSSGATE_LISTEN": "127.0.0.1:0",
                "OSSGATE_OSS__ENDPOINT": oss_endpoint,
                "OSSGATE_OSS__REGION": REGION,
                "OSSGATE_OSS__ACCESS_KEY_ID": ACCESS_KEY_ID,
                "OSSGATE_OSS__ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
                "OSSGATE_SERVER__SHUTDOWN_GRACE_MS": "1000",
                **gateway["settings"],
            }
            process = self._start([h.binary(), "serve", "--config", str(config)], env,
                                  tmp / f"{name}.stderr", SERVING_PREFIX)
            self.gateways[name] = process.address
            if gateway.get("hold_one_streaming_call"):
                self._hold_streaming_slot(process.address, stubs)
        self.inspector = self._serve_open_uploads()

    def _start(self, argv, env, stderr, prefix):
        process = h.Process(argv, {**h.base_env(), **env}, stderr, prefix)
        self.processes.append(process)
        return process

    def _hold_streaming_slot(self, address: str, stubs):
        """Opens a WriteObject on the gateway at `address` that stays open (its first message
        takes the streaming slot) until the session ends, and waits until the slot is taken:
        a ReadObject is refused. A hold that was itself refused (a probe had the slot at that
        moment) is opened again."""
        pb, rpc = stubs
        channel = grpc.insecure_channel(address)
        stub = rpc.ObjectServiceStub(channel)
        release = threading.Event()
        metadata = [("authorization", f"Bearer {matrix.SPEC['tokens']['writer']}")]

        def messages():
            yield pb.WriteObjectRequest(spec=pb.WriteObjectSpec(bucket=BUCKET, key="held/slot.bin"), data=b"x")
            release.wait()

        holds = []

        def close():
            for held in holds:
                held.cancel()
            release.set()
            channel.close()

        self.closers.append(close)
        probe = pb.ReadObjectRequest(bucket=BUCKET, key="held/probe")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if not holds or holds[-1].done():
                holds.append(stub.WriteObject.future(messages(), metadata=metadata))
            try:
                for _ in stub.ReadObject(probe, metadata=metadata):
                    pass
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.UNAVAILABLE and not holds[-1].done():
                    return
            time.sleep(0.05)
        raise AssertionError(f"the held WriteObject did not take the streaming slot of {address}")

    def open_uploads(self, key: str) -> int:
        """Multipart uploads of `key` that are neither completed nor aborted."""
        result = self.oss.list_multipart_uploads(prefix=key)
        return sum(1 for upload in result.upload_list if upload.key == key)

    def await_open_uploads(self, key: str, count: int, at_least: bool = False):
        """Waits (at most UPLOADS_WAIT_SECONDS) until `key` has `count` open uploads (or at
        least `count`); aborts run in the background."""
        deadline = time.monotonic() + UPLOADS_WAIT_SECONDS
        while True:
            n = self.open_uploads(key)
            if n == count or (at_least and n >= count):
                return
            assert time.monotonic() < deadline, (
                f"{key} has {n} open multipart uploads after {UPLOADS_WAIT_SECONDS} s, expected {count}"
            )
            time.sleep(0.05)

    def _serve_open_uploads(self) -> str:
        """GET /open-uploads?key=K -> {"count": n}, on loopback, for the Node runner."""
        world = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                key = urllib.parse.parse_qs(url.query).get("key", [""])[0]
                if url.path != "/open-uploads" or not key:
                    self.send_error(404)
                    return
                body = json.dumps({"count": world.open_uploads(key)}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()

        def close():
            server.shutdown()
            server.server_close()

        self.closers.append(close)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def close(self):
        for close in reversed(self.closers):
            close()
        for process in reversed(self.processes):
            process.stop(timeout=10)


@pytest.fixture(scope="session")
def world(tmp_path_factory, stubs):
    world = World()
    try:
        world.start(tmp_path_factory.mktemp("world"), stubs)
        yield world
    finally:
        world.close()
