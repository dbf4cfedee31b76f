"""The client conformance matrix, Python side: reads scenarios.json, names the cells, makes the
generated payloads, and checks what a client observed against a scenario's expectations.

The grpcio and grpcurl runners (test_grpcio_matrix.py, test_grpcurl_matrix.py) execute steps
through their client and hand back an `Observation`; `run_scenario` does the rest. The Node runner
(node/conformance.test.js) and the tonic runner (tests/e2e/conformance.rs) implement the same
rules over the same file; tests/conformance/README.md describes them.
"""

import base64
import dataclasses
import functools
import hashlib
import json
import pathlib
import re

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

HERE = pathlib.Path(__file__).resolve().parent
SPEC = json.loads((HERE / "scenarios.json").read_text())
SCENARIOS = SPEC["scenarios"]

# Response metadata that is transport, not something the gateway chose to send: the HTTP/2
# and gRPC framing headers, which libraries expose to differing degrees (the status itself
# is checked through the code, message and details).
TRANSPORT_METADATA = set(SPEC["transport_metadata"])

# google.rpc detail messages the server may send, by full name.
DETAIL_TYPES = {
    f"google.rpc.{name}": getattr(error_details_pb2, name)
    for name in (
        "ErrorInfo",
        "RetryInfo",
        "DebugInfo",
        "QuotaFailure",
        "PreconditionFailure",
        "BadRequest",
        "RequestInfo",
        "ResourceInfo",
        "Help",
        "LocalizedMessage",
    )
}


@dataclasses.dataclass(frozen=True)
class Cell:
    stack: str
    deadline: bool
    gzip: bool
    scenario: dict

    @property
    def id(self) -> str:
        return "-".join([
            self.stack,
            "deadline" if self.deadline else "nodeadline",
            "gzip" if self.gzip else "plain",
            self.scenario["name"],
        ])

    @property
    def deadline_ms(self) -> int | None:
        """The deadline the client sets, or None."""
        if not self.deadline:
            return None
        return self.scenario.get("deadline_ms", SPEC["deadline_ms"])

    def variables(self, bucket: str) -> dict:
        # Keys are unique per cell, so cells never see each other's objects.
        return {"bucket": bucket, "prefix": f"conformance/{self.id}/", "cell": self.id}


def cells(stack: str) -> list:
    """Every cell of `stack`: each scenario with and without a deadline, and with and without
    gzip where the stack can compress requests (scenarios.json `stacks`)."""
    gzip_modes = [False, True] if SPEC["stacks"][stack]["gzip"] else [False]
    return [
        Cell(stack, deadline, gzip, scenario)
        for scenario in SCENARIOS
        for deadline in (False, True)
        for gzip in gzip_modes
    ]


def substitute(value, variables: dict):
    """`value` with every `${name}` in its strings replaced."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


@functools.lru_cache(maxsize=4)
def generated_chunks(size: int, chunk: int, seed: int) -> tuple:
    """The payload of a `generated` step, in messages of `chunk` bytes. A block of `chunk`
    bytes is SHA-256("<seed>:<j>") for j = 0, 1, ... concatenated; message k is that block
    rotated left by (k * 7919) mod chunk, cut to what is left of `size`. Every runner makes
    the same bytes."""
    digests = bytearray()
    j = 0
    while len(digests) < chunk:
        digests += hashlib.sha256(f"{seed}:{j}".encode()).digest()
        j += 1
    block = bytes(digests[:chunk])
    out = []
    for k, offset in enumerate(range(0, size, chunk)):
        r = (k * 7919) % chunk
        out.append((block[r:] + block[:r])[: size - offset])
    return tuple(out)


def write_messages(generated: dict, count: int | None = None) -> list:
    """WriteObject messages (proto3 JSON) of a `generated` step, the first `count` of them
    (all by default; a cut-short stream never finishes)."""
    chunks = generated_chunks(generated["size"], generated["chunk"], generated["seed"])
    messages = []
    for k, piece in enumerate(chunks[:count]):
        message = {"writeOffset": str(k * generated["chunk"]), "data": base64.b64encode(piece).decode()}
        if k == 0:
            message["spec"] = generated["spec"]
        if k + 1 == len(chunks):
            message["finishWrite"] = True
        messages.append(message)
    return messages


def expected_content(content: dict) -> bytes:
    if "base64" in content:
        return base64.b64decode(content["base64"])
    generated = content["generated"]
    return b"".join(generated_chunks(generated["size"], generated["chunk"], generated["seed"]))


@dataclasses.dataclass
class Observation:
    """What a client saw of one call, in the matrix's canonical form."""

    code: str
    message: str = ""
    # Details as canonical dicts (see `canonical_detail`).
    details: list = dataclasses.field(default_factory=list)
    # The unary response, or each streamed response, as proto3 JSON.
    response: dict | None = None
    messages: list = dataclasses.field(default_factory=list)
    # Response metadata without TRANSPORT_METADATA; None when the client cannot show it.
    headers: dict | None = None
    trailers: dict | None = None
    # (code, message) of the google.rpc.Status in grpc-status-details-bin, when sent.
    status_proto: tuple | None = None


def canonical_detail(type_url: str, value: bytes) -> dict:
    """A detail (a google.protobuf.Any) as the matrix compares it: proto3 JSON of the message
    with "@type" = the name after `google.rpc.`; RetryInfo's delay in milliseconds."""
    name = type_url.rsplit("/", 1)[-1]
    cls = DETAIL_TYPES.get(name)
    if cls is None:
        return {"@type": name, "@unknown": base64.b64encode(value).decode()}
    message = cls.FromString(value)
    return canonical_message(name, message)


