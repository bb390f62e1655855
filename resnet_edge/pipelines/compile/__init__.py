"""``resnet-edge compile``: weights + (calibration data) -> a verified deployment bundle.

The sequence itself is ``pipelines.bundling``, which ``retarget`` runs too; a compile flag is a field of
``bundling.options.CompileOptions``.
"""

from ..bundling import CompileOptions, CompileResult, build_bundle


def compile_bundle(options: CompileOptions) -> CompileResult:
    """Build the bundle ``options`` describe at ``options.out`` (see ``pipelines.bundling.run`` for the order)."""
    return build_bundle(options)


__all__ = ["CompileOptions", "CompileResult", "compile_bundle"]
