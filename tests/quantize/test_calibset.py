"""Calibration-set manifests: reproducible draws, coverage, verification, errors, the calibset command."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from resnet_edge.data import get_preset
from resnet_edge.cli import main
from resnet_edge.core.errors import CheckFailed, UsageError
from resnet_edge.quantize.calibset import load_calibset, make_calibset, set_hash, write_calibset

REPO = Path(__file__).resolve().parents[2]


def test_same_arguments_same_set_and_hash():
    first = make_calibset("shapes:120", per_class=4, seed=3)
    again = make_calibset("shapes:120", per_class=4, seed=3)
    other = make_calibset("shapes:120", per_class=4, seed=4)
    assert first.manifest == again.manifest and first.hash == again.hash
    assert first.hash != other.hash
    assert first.manifest["class_counts"] == {name: 4 for name in first.classes}
    assert first.missing_classes == [] and len(first) == 24


def test_images_are_listed_in_shuffled_order_so_prefixes_mix_classes():
    made = make_calibset("shapes:600", per_class=10, seed=0)
    first_twelve = {entry["class"] for entry in made.images[:12]}
    assert len(first_twelve) >= 4


def test_count_mode_reports_missing_classes():
    made = make_calibset("shapes:60", count=2, seed=0)
    assert len(made) == 2 and len(made.missing_classes) >= 4
    assert made.manifest["selection"] == {"per_class": None, "count": 2, "seed": 0}


def test_write_load_round_trip_and_hash_is_of_canonical_json(tmp_path):
    made = make_calibset("shapes:60", per_class=2)
    path = write_calibset(made, tmp_path / "set.json")
    loaded = load_calibset(path)
    assert loaded.hash == made.hash == set_hash(json.loads(path.read_text()))
    dataset = loaded.open()
    image, label = dataset[0]
    assert image.size == (32, 32) and label == made.images[0]["label"]
    with pytest.raises(UsageError, match="already exists"):
        write_calibset(made, path)


def test_a_changed_image_is_detected(tmp_path):
    made = make_calibset("shapes:60", per_class=2)
    made.manifest["images"][1]["sha256"] = "0" * 64
    with pytest.raises(CheckFailed, match="changed since the set was made"):
        made.open()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ("{broken", "unreadable"),
        ('{"format": "something-else"}', "not a resnet-edge calibration set"),
        (json.dumps({"format": "resnet-edge-calibset", "version": 1, "data": "shapes", "split": "train", "classes": [],
                     "preprocessing": get_preset("cifar").to_dict(), "images": []}), "lists no images"),
        ('{"format": "resnet-edge-calibset", "version": 1, "data": "shapes", "split": "train", "classes": [], "preprocessing": {}, "images": [{"path": "x"}]}', "damaged"),
        ('{"format": "resnet-edge-calibset", "version": 99}', "version 99"),
    ],
)
def test_unreadable_sets_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "set.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_calibset(path)


def _image_folder(root: Path) -> Path:
    for split in ("train", "val"):
        for name, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(3):
                Image.new("RGB", (40, 30), tuple(max(c - 20 * index, 0) for c in colour)).save(folder / f"{index}.png")
    return root


def test_folder_sets_store_relative_paths_and_file_hashes(tmp_path):
    root = _image_folder(tmp_path / "data")
    made = make_calibset(str(root), per_class=2, seed=1)
    assert made.manifest["root"] == str((root / "train").absolute())
    assert all(not Path(entry["path"]).is_absolute() and entry["path"].split("/")[0] in ("red", "blue") for entry in made.images)
    assert made.manifest["preprocessing"]["name"] == "imagenet"
    assert len(made.open()) == 4
    first = root / "train" / made.images[0]["path"]
    Image.new("RGB", (40, 30), (1, 2, 3)).save(first)
    with pytest.raises(CheckFailed, match=made.images[0]["path"]):
        made.open()


def test_calibset_command_writes_the_demo_style_set(tmp_path):
    out = tmp_path / "calibration" / "demo.json"
    result = CliRunner().invoke(main, ["calibset", "--data", "shapes:120", "--per-class", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "18 images from shapes:120 (train), 6/6 classes" in result.output
    again = CliRunner().invoke(main, ["calibset", "--data", "shapes:120", "--per-class", "3", "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output
    neither = CliRunner().invoke(main, ["calibset", "--data", "shapes:120", "--out", str(tmp_path / "x.json")])
    assert neither.exit_code == 2 and "exactly one of --per-class K or --count N" in neither.output


def test_the_shipped_demo_set_matches_the_shapes_data():
    path = REPO / "calibration" / "shapes-demo.json"
    loaded = load_calibset(path)
    assert loaded.missing_classes == [] and loaded.data == "shapes"
    assert len(loaded.open()) == len(loaded)  # every sha256 still matches the generator
