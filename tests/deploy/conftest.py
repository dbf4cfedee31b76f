"""Fixtures for the deploy tests (see deploy/README.md, "Validating the deployment")."""

import pytest

import deploy_helpers as h


@pytest.fixture(scope="session")
def rendered():
    """overlay name -> `kubectl kustomize` output (text), rendered once per session."""
    return {name: h.kustomize(name) for name in h.KUSTOMIZE_DIRS}


@pytest.fixture(scope="session")
def docs(rendered):
    """overlay name -> list of rendered objects."""
    return {name: h.documents(text) for name, text in rendered.items()}
