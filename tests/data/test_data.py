"""The --data spec: shapes, ImageFolder directories, CIFAR-10 batches, presets, bad input."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_edge.data import SHAPE_CLASSES, eval_transform, get_preset, open_data, train_transform
from resnet_edge.core.errors import UsageError


def test_shapes_is_deterministic_and_balanced():
    source = open_data("shapes:60")
    first, second = source.split("train"), source.split("train")
    assert np.array_equal(np.asarray(first[7][0]), np.asarray(second[7][0]))
    assert not np.array_equal(np.asarray(first[7][0]), np.asarray(source.split("val")[7][0]))
    labels = [first[i][1] for i in range(len(first))]
    assert sorted(set(labels)) == list(range(len(SHAPE_CLASSES)))
    assert labels.count(0) == labels.count(5) == 10
    assert first.sample_sha256(3) == second.sample_sha256(3)


@pytest.mark.parametrize("preset,size", [("cifar", 32), ("imagenet", 224)])
def test_presets_produce_normalised_crops(preset, size):
    pre = get_preset(preset)
    image = open_data("shapes:12").split("val")[0][0]
    for transform in (eval_transform(pre), train_transform(pre)):
        tensor = transform(image)
        assert tensor.shape == (3, size, size) and tensor.dtype == torch.float32
    assert get_preset(preset).to_dict()["crop"] == size


def _write_folder(root, classes=("cat", "dog"), per_class=3):
    for name in classes:
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            Image.new("RGB", (40, 30), (index * 40, 0, 0)).save(root / name / f"{index}.png")


def test_folder_with_splits(tmp_path):
    _write_folder(tmp_path / "train")
    _write_folder(tmp_path / "val", per_class=2)
    source = open_data(str(tmp_path))
    assert source.classes == ("cat", "dog") and source.has_splits
    assert len(source.split("train")) == 6 and len(source.split("val")) == 4
    assert source.split("val").sample_id(0) == "cat/0.png"


def test_folder_without_splits_is_used_whole(tmp_path):
    _write_folder(tmp_path)
    source = open_data(str(tmp_path))
    assert not source.has_splits and len(source.split("val")) == 6


def test_cifar10_batches(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 1]}
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane", b"automobile", b"bird"]}))
    source = open_data(f"cifar10:{tmp_path}")
    assert source.classes == ("airplane", "automobile", "bird")
    train, val = source.split("train"), source.split("val", eval_transform(get_preset("cifar")))
    assert len(train) == 20 and len(val) == 4
    assert train[0][0].size == (32, 32) and val[3][1] == 1


@pytest.mark.parametrize(
    "spec_fn,message",
    [
        (lambda p: str(p / "missing"), "does not exist"),
        (lambda p: str(p), "is empty"),
        (lambda p: "shapes:x", "must be an integer"),
        (lambda p: f"cifar10:{p}", "no CIFAR-10 python batches"),
    ],
)
def test_bad_data_specs_are_usage_errors(tmp_path, spec_fn, message):
    with pytest.raises(UsageError, match=message):
        open_data(spec_fn(tmp_path))


def test_corrupt_image_names_the_file(tmp_path):
    _write_folder(tmp_path)
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    dataset = open_data(str(tmp_path)).split("val")
    index = [i for i, (path, _) in enumerate(dataset.samples) if path.endswith("broken.jpg")][0]
    with pytest.raises(UsageError, match="broken.jpg"):
        dataset[index]


# ---------------------------------------------- decoding: one rule with the C++ side (data/images.py)


def _decoded(path) -> np.ndarray:
    from resnet_edge.data.images import load_rgb

    image = load_rgb(str(path))
    assert image.mode == "RGB"
    return np.asarray(image)


def test_sixteen_bit_png_reads_as_v_over_65535(tmp_path):
    from helpers.golden import write_png16

    values = np.array([[0, 255, 256, 383, 32767, 32768, 65280, 65535]], dtype=np.uint16)
    expected = [0, 1, 1, 1, 127, 128, 254, 255]  # round(v / 257); Pillow's convert clips 32768 to 255
    write_png16(tmp_path / "grey.png", values)
    assert _decoded(tmp_path / "grey.png")[0, :, 0].tolist() == expected
    # 16-bit RGB and grey + alpha: Pillow alone keeps only the high byte (255 -> 0, 65280 -> 255).
    write_png16(tmp_path / "rgb.png", np.stack([values, values[:, ::-1], values], -1))
    rgb = _decoded(tmp_path / "rgb.png")
    assert rgb[0, :, 0].tolist() == expected and rgb[0, :, 1].tolist() == expected[::-1]
    write_png16(tmp_path / "la.png", np.stack([values, values[:, ::-1]], -1))
    assert _decoded(tmp_path / "la.png")[0].tolist() == [[v] * 3 for v in expected]  # alpha dropped
    Image.fromarray(values).save(tmp_path / "grey.tiff")  # I;16 from another container
    assert _decoded(tmp_path / "grey.tiff")[0, :, 0].tolist() == expected


def test_alpha_and_palette_transparency_are_dropped(tmp_path):
    grey = np.array([[10, 200, 77]], dtype=np.uint8)
    Image.merge("LA", (Image.fromarray(grey), Image.fromarray(np.zeros_like(grey)))).save(tmp_path / "la.png")
    assert _decoded(tmp_path / "la.png")[0].tolist() == [[10] * 3, [200] * 3, [77] * 3]
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255])
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "p.png", transparency=1)
    assert _decoded(tmp_path / "p.png")[0].tolist() == [[255, 0, 0], [0, 0, 255]]


def test_cmyk_jpeg_uses_opencvs_integer_formula(tmp_path):
    from resnet_edge.data.images import cmyk_to_rgb

    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [128, 64, 32, 100], [0, 0, 0, 255]]], dtype=np.uint8)
    # R = (255 - K) - (C * (255 - K) >> 8)
    assert cmyk_to_rgb(cmyk)[0].tolist() == [[255, 255, 255], [1, 255, 255], [78, 117, 136], [0, 0, 0]]
    Image.fromarray(np.full((16, 16, 4), (30, 90, 150, 40), np.uint8), "CMYK").save(tmp_path / "c.jpg", quality=100)
    with Image.open(tmp_path / "c.jpg") as image:
        raw = np.asarray(image)
    assert np.array_equal(_decoded(tmp_path / "c.jpg"), cmyk_to_rgb(raw))


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_is_applied_to_jpeg_and_png(tmp_path, suffix):
    image = Image.new("RGB", (4, 2), (0, 0, 0))
    image.putpixel((0, 0), (255, 255, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    image.save(tmp_path / f"e{suffix}", exif=exif.tobytes(), **({"quality": 100} if suffix == ".jpg" else {}))
    decoded = _decoded(tmp_path / f"e{suffix}")
    assert decoded.shape == (4, 2, 3)
    assert decoded[0, 1].min() > 200 and decoded[0, 0].max() < 60  # the white corner moved to the top right