def canonical_message(name: str, message) -> dict:
    if name == "google.rpc.RetryInfo":
        out = {"retryDelayMs": message.retry_delay.ToMilliseconds()}
    else:
        out = json_format.MessageToDict(message)
    return {"@type": name.removeprefix("google.rpc."), **out}


def decode_status(raw: bytes) -> tuple:
    """(code, message, canonical details) of a serialized google.rpc.Status."""
    status = status_pb2.Status.FromString(raw)
    details = [canonical_detail(d.type_url, d.value) for d in status.details]
    return status.code, status.message, details


def transport_free(pairs) -> dict:
    """Response metadata as a dict, without TRANSPORT_METADATA (names lower-cased)."""
    return {k.lower(): v for k, v in pairs if k.lower() not in TRANSPORT_METADATA}


def code_name(number: int) -> str:
    """The name of a gRPC status code number (NOT_FOUND for 5)."""
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code.name
    return f"code {number}"


def matches(expected, actual) -> bool:
    """`{"regex": R}` matches a string R searches; `{"one_of": [E, ...]}` what any E matches;
    a dict matches a dict with the same keys, each matching; a list matches a list of the
    same length, item by item; anything else must be equal."""
    if isinstance(expected, dict) and set(expected) == {"regex"}:
        return isinstance(actual, str) and re.search(expected["regex"], actual) is not None
    if isinstance(expected, dict) and set(expected) == {"one_of"}:
        return any(matches(e, actual) for e in expected["one_of"])
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and set(expected) == set(actual)
            and all(matches(v, actual[k]) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual))
        )
    return expected == actual


def at_path(message: dict, path: str):
    value = message
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return "<absent>"
        value = value[part]
    return value


def expectation(step: dict, cell: Cell) -> dict:
    if "expect" in step:
        return step["expect"]
    return step["expect_with_deadline" if cell.deadline else "expect_without_deadline"]


def check(expect: dict, seen: Observation, what: str):
    """Asserts that `seen` is what `expect` says (see README.md in this directory)."""
    got = f"{what}: got {seen.code} {seen.message!r} details={seen.details}"
    assert seen.code == expect["code"], f"{got}; expected {expect['code']}"
    if "message" in expect:
        assert matches(expect["message"], seen.message), f"{got}; expected message {expect['message']!r}"
    if seen.code not in ("OK", "CANCELLED") or "details" in expect:
        assert matches(expect.get("details", []), seen.details), (
            f"{got}; expected details {expect.get('details', [])}"
        )
    if seen.status_proto is not None:
        # grpc-status-details-bin must say the same as grpc-status and grpc-message.
        assert seen.status_proto == (seen.code, seen.message), (
            f"{what}: grpc-status-details-bin says {seen.status_proto}, the call {seen.code} {seen.message!r}"
        )
    for path, value in expect.get("response", {}).items():
        actual = at_path(seen.response or {}, path)
        assert matches(value, actual), f"{what}: response {path} = {actual!r}, expected {value!r}"
    for path, value in expect.get("first_message", {}).items():
        first = seen.messages[0] if seen.messages else {}
        actual = at_path(first, path)
        assert matches(value, actual), f"{what}: first message {path} = {actual!r}, expected {value!r}"
    if "content" in expect:
        content = b"".join(base64.b64decode(m.get("data", "")) for m in seen.messages)
        want = expected_content(expect["content"])
        assert hashlib.sha256(content).hexdigest() == hashlib.sha256(want).hexdigest(), (
            f"{what}: read {len(content)} bytes that differ from the {len(want)} written"
        )
    for part in ("headers", "trailers"):
        if part in expect:
            actual = getattr(seen, part)
            assert actual is not None, f"{what}: this client shows no response {part}"
            assert matches(expect[part], actual), f"{what}: response {part} {actual}, expected {expect[part]}"


def run_scenario(client, world, cell: Cell):
    """Runs every step of `cell` through `client` against `world` (conftest.World)."""
    scenario = cell.scenario
    variables = cell.variables(world.bucket)
    for index, raw in enumerate(scenario["steps"]):
        step = substitute(raw, variables)
        what = f"{cell.id} step {index + 1}"
        if "open_uploads" in step:
            world.await_open_uploads(step["open_uploads"]["key"], step["open_uploads"]["count"])
            continue
        gateway = world.gateways[step.get("gateway", scenario.get("gateway", "main"))]
        token_name = step.get("token", "writer")
        metadata = [("authorization", f"Bearer {SPEC['tokens'][token_name]}")] if token_name else []
        for key, value in step.get("metadata", {}).items():
            metadata.append((key, base64.b64decode(value) if key.endswith("-bin") else value))
        if "generated" in step:
            messages = write_messages(step["generated"], step.get("cancel_after_chunks"))
        else:
            messages = step.get("messages")
        call = Call(
            address=gateway,
            rpc=step["rpc"],
            request=step.get("request"),
            messages=messages,
            metadata=metadata,
            deadline_ms=cell.deadline_ms,
            gzip=cell.gzip,
            cancel_when=None,
        )
        if "cancel_after_chunks" in step:
            key = step["generated"]["spec"]["key"]
            # Cancel once the gateway has begun the multipart upload, so the abort is tested.
            call.cancel_when = lambda key=key: world.await_open_uploads(key, 1, at_least=True)
        seen = client.call(call)
        check(expectation(step, cell), seen, what)


@dataclasses.dataclass
class Call:
    """One call of a step, ready for a client."""

    address: str
    rpc: str
    # Proto3 JSON: the request of a unary or server-streaming call, or the messages of a
    # client stream.
    request: dict | None
    messages: list | None
    # (name, value) pairs, values of `-bin` keys as bytes.
    metadata: list
    deadline_ms: int | None
    gzip: bool
    # For a stream cut short: blocks until it is time to cancel.
    cancel_when: object
