"""The ONNX Runtime backend: ``backend`` (build, load, simulator), ``session`` (sessions and the
predictor), ``probe`` (block outputs for ``diagnose``), ``profile`` (``bench --profile``)."""

from .backend import CACHE_FILE, MODEL_FILE, OnnxRuntimeBackend
from .session import DEFAULT_SESSION, SIMULATOR_SESSION, OrtPredictor, SessionSettings, load_file, session_options

__all__ = ["CACHE_FILE", "DEFAULT_SESSION", "MODEL_FILE", "SIMULATOR_SESSION", "OnnxRuntimeBackend", "OrtPredictor", "SessionSettings",
           "load_file", "session_options"]
