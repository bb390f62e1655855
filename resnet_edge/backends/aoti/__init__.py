"""AOTInductor backend: ``model.pt2`` packages that libtorch runs from C++ without Python (``backend``).

``graph`` prepares and exports the model, ``compiler`` compiles it (progress, cores, ``cache``),
``host`` records and checks what the package needs, ``loader`` runs it in Python, ``probe`` and
``profile`` serve ``diagnose`` and ``bench --profile``.
"""

from .backend import AotiBackend

__all__ = ["AotiBackend"]
