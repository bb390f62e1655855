"""``resnet-edge diagnose``: where along the network a compiled bundle loses accuracy, and why.

``run`` (the sequence and the definitions in prose), ``metrics`` (SQNR, cosine, divergence, verdict).
"""

from .run import DiagnoseOptions, DiagnoseResult, diagnose_bundle

__all__ = ["DiagnoseOptions", "DiagnoseResult", "diagnose_bundle"]
