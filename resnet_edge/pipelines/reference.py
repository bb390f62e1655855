"""The FP32 reference of a bundle, as ``validate`` and ``diagnose`` compare with it."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from .. import bundle as bundle_io
from ..core import hostinfo
from ..weights import load_weights, untrained_weights

log = logging.getLogger(__name__)


def load_reference(loaded_bundle: bundle_io.Bundle, reference: Path | None) -> tuple[nn.Module, dict]:
    """The FP32 reference model and what the report says about it.

    ``--reference`` wins; else the weights the manifest names (sha256 checked). A bundle built with
    ``--random-weights`` has no weights file: its reference is recreated the way ``compile`` made it
    (``weights.untrained_weights``, same seed), which only reproduces with the torch that built it.
    """
    manifest = loaded_bundle.manifest
    ref = manifest["reference"]
    if reference is not None:
        loaded = load_weights(Path(reference), manifest["arch"], num_classes=loaded_bundle.num_classes)
        if ref.get("sha256") and loaded.sha256 != ref["sha256"]:
            log.info(f"note: --reference {reference} is not the file the bundle was built from (sha256 differs); comparing with it anyway")
        return loaded.model, {"source": "--reference", "weights": str(Path(reference).expanduser().absolute()), "sha256": loaded.sha256}
    if ref.get("random_weights") or ref.get("source") == "random":
        built_with, have = manifest.get("build_host", {}).get("versions", {}).get("torch"), hostinfo.package_version("torch")
        if built_with and built_with != have:
            log.warning(f"the bundle was built with torch {built_with} and random weights; torch {have} may not recreate them")
        log.info("note: random-weights bundle: its reference is recreated from compile's seed; top-1 means nothing, agreement does")
        with torch.random.fork_rng(devices=[]):
            model = untrained_weights(manifest["arch"]).model
        return model, {"source": "random", "weights": None, "sha256": None}
    model = loaded_bundle.load_reference_model()
    return model, {"source": "manifest", "weights": ref.get("weights"), "sha256": ref.get("sha256")}
