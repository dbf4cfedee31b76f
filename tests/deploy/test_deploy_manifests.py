"""deploy/k8s: every overlay renders, validates offline (kubernetes-validate --strict), and
has the shape the issue asks for (probes, security, drain timing, services, RRSA...)."""

import subprocess
import tomllib

import pytest

import deploy_helpers as h

# 1.30: the oldest version with the native preStop `sleep` action on by default;
# 1.37: the newest version kubernetes-validate ships schemas for.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
PRESTOP_DRAIN_MARGIN_SECONDS = 5


def validate(path, version) -> tuple[int, str]:
    result = subprocess.run(
        ["kubernetes-validate", "--strict", "--kubernetes-version", version, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_overlay_validates_strictly_offline(rendered, docs, tmp_path, overlay, version):
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(rendered[overlay])
    code, output = validate(path, version)
    assert code == 0, output
    # A kind without a schema is only a WARN for kubernetes-validate: require a pass for each.
    assert "WARN" not in output and "ERROR" not in output, output
    assert output.count(" passed for resource ") == len(docs[overlay]), output


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_static_keys_example_secret_validates(version):
    code, output = validate(h.STATIC_KEYS_EXAMPLE, version)
    assert code == 0 and "passed for resource secret/ossgate-static-keys" in output, output


def test_validation_does_fail_on_an_unknown_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
        "spec:\n  ports: [{port: 50051, targetPort: grpc, apProtocol: grpc}]\n"
    )
    code, output = validate(path, KUBERNETES_VERSIONS[0])
    assert code != 0 and "apProtocol" in output, output


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kinds(docs, overlay):
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs[overlay])
    expected = {
        ("Namespace", {"dev": "ossgate-dev", "production": "ossgate"}[overlay]),
        ("ServiceAccount", "ossgate"),
        ("Deployment", "ossgate"),
        ("Service", "ossgate"),
        ("Service", "ossgate-headless"),
        ("PodDisruptionBudget", "ossgate"),
        ("NetworkPolicy", "ossgate"),
    }
    if overlay == "production":
        expected.add(("HorizontalPodAutoscaler", "ossgate"))
    configmaps = [name for kind, name in kinds if kind == "ConfigMap"]
    assert len(configmaps) == 1 and configmaps[0].startswith("ossgate-config-")  # hashed name
    assert {k for k in kinds if k[0] != "ConfigMap"} == expected
    # The example Secret is never applied by the overlay.
    assert not h.find(docs[overlay], "Secret")


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_pod_security(docs, overlay):
    pod = h.one(docs[overlay], "Deployment")["spec"]["template"]["spec"]
    ctx = pod["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] != 0 and ctx["runAsGroup"] != 0
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    c = h.container(docs[overlay])["securityContext"]
    assert c["allowPrivilegeEscalation"] is False
    assert c["readOnlyRootFilesystem"] is True
    assert c["capabilities"] == {"drop": ["ALL"]}
    # OSSGATE_* env vars are settings; Kubernetes service links would add unknown ones.
    assert pod["enableServiceLinks"] is False
    assert pod["automountServiceAccountToken"] is False
    namespace = h.one(docs[overlay], "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_writable_paths_are_volumes(docs, overlay):
    """The root filesystem is read-only: /tmp and the emulator's data_dir must be emptyDirs."""
    pod = h.one(docs[overlay], "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in h.container(docs[overlay])["volumeMounts"]}
    assert "emptyDir" in mounts["/tmp"]
    settings = tomllib.loads(h.one(docs[overlay], "ConfigMap")["data"]["ossgate.toml"])
    data_dir = settings.get("emulator", {}).get("data_dir", "")
    if overlay == "dev":
        assert data_dir and "emptyDir" in mounts[data_dir]
    assert mounts["/etc/ossgate"]["configMap"]["name"] == h.one(docs[overlay], "ConfigMap")["metadata"]["name"]


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_grpc_probes_port_and_listen(docs, overlay):
    """The probes are native gRPC probes (plaintext only) on the plaintext health listener, so
    they keep working when [tls] is turned on for port 50051."""
    c = h.container(docs[overlay])
    assert c["ports"] == [
        {"name": "grpc", "containerPort": 50051, "protocol": "TCP"},
        {"name": "health", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert c["livenessProbe"]["grpc"] == {"port": 8081}
    assert c["readinessProbe"]["grpc"] == {"port": 8081, "service": "ossgate.v1.ObjectService"}
    assert not any("tcpSocket" in c[probe] or "exec" in c[probe]
                   for probe in ("livenessProbe", "readinessProbe"))
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["OSSGATE_LISTEN"] == "0.0.0.0:50051"
    assert env["OSSGATE_SERVER__HEALTH_LISTEN"] == "0.0.0.0:8081"
    assert c["args"] == ["serve", "--config", "/etc/ossgate/ossgate.toml"]


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_termination_grace_covers_prestop_and_drain(docs, overlay):
    pod = h.one(docs[overlay], "Deployment")["spec"]["template"]["spec"]
    prestop = h.container(docs[overlay])["lifecycle"]["preStop"]
    assert set(prestop) == {"sleep"}, "the image has no shell: use the native sleep action"
    settings = tomllib.loads(h.one(docs[overlay], "ConfigMap")["data"]["ossgate.toml"])
    drain_seconds = settings.get("server", {}).get("shutdown_grace_ms", 10_000) / 1000
    needed = prestop["sleep"]["seconds"] + drain_seconds + PRESTOP_DRAIN_MARGIN_SECONDS
    assert pod["terminationGracePeriodSeconds"] >= needed


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_resources_cover_the_memory_budget(docs, overlay):
    resources = h.container(docs[overlay])["resources"]
    assert resources["limits"]["memory"] == "512Mi"
    assert set(resources["requests"]) == {"cpu", "memory"}  # the HPA needs a CPU request


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_services_select_the_pods(docs, overlay):
    pod_labels = h.one(docs[overlay], "Deployment")["spec"]["template"]["metadata"]["labels"]
    cluster_ip = h.one(docs[overlay], "Service", "ossgate")["spec"]
    headless = h.one(docs[overlay], "Service", "ossgate-headless")["spec"]
    assert cluster_ip["type"] == "ClusterIP" and "clusterIP" not in cluster_ip
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is False
    for spec in (cluster_ip, headless):
        assert spec["selector"].items() <= pod_labels.items()
        assert spec["ports"] == [
            {"name": "grpc", "port": 50051, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"}
        ]


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_disruption_budget_and_autoscaling(docs, overlay):
    deployment = h.one(docs[overlay], "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdb = h.one(docs[overlay], "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    hpas = h.find(docs[overlay], "HorizontalPodAutoscaler")
    if overlay == "dev":
        # One pod, one embedded emulator: no autoscaling.
        assert deployment["spec"]["replicas"] == 1 and not hpas
        return
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    (hpa,) = hpas
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ossgate"}
    assert hpa["spec"]["minReplicas"] >= 2
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_network_policy(docs, overlay):
    spec = h.one(docs[overlay], "NetworkPolicy")["spec"]
    pod_labels = h.one(docs[overlay], "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"port": 50051, "protocol": "TCP"}]
    assert ingress["from"] == [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"ossgate-client": "true"}}}]
    dns, https = spec["egress"]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert sorted(p["protocol"] for p in dns["ports"]) == ["TCP", "UDP"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert https == {"ports": [{"port": 443, "protocol": "TCP"}]}


def test_dev_uses_the_embedded_emulator(docs):
    settings = tomllib.loads(h.one(docs["dev"], "ConfigMap")["data"]["ossgate.toml"])
    assert settings["oss"]["endpoint"] == ""
    assert settings["emulator"]["buckets"]


def test_production_points_at_oss_with_rrsa(docs):
    d = docs["production"]
    settings = tomllib.loads(h.one(d, "ConfigMap")["data"]["ossgate.toml"])
    assert settings["oss"]["endpoint"] == "https://oss-cn-hangzhou.aliyuncs.com"
    assert settings["oss"]["region"] == "cn-hangzhou"
    assert "access_key_secret" not in settings["oss"], "no secrets in the ConfigMap"
    sa = h.one(d, "ServiceAccount", "ossgate")
    assert sa["metadata"]["annotations"]["pod-identity.alibabacloud.com/role-name"]
    pod = h.one(d, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ossgate"
    c = h.container(d)
    env = {e["name"]: e for e in c["env"]}
    assert env["ALIBABA_CLOUD_ROLE_ARN"]["value"].startswith("acs:ram::")
    assert ":oidc-provider/" in env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"]["value"]
    token_file = env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"]["value"]
    # The token file is a projected service account token for STS.
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in c["volumeMounts"] if token_file.startswith(m["mountPath"] + "/")]
    (source,) = volumes[mount["name"]]["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["audience"] == "sts.aliyuncs.com"
    assert mount["mountPath"] + "/" + token["path"] == token_file


def test_production_static_keys_are_optional_and_match_the_example_secret(docs):
    secret = h.static_keys_secret()
    assert secret["metadata"]["namespace"] == h.one(docs["production"], "Namespace")["metadata"]["name"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in h.container(docs["production"])["env"]
        if "valueFrom" in e
    }
    # The tag-write lock's Redis URL comes from its own Secret, optional too: without it the
    # lock is per replica (and the start says so).
    lock = refs.pop("OSSGATE_LOCK__REDIS_URL")
    assert lock["optional"] is True and lock["name"] == "ossgate-lock"
    assert set(refs) == {"OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"}
    for name, ref in refs.items():
        assert ref["optional"] is True, "RRSA-only pods must start without the Secret"
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
    kustomization = (h.KUSTOMIZE_DIRS["production"] / "kustomization.yaml").read_text()
    assert "secret-static-keys.example.yaml" not in [
        line.strip(" -") for line in kustomization.splitlines() if not line.lstrip().startswith("#")
    ]
