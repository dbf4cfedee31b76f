"""Helpers for the deploy tests: render overlays, and run the binary the way a pod would.

`Pod` turns a rendered Deployment into a local process description: the container's own
args and env, with every volume mount mapped to a temporary directory (ConfigMap files
written out, emptyDirs created, the projected RRSA token faked) and every path in args, env
and ConfigMap files rewritten to point there. Only `overrides` differ from the pod.
"""

import os
import pathlib
import queue
import re
import signal
import subprocess
import sys
import threading

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZE_DIRS = {
    "base": DEPLOY / "k8s" / "base",
    "dev": DEPLOY / "k8s" / "overlays" / "dev",
    "production": DEPLOY / "k8s" / "overlays" / "production",
}
OVERLAYS = ["dev", "production"]
STATIC_KEYS_EXAMPLE = DEPLOY / "k8s" / "overlays" / "production" / "secret-static-keys.example.yaml"
SETTING_PREFIX = "OSSGATE_"
# What the tests write into the pod's projected service-account token file.
FAKE_OIDC_TOKEN = "not-a-real-oidc-token"


def binary() -> str:
    """The ossgate binary under test: $OSSGATE_BIN or target/debug/ossgate."""
    path = os.environ.get("OSSGATE_BIN") or str(ROOT / "target" / "debug" / "ossgate")
    if not os.path.exists(path):
        raise AssertionError(f"{path} does not exist: run `cargo build` first (or set OSSGATE_BIN)")
    return path


def kustomize(name: str) -> str:
    """`kubectl kustomize` output for a base/overlay name."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(KUSTOMIZE_DIRS[name])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {name} failed:\n{result.stderr}"
    return result.stdout


def documents(rendered: str) -> list:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def find(docs: list, kind: str, name: str | None = None) -> list:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list, kind: str, name: str | None = None) -> dict:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(docs: list) -> dict:
    pod = one(docs, "Deployment", "ossgate")["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    return pod["containers"][0]


def static_keys_secret() -> dict:
    return yaml.safe_load(STATIC_KEYS_EXAMPLE.read_text())


def _die_with_parent():
    """Runs in the child before exec: SIGTERM it when the parent (pytest) dies."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: teardown still stops it
        pass


def base_env() -> dict:
    """The test runner's environment without any setting or credential variable."""
    skip = (SETTING_PREFIX, "OSS_", "ALIBABA_CLOUD_")
    return {k: v for k, v in os.environ.items() if not k.startswith(skip)}


class Pod:
    """The ossgate container of a rendered overlay, laid out under `workdir`."""

    def __init__(self, docs: list, workdir: pathlib.Path, secrets: list | None = None):
        self.docs = docs
        self.container = container(docs)
        pod_spec = one(docs, "Deployment", "ossgate")["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
        self.secrets = {s["metadata"]["name"]: s for s in (secrets or [])}
        # Mount path -> local directory.
        self.mounts = {}
        for index, mount in enumerate(self.container.get("volumeMounts", [])):
            local = workdir / f"mount{index}"
            local.mkdir(parents=True)
            self.mounts[mount["mountPath"]] = (local, volumes[mount["name"]])
        longest_first = sorted(self.mounts, key=len, reverse=True)
        self._mount_re = re.compile(
            "(" + "|".join(re.escape(p) for p in longest_first) + r")(?=/|\"|'|$)", re.M
        )
        for local, volume in self.mounts.values():
            self._fill(local, volume)

    def local_path(self, text: str) -> str:
        """Rewrites container paths in `text` (an arg, env value or file) to local ones."""
        if not self.mounts:
            return text
        return self._mount_re.sub(lambda m: str(self.mounts[m.group(1)][0]), text)

    def _fill(self, local: pathlib.Path, volume: dict):
        if "configMap" in volume:
            config_map = one(self.docs, "ConfigMap", volume["configMap"]["name"])
            for key, value in config_map.get("data", {}).items():
                (local / key).write_text(self.local_path(value))
        elif "emptyDir" in volume:
            pass
        elif "projected" in volume:
            for source in volume["projected"]["sources"]:
                token = source["serviceAccountToken"]
                (local / token["path"]).write_text(FAKE_OIDC_TOKEN)
        else:
            raise AssertionError(f"the test does not know how to provide volume {volume}")

    def config_files(self) -> dict:
        """ConfigMap file name -> local path, for every mounted ConfigMap file."""
        files = {}
        for local, volume in self.mounts.values():
            if "configMap" in volume:
                files.update({p.name: p for p in local.iterdir()})
        return files

    def env(self) -> dict:
        """The container's env, with secretKeyRefs resolved from `secrets` (optional ones
        skipped when the Secret is absent), paths mapped to local ones."""
        env = {}
        for var in self.container.get("env", []):
            if "value" in var:
                env[var["name"]] = self.local_path(var["value"])
                continue
            ref = var["valueFrom"]["secretKeyRef"]
            secret = self.secrets.get(ref["name"])
            if secret is None:
                assert ref.get("optional"), f"{var['name']} needs Secret {ref['name']}"
                continue
            env[var["name"]] = secret["stringData"][ref["key"]]
        return env

    def args(self) -> list:
        return [self.local_path(arg) for arg in self.container.get("args", [])]


class Process:
    """A started ossgate process whose first stdout line announces where it listens. Later
    stdout lines are read as they come; `next_address` waits for one."""

    def __init__(self, argv: list, env: dict, stderr_path: pathlib.Path, ready_prefix: str,
                 timeout: float = 60):
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "w")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            text=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._lines = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.address = self.next_address(ready_prefix, timeout)

    def _read_stdout(self):
        """Queues stdout lines until end of file ("" then)."""
        try:
            for line in self.proc.stdout:
                self._lines.put(line)
        except (OSError, ValueError):  # closed by stop()
            pass
        self._lines.put("")

    def next_address(self, prefix: str, timeout: float = 60) -> str:
        """The rest of the next stdout line, which must start with `prefix`."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line.startswith(prefix):
            self.stop()
            raise AssertionError(
                f"{self.proc.args[:2]} did not print {prefix!r} (got {line!r}); stderr:\n"
                + self.stderr()
            )
        return line[len(prefix):].strip()

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, wait up to `timeout` seconds, SIGKILL if still running; returns the exit
        code (None if it had to be killed)."""
        code = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            code = self.proc.returncode
        self.proc.stdout.close()
        self._stderr.close()
        return code
