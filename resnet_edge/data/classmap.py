"""Match a data set's classes to a model's classes by NAME, never silently by position.

An ImageFolder numbers its classes in sorted folder order; a model numbers them in the order it was
trained with. Comparing labels by index is right only when both orders agree, so every command that
scores a model on labelled data (``validate``, ``sensitivity --data``, ``compile --val-data``,
calibration-set coverage) maps the data's label ``i`` to the model's class of the same name:

* same names, any order     mapped by name (a permutation; a note says so when the order differs);
* the model's classes are the generic ``0..N-1`` (torchvision weights, a bare state_dict)
                            nothing to match by name: by index, as before;
* other names               refused (``UsageError``, exit 2) unless the caller says how to match:
  ``--class-map FILE``      data name -> model name, for every data class whose name the model lacks;
  ``--by-index``            data label i is model class i (the old behaviour, asked for explicitly).

``--class-map FILE`` is JSON (``{"data name": "model name", ...}``) or text with two columns per line,
data name then model name, separated by a tab, a comma or spaces (``#`` starts a comment). Data
classes not in the file keep their own name; several data classes may map to one model class.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from torch.utils.data import Dataset

from ..core.errors import UsageError
from ..core.io import read_json_document

log = logging.getLogger(__name__)

__all__ = ["ClassMap", "Relabelled", "generic_names", "map_classes", "read_class_map"]

MAX_SHOWN = 6


@dataclass(frozen=True)
class ClassMap:
    """``indices[i]``: the model's class index for the data's label ``i``; ``how`` says how it was matched."""

    indices: tuple[int, ...]
    how: str  # "identity" | "by-name" | "by-index" | "class-map" | "generic"

    @property
    def identity(self) -> bool:
        return self.indices == tuple(range(len(self.indices)))

    def to_dict(self) -> dict:
        """What a report records about the matching."""
        return {"how": self.how, "permuted": not self.identity}

    def apply(self, dataset: Dataset) -> Dataset:
        """``dataset`` with its labels in the model's numbering (itself for the identity)."""
        return dataset if self.identity else Relabelled(dataset, self)


class Relabelled(Dataset):
    """A ``(image, label)`` dataset whose labels are mapped to the model's class indices."""

    def __init__(self, dataset: Dataset, class_map: ClassMap) -> None:
        self.dataset = dataset
        self.class_map = class_map

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, label = self.dataset[index]
        return image, self.class_map.indices[int(label)]


def generic_names(classes: Sequence[str]) -> bool:
    """The classes are ``"0".."N-1"``: a model without class names (nothing to match by name)."""
    return list(classes) == [str(i) for i in range(len(classes))]


def _shown(names: Sequence[str]) -> str:
    names = list(names)
    text = ", ".join(repr(name) for name in names[:MAX_SHOWN])
    return text + (f" and {len(names) - MAX_SHOWN} more" if len(names) > MAX_SHOWN else "")


def read_class_map(path: Path) -> dict[str, str]:
    """``--class-map FILE``: JSON object or two-column text, data name -> model name (see the module doc)."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--class-map {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--class-map {path} cannot be read ({type(error).__name__}: {error})") from None
    if text.lstrip().startswith("{"):
        data = read_json_document(path, lambda error: f"--class-map {path} is not valid JSON ({error})", text)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise UsageError(f"--class-map {path}: every key and value must be a class name (a string)")
        return dict(data)
    mapping: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [part.strip() for part in (line.split("\t") if "\t" in line else line.split(",") if "," in line else re.split(r"\s+", line))]
        if len(parts) != 2 or not all(parts):
            raise UsageError(f"--class-map {path} line {number}: expected two columns, data name then model name")
        if parts[0] in mapping and mapping[parts[0]] != parts[1]:
            raise UsageError(f"--class-map {path} line {number}: {parts[0]!r} is mapped twice")
        mapping[parts[0]] = parts[1]
    if not mapping:
        raise UsageError(f"--class-map {path} maps no class")
    return mapping


def _by_map(model: list[str], data: list[str], mapping: dict[str, str], origin: str, flag: str) -> ClassMap:
    unknown_keys = sorted(set(mapping) - set(data))
    if unknown_keys:
        raise UsageError(f"--class-map {origin} names data classes that {flag} does not have: {_shown(unknown_keys)}")
    targets = [mapping.get(name, name) for name in data]
    missing = sorted({name for name in targets if name not in model})
    if missing:
        raise UsageError(f"--class-map {origin} leaves data classes without a model class: {_shown(missing)} "
                         f"(the model's classes: {_shown(model)})")
    return ClassMap(tuple(model.index(name) for name in targets), "class-map")


def map_classes(model_classes: Sequence[str], data_classes: Sequence[str], *, class_map: Path | dict | None = None,
                by_index: bool = False, flag: str = "--data") -> ClassMap:
    """The data's labels -> the model's class indices, by name; a one-line ``UsageError`` when they
    cannot be matched (see the module doc). ``flag`` names the data in messages (``--val-data``...)."""
    model, data = list(model_classes), list(data_classes)
    if by_index and class_map is not None:
        raise UsageError("pass either --class-map or --by-index, not both")
    if class_map is not None:
        origin = "" if isinstance(class_map, dict) else str(class_map)
        mapping = dict(class_map) if isinstance(class_map, dict) else read_class_map(Path(class_map))
        return _by_map(model, data, mapping, origin, flag)
    if by_index:
        if len(data) != len(model):
            raise UsageError(f"--by-index needs as many classes in {flag} ({len(data)}) as in the model ({len(model)})")
        return ClassMap(tuple(range(len(data))), "by-index")
    if data == model:
        return ClassMap(tuple(range(len(data))), "identity")
    if generic_names(model) and len(data) == len(model):
        return ClassMap(tuple(range(len(data))), "generic")
    if sorted(data) == sorted(model) and len(set(data)) == len(data):
        log.info(f"note: {flag} lists the model's classes in another order; labels are matched by name")
        return ClassMap(tuple(model.index(name) for name in data), "by-name")
    only_data, only_model = sorted(set(data) - set(model)), sorted(set(model) - set(data))
    raise UsageError(
        f"{flag} class names differ from the model's (data only: {_shown(only_data) or 'none'}; model only: "
        f"{_shown(only_model) or 'none'}); rename the folders, or pass --class-map FILE (data name -> model name) "
        f"or --by-index to match labels by position"
    )
