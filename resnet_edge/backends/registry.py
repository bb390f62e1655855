"""The backend registry: name -> backend class, imported on first use; typed options from CLI values."""

from __future__ import annotations

import importlib
from dataclasses import fields

from ..core.errors import UsageError
from .base import Backend, BackendOptions

# name -> "module:class", imported on first use so that asking about one backend never imports another.
_REGISTRY: dict[str, str] = {
    "tensorrt": "resnet_edge.backends.tensorrt:TensorRTBackend",
    "onnxruntime": "resnet_edge.backends.onnxruntime:OnnxRuntimeBackend",
    "torchscript": "resnet_edge.backends.torchscript:TorchScriptBackend",
    "openvino": "resnet_edge.backends.openvino:OpenVinoBackend",
    "aoti": "resnet_edge.backends.aoti:AotiBackend",
}

BACKEND_CHOICES = ("auto", *_REGISTRY)

_instances: dict[str, Backend] = {}


def list_backends() -> list[str]:
    """Names of the registered backends."""
    return list(_REGISTRY)


def get_backend(name: str) -> Backend:
    """The backend called ``name``; a ``UsageError`` for an unknown one."""
    if name in _instances:
        return _instances[name]
    if name not in _REGISTRY:
        raise UsageError(f"unknown backend {name!r}; choose one of: {', '.join(['auto', *_REGISTRY])}")
    backend = _backend_class(name)()
    _instances[name] = backend
    return backend


def _backend_class(name: str) -> type[Backend]:
    module_name, _, class_name = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_options(backend: Backend, **values) -> BackendOptions:
    """``backend``'s typed options from command-line values (None: not given).

    A value given for an option the backend lacks is refused, naming the backends that have it.
    """
    known = {f.name for f in fields(backend.options_type)}
    for option, value in values.items():
        if value is not None and option not in known:
            owners = [
                cls.display_name or cls.name
                for cls in map(_backend_class, _REGISTRY)
                if option in {f.name for f in fields(cls.options_type)}
            ]
            flag = f"--{option.replace('_', '-')}"
            raise UsageError(f"{flag} applies to {' and '.join(owners) or 'no'} builds only; drop it for the {backend.name} backend")
    return backend.options_type(**{option: value for option, value in values.items() if value is not None})


def backend_availability(name: str) -> tuple[bool, str]:
    """(available, reason) for a registered backend name; never raises for known names."""
    if name not in _REGISTRY:
        return False, f"unknown backend {name!r}"
    try:
        return get_backend(name).available()
    except ImportError as error:
        return False, f"cannot import the {name} backend ({error})"
