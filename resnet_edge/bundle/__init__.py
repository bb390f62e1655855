"""The deployment bundle: a directory with the compiled artifact(s), ``labels.txt`` and ``manifest.json``.

Writing (used by ``compile``)::

    with bundle.staging(out, force=False) as tmp:   # a private directory beside ``out``
        ... write artifacts into tmp ...
        bundle.write_manifest(tmp, manifest)          # labels.txt, file hashes, manifest.json
    # leaving the block renames tmp to ``out``; any exception (KeyboardInterrupt too) deletes tmp

Reading (validate, bench, demo, tests)::

    b = bundle.load("build/r50-int8")       # checks schema version, file hashes, GPU / TensorRT match
    logits = b.predict(batch)               # NCHW float32 -> float32 logits on the CPU, any batch size
    b.classes, b.preprocessing, b.transform(), b.manifest, b.reference_weights
    b.predictor.device, b.predictor.module  # the backend's Predictor (see backends.base.Predictor)

The schema is documented in ``docs/bundle-manifest.md``. Modules: ``manifest`` (write, read, verify,
host checks), ``staging`` (building a bundle in place of another, atomically), ``loaded`` (``Bundle``,
``load``).
"""

from .loaded import Bundle, load
from .manifest import (
    LABELS_NAME,
    MANIFEST_NAME,
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    check_host,
    read_manifest,
    verify_files,
    write_manifest,
)
from .staging import check_out_dir, staging

__all__ = [
    "Bundle",
    "LABELS_NAME",
    "MANIFEST_NAME",
    "REQUIRED_KEYS",
    "SCHEMA_VERSION",
    "check_host",
    "check_out_dir",
    "load",
    "read_manifest",
    "staging",
    "verify_files",
    "write_manifest",
]
