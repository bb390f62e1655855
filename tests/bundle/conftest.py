"""The fake backend every bundle test loads its bundles with."""

import pytest

from helpers.fake_bundle import register_fake_backend


@pytest.fixture
def fake_backend(monkeypatch):
    return register_fake_backend(monkeypatch)
