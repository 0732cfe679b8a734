"""Settings from the environment, and the listening port from services.json only."""

from __future__ import annotations

import importlib
import inspect

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from bookrec_common.settings import ServiceSettings
from bookrec_local import definitions

COMMON_DEFAULT_PORT = ServiceSettings.model_fields["port"].default


def test_port_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    assert ServiceSettings().port == 8123


@pytest.mark.parametrize("value", ["eighty", "0", "70000", ""])
def test_a_malformed_port_fails_at_boot_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("PORT", value)
    with pytest.raises(ValidationError, match="port"):
        ServiceSettings()


def test_without_port_every_process_falls_back_to_one_common_default(monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    assert ServiceSettings().port == COMMON_DEFAULT_PORT


@pytest.mark.parametrize("service", sorted(definitions.services()))
def test_no_service_declares_a_port_of_its_own(service):
    """Every deployment sets PORT from services.json; a second default in a service would drift from it."""
    module = importlib.import_module(f"{definitions.services()[service]['package']}.settings")
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, BaseSettings) and c.__module__ == module.__name__]
    assert classes, f"{module.__name__} defines no settings"
    for settings in classes:
        assert "port" not in vars(settings).get("__annotations__", {}), f"{settings.__name__} declares a port"
        assert settings.model_fields["port"].default == COMMON_DEFAULT_PORT
