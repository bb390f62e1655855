"""The calibration images of an INT8 build, as ``compile`` and ``sensitivity`` both draw them.

A ``--calib-set`` manifest (its first ``--calib-images``) or ``--calib-images`` images drawn from
``--calib-data``'s train split with a fixed seed; every image is checked against its sha256 (in
``quantize.calibset``), and coverage of the model's classes is reported before any work is done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from ..core import defaults
from ..data import eval_transform
from ..data.classmap import ClassMap, generic_names, map_classes
from ..weights import LoadedWeights
from .calibset import CalibSet, load_calibset, make_calibset
from .inputs import CalibrationData

log = logging.getLogger(__name__)

LOADER_BATCH = 32


@dataclass
class PreparedCalibration:
    """Calibration images ready for a backend, and what the bundle records about them."""

    data: CalibrationData
    manifest: dict  # the ``calibration`` manifest section
    set_manifest: dict  # the calibration-set manifest, copied into the bundle
    dataset: Dataset


def loader(dataset: Dataset, batch_size: int = LOADER_BATCH) -> DataLoader:
    """In-order, single-process batches of ``dataset``."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)


def _class_map(calibset: CalibSet, loaded: LoadedWeights, class_map: Path | None, by_index: bool) -> ClassMap | None:
    """The set's classes matched to the model's by name (``data.classmap``: other names are a
    ``UsageError`` unless ``class_map``/``by_index`` say how); None, warned about, when the model has
    no class names (``0..N-1``) and another number of classes than the set."""
    set_classes, model_classes = calibset.classes, list(loaded.classes)
    if class_map is None and not by_index and generic_names(model_classes) and len(set_classes) != len(model_classes):
        log.warning(
            f"the calibration data's {len(set_classes)} classes are not the model's {len(model_classes)} classes; "
            f"calibrate with images from the data the model was trained on"
        )
        return None
    return map_classes(model_classes, set_classes, class_map=class_map, by_index=by_index, flag="the calibration set")


def _warn_about_coverage(calibset: CalibSet, images: list[dict], loaded: LoadedWeights, matched: ClassMap | None) -> list[str]:
    """The model's classes without a calibration image (warned about); [] when the classes differ."""
    if matched is None:
        return []
    set_classes, model_classes = calibset.classes, list(loaded.classes)
    used_names = {entry.get("class", set_classes[entry["label"]] if "label" in entry else None) for entry in images}
    used = {model_classes[matched.indices[set_classes.index(name)]] for name in used_names if name in set_classes}
    missing = [name for name in model_classes if name not in used]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        log.warning(f"{len(missing)} of {len(set_classes)} classes have no calibration image ({shown}); "
                    f"INT8 ranges may not fit them: use calibset --per-class")
    return missing


def prepare_calibration(
    loaded: LoadedWeights,
    calib_set: Path | None = None,
    calib_data: str | None = None,
    calib_images: int | None = None,
    method: str = defaults.CALIB_METHOD,
    seed: int = defaults.CALIB_SEED,
    class_map: Path | None = None,
    by_index: bool = False,
) -> PreparedCalibration:
    """Load ``calib_set`` (or draw from ``calib_data``), verify its images and warn about coverage
    (the set's classes matched to the model's by name, or by ``class_map`` / ``by_index``)."""
    if calib_set is not None:
        calibset = load_calibset(Path(calib_set))
        limit, origin = calib_images, str(calibset.path)
    else:
        count = calib_images or defaults.CALIB_IMAGES
        calibset = make_calibset(calib_data, count=count, seed=seed, split=defaults.CALIB_SPLIT)
        limit, origin = None, None
    images = calibset.images[:limit] if limit else calibset.images
    if limit and limit > len(calibset.images):
        log.warning(f"--calib-images {limit} but the set has {len(calibset.images)} images; using all of them")
    matched = _class_map(calibset, loaded, class_map, by_index)
    missing = _warn_about_coverage(calibset, images, loaded, matched)
    if calibset.preprocessing.to_dict() != loaded.preprocessing.to_dict():
        log.info(f"note: the calibration set names preprocessing {calibset.preprocessing.name!r}; the model's "
                 f"({loaded.preprocessing.name!r}) is applied")
    log.info(f"calibration set: {calibset.summary()}{'' if not limit else f', using the first {len(images)}'}")
    dataset = calibset.open(transform=eval_transform(loaded.preprocessing), limit=len(images))
    data = CalibrationData(method=method, batches=lambda: (batch for batch, _ in loader(dataset)), num_images=len(dataset))
    section = {
        "method": method,
        "num_images": len(dataset),
        "set_hash": calibset.hash,
        "set_manifest": origin,
        "set_images": len(calibset.images),
        "data": calibset.data,
        "split": calibset.split,
        "missing_classes": missing,
        "classes_match": matched is not None and matched.how in ("identity", "by-name"),
    }
    return PreparedCalibration(data, section, calibset.manifest, dataset)
