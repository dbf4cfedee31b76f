"""Every setting the rendered manifests pass (OSSGATE_* env, ossgate.toml keys) is one the
service accepts: `ossgate check-config` with the pod's own config file and env exits 0.
The check can fail: a misspelled key or variable makes check-config exit non-zero."""

import json
import subprocess
import tomllib

import pytest

import deploy_helpers as h


def pod_for(docs, overlay, tmp_path, secrets=()) -> h.Pod:
    # Production: RRSA only, as the overlay is applied (the static-keys Secret is optional).
    return h.Pod(docs[overlay], tmp_path, list(secrets))


def check_config(config, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [h.binary(), "check-config", "--config", str(config)],
        env={**h.base_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def config_path(pod: h.Pod):
    args = pod.args()
    assert args[0] == "serve" and args[1] == "--config"
    return args[2]


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_rendered_settings_are_accepted(docs, tmp_path, overlay):
    pod = pod_for(docs, overlay, tmp_path)
    config = config_path(pod)
    result = check_config(config, pod.env())
    assert result.returncode == 0, result.stderr
    effective = json.loads(result.stdout)
    # The effective settings are the rendered ones (file and env were really read).
    assert effective["listen"] == "0.0.0.0:50051"
    assert effective["server"]["health_listen"] == "0.0.0.0:8081"
    rendered = tomllib.loads(open(config).read())
    for section, values in rendered.items():
        for key, value in values.items():
            assert effective[section][key] == value, f"{section}.{key}"
    if overlay == "production":
        # The RRSA variables became the oss.* RRSA settings; no static key is configured.
        env = pod.env()
        assert effective["oss"]["role_arn"] == env["ALIBABA_CLOUD_ROLE_ARN"]
        assert effective["oss"]["oidc_provider_arn"] == env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"]
        assert effective["oss"]["oidc_token_file"] == env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"]
        assert effective["oss"]["access_key_id"] == ""


def test_production_with_the_static_keys_secret(docs, tmp_path):
    pod = pod_for(docs, "production", tmp_path, [h.static_keys_secret()])
    result = check_config(config_path(pod), pod.env())
    assert result.returncode == 0, result.stderr
    effective = json.loads(result.stdout)
    assert effective["oss"]["access_key_id"] == h.static_keys_secret()["stringData"]["OSS_ACCESS_KEY_ID"]
    assert effective["oss"]["access_key_secret"] == "<redacted>"
    assert "REPLACE_WITH_ACCESS_KEY_SECRET" not in result.stdout + result.stderr


def test_production_with_incomplete_rrsa_is_refused(docs, tmp_path):
    """Without static keys, a missing RRSA variable is named by check-config."""
    pod = pod_for(docs, "production", tmp_path)
    env = {k: v for k, v in pod.env().items() if not k.startswith("ALIBABA_CLOUD_ROLE_ARN")}
    result = check_config(config_path(pod), env)
    assert result.returncode != 0
    assert "oss.role_arn (ALIBABA_CLOUD_ROLE_ARN)" in result.stderr, result.stderr


def rendered_keys(overlay):
    text = h.kustomize(overlay)
    config_map = h.one(h.documents(text), "ConfigMap")
    settings = tomllib.loads(config_map["data"]["ossgate.toml"])
    return [(overlay, section, key) for section, values in settings.items() for key in values]


@pytest.mark.parametrize(
    "overlay,section,key", [k for overlay in h.OVERLAYS for k in rendered_keys(overlay)]
)
def test_a_misspelled_file_setting_is_refused(docs, tmp_path, overlay, section, key):
    pod = pod_for(docs, overlay, tmp_path)
    config = config_path(pod)
    text = open(config).read()
    misspelled = key + "_typo"
    assert text.count(f"\n{key} = ") == 1
    with open(config, "w") as f:
        f.write(text.replace(f"\n{key} = ", f"\n{misspelled} = "))
    result = check_config(config, pod.env())
    assert result.returncode != 0
    assert f"unknown field `{misspelled}`" in result.stderr, result.stderr


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_a_misspelled_env_setting_is_refused(docs, tmp_path, overlay):
    pod = pod_for(docs, overlay, tmp_path)
    env = {**pod.env(), "OSSGATE_SERVER__SHUTDOWN_GRACE": "5000"}
    result = check_config(config_path(pod), env)
    assert result.returncode != 0
    assert "unknown field `shutdown_grace`" in result.stderr, result.stderr


def test_service_link_variables_would_stop_the_pod(docs, tmp_path):
    """Why the Deployment sets enableServiceLinks: false. With service links, Kubernetes adds
    OSSGATE_SERVICE_HOST, OSSGATE_PORT, ... (from the `ossgate` Service) to the container."""
    pod = pod_for(docs, "dev", tmp_path)
    links = {
        "OSSGATE_SERVICE_HOST": "10.96.0.10",
        "OSSGATE_SERVICE_PORT": "50051",
        "OSSGATE_PORT": "tcp://10.96.0.10:50051",
    }
    result = check_config(config_path(pod), {**pod.env(), **links})
    assert result.returncode != 0, "service link variables are accepted: enableServiceLinks may go"
    pod_spec = h.one(docs["dev"], "Deployment")["spec"]["template"]["spec"]
    assert pod_spec["enableServiceLinks"] is False
