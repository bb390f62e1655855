"""The TorchScript backend (legacy output): ``backend`` (build, load), ``probe`` (block outputs for
``diagnose``), ``profile`` (``bench --profile``)."""

from .backend import MODEL_FILE, TorchScriptBackend

__all__ = ["MODEL_FILE", "TorchScriptBackend"]
