"""prepare_data on every source kind, read back by the training input pipeline; bad input refused early."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from tests.support.gcs import BUCKET
from tests.support.images import encode, make_image_folder
from trainboard import storage
from trainboard.artifacts.dataset import read_info
from trainboard.components.fingerprint_source.core import fingerprint_source
from trainboard.components.prepare_data import image_check
from trainboard.components.prepare_data.card import SAMPLES_FILE, write_card
from trainboard.components.prepare_data.core import prepare_data
from trainboard.components.prepare_data.plan import Example, Plan, complete_splits, stratified_split
from trainboard.components.train.input_pipeline import load_split
from trainboard.config import DataConfig
from trainboard.errors import UsageError
from trainboard.sources import check_source, demo, folder_checks
from trainboard.sources import tfds as tfds_source
from trainboard.sources.image_headers import usable_size


def read_back(dataset_dir, split: str) -> np.ndarray:
    """Labels of ``split`` as the training input pipeline delivers them."""
    labels = [y.numpy() for _, y in load_split(dataset_dir, split, image_size=32, batch_size=16)]
    return np.concatenate(labels) if labels else np.array([], dtype=np.int64)


def test_folder_with_all_splits_and_a_corrupt_file(tmp_path):
    src = tmp_path / "images"
    make_image_folder(src, {"train": 6, "validation": 2, "test": 3})
    (src / "train" / "circle" / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"not really a jpeg" * 10)
    whole = (src / "train" / "square" / "0001.jpg").read_bytes()
    (src / "train" / "square" / "cut.jpg").write_bytes(whole[: len(whole) * 2 // 3])  # header intact
    (src / "train" / "square" / "notes.txt").write_text("not an image")
    (src / "train" / "circle" / "tiny.png").write_bytes(encode(np.zeros((1, 1, 3), np.uint8), "png"))
    out = tmp_path / "data"
    info = prepare_data(DataConfig(f"folder:{src}"), str(out))
    assert info.class_names == ["circle", "square", "triangle"]
    assert info.examples == {"train": 18, "validation": 6, "test": 9}
    assert info.extra["skipped"] == {
        "not an image file": 1,
        "corrupt or not decodable": 2,
        "smaller than 8 px": 1,
    }
    for split, per_class in (("train", 6), ("validation", 2), ("test", 3)):
        assert np.bincount(read_back(out, split)).tolist() == [per_class] * 3
    # The dataset card: counts, what was skipped, and the sample grid inline.
    write_card(info, str(tmp_path / "card.md"), str(out))
    card = (tmp_path / "card.md").read_text()
    assert "| circle | 6 | 2 | 3 |" in card
    assert "2 corrupt or not decodable: train/circle/broken.jpg, train/square/cut.jpg" in card
    assert "![Sample training images](data:image/jpeg;base64," in card
    assert (out / SAMPLES_FILE).read_bytes().startswith(b"\xff\xd8\xff")
    # The artifact is a TFDS prepared dataset, too.
    builder = tfds.builder_from_directory(str(out))
    assert builder.info.splits["train"].num_examples == 18
    assert builder.info.features["label"].names == info.class_names


@pytest.mark.parametrize("by_split", [True, False], ids=["by-split", "classes-only"])
def test_a_nested_image_is_reported_as_nested_not_as_not_an_image(tmp_path, by_split):
    """Images in folders inside a class folder (one and two levels down) are not read, and said so as
    nested, up front and in the card; a text file there is still "not an image file"."""
    src = tmp_path / "images"
    make_image_folder(src, {"train" if by_split else "": 4})
    circle = src / "train" / "circle" if by_split else src / "circle"
    image = (circle / "0001.jpg").read_bytes()
    (circle / "more").mkdir()
    (circle / "more" / "a.jpg").write_bytes(image)
    (circle / "more" / "deeper").mkdir()
    (circle / "more" / "deeper" / "b.jpg").write_bytes(image)
    (circle / "more" / "notes.txt").write_text("not an image")
    notes = check_source(f"folder:{src}", "", validation_fraction=0.25, test_fraction=0.25)
    assert any("2 image(s) in folders inside class folders (nested" in note for note in notes), notes
    info = prepare_data(
        DataConfig(f"folder:{src}", validation_fraction=0.25, test_fraction=0.25), str(tmp_path / "d")
    )
    assert info.extra["skipped"] == {"not an image file": 1, "nested: in a folder inside a class folder": 2}
    assert sum(info.examples.values()) == 12, "the class folders' own images, all of them"


def test_every_format_and_jpeg_flavour_is_checked_and_stored_as_training_reads_it(tmp_path):
    """JPEG sizes come from their headers (baseline, progressive, greyscale, segments before the frame
    header, stray bytes between segments), GIF and BMP are stored as PNG, and the minimum side holds
    exactly: 8 px kept, 7 px skipped."""
    rng = np.random.default_rng(0)
    src = tmp_path / "images"

    def save(name: str, size: tuple[int, int], fmt: str = "JPEG", grey: bool = False, **options) -> Path:
        image = Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8))
        (src / cls).mkdir(parents=True, exist_ok=True)
        (image.convert("L") if grey else image).save(src / cls / name, fmt, **options)
        return src / cls / name

    for cls in ("cats", "dogs"):
        save("baseline.jpg", (40, 30))
        save("progressive.jpg", (30, 40), progressive=True)
        save("grey.jpg", (33, 21), grey=True)
        exif = b"Exif\x00\x00" + bytes(3000)
        save("segments.jpg", (20, 50), exif=exif, comment=b"x", restart_marker_blocks=1)
        stray = save("stray.jpg", (25, 26)).read_bytes()
        after_first = 4 + int.from_bytes(stray[4:6])  # libjpeg warns and reads on
        (src / cls / "stray.jpg").write_bytes(stray[:after_first] + b"\x00\x00" + stray[after_first:])
        save("edge.jpg", (8, 60))
        save("thin.jpg", (60, 7))
        save("image.png", (30, 30), "PNG")
        save("image.gif", (30, 30), "GIF")
        save("image.bmp", (30, 30), "BMP")
    info = prepare_data(
        DataConfig(f"folder:{src}", validation_fraction=0.2, test_fraction=0.2), str(tmp_path / "data")
    )
    assert info.extra["skipped"] == {"smaller than 8 px": 2}
    assert info.extra["skipped_examples"]["smaller than 8 px"] == ["cats/thin.jpg", "dogs/thin.jpg"]
    assert sum(info.examples.values()) == 18
    builder = tfds.builder_from_directory(str(tmp_path / "data"))
    as_stored = {"image": tfds.decode.SkipDecoding()}
    stored = [
        bytes(example["image"])
        for split in info.examples
        for example in builder.as_dataset(split, decoders=as_stored).as_numpy_iterator()
    ]
    assert sum(image.startswith(b"\x89PNG") for image in stored) == 6  # PNG, and GIF and BMP converted
    assert sum(image.startswith(b"\xff\xd8\xff") for image in stored) == 12
    assert sum(len(read_back(tmp_path / "data", split)) for split in info.examples) == 18


def test_the_check_refuses_exactly_what_the_full_decode_refuses(tmp_path):
    """The check decodes JPEGs at 1/8 scale and everything with one op: on corrupted variants of every
    format it must refuse exactly what the full decode that training does refuses, and keep the rest."""
    rng = np.random.default_rng(7)
    photo = tf.image.resize(rng.integers(0, 255, (6, 8, 3)).astype(np.uint8), (48, 64)).numpy()
    originals = {}
    for name, fmt, options in (
        ("baseline.jpg", "JPEG", {}),
        ("progressive.jpg", "JPEG", {"progressive": True}),
        ("grey.jpg", "JPEG", {"grey": True}),
        ("image.png", "PNG", {}),
        ("image.gif", "GIF", {}),
        ("image.bmp", "BMP", {}),
    ):
        image = Image.fromarray(photo.astype(np.uint8))
        out = io.BytesIO()
        (image.convert("L") if options.pop("grey", False) else image).save(out, fmt, **options)
        originals[name] = out.getvalue()
    expected = {"corrupt or not decodable": 0, "smaller than 8 px": 0}
    for number in range(240):
        name = list(originals)[number % len(originals)]
        data = bytearray(originals[name])
        if number < len(originals) * 2:
            pass  # the originals, twice: every class keeps usable images
        elif number % 3 == 0:
            data = data[: rng.integers(1, len(data))]
        elif number % 3 == 1:
            for at in rng.integers(0, len(data), rng.integers(1, 4)):
                data[at] = rng.integers(0, 256)
        else:
            at = rng.integers(0, len(data))
            data[at : at + 32] = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
        try:
            shape = tf.io.decode_image(bytes(data), channels=3, expand_animations=False).shape
            expected["smaller than 8 px"] += min(shape[:2]) < 8
        except tf.errors.OpError:
            expected["corrupt or not decodable"] += 1
        folder = tmp_path / "images" / ("odd" if number % 2 else "even")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{number:03d}-{name}").write_bytes(bytes(data))
    assert expected["corrupt or not decodable"] > 60
    info = prepare_data(DataConfig(f"folder:{tmp_path / 'images'}"), str(tmp_path / "data"))
    assert {reason: info.extra["skipped"].get(reason, 0) for reason in expected} == expected
    kept = 240 - sum(expected.values())
    assert sum(info.examples.values()) == kept
    assert sum(len(read_back(tmp_path / "data", split)) for split in info.examples) == kept  # all decode


def test_single_folder_is_split_stratified_and_deterministically(tmp_path):
    src = tmp_path / "images"
    make_image_folder(src, {"": 20})
    data = DataConfig(f"folder:{src}", validation_fraction=0.2, test_fraction=0.1)
    first = prepare_data(data, str(tmp_path / "a"), seed=1)
    prepare_data(data, str(tmp_path / "b"), seed=1)
    other = prepare_data(data, str(tmp_path / "c"), seed=2)
    assert first.examples == {"train": 42, "validation": 12, "test": 6}
    assert first.extra["per_class"] == {"train": [14] * 3, "validation": [4] * 3, "test": [2] * 3}
    files = lambda d, s: sorted(p.read_bytes() for p in (tmp_path / d).glob(f"trainboard-{s}.tfrecord-*"))  # noqa: E731
    assert files("a", "validation") == files("b", "validation"), "same seed, same split"
    assert files("a", "validation") != files("c", "validation"), "another seed, another split"
    assert first.fingerprint == other.fingerprint, "the fingerprint is the source's, not the split's"


def test_stratified_split_properties():
    labels = [0] * 50 + [1] * 30 + [2] * 3 + [3]
    kept, carved = stratified_split(labels, 0.2, seed=0, salt="validation")
    assert sorted(kept + carved) == list(range(len(labels)))
    assert np.bincount([labels[i] for i in carved], minlength=4).tolist() == [10, 6, 1, 0]
    assert stratified_split(labels, 0.2, seed=0, salt="validation") == (kept, carved)


def test_folder_in_a_bucket_matches_the_local_one(gcs, tmp_path, monkeypatch):
    monkeypatch.setattr(image_check, "_REMOTE_CHUNK", 4)  # several chunks, each read ahead
    src = tmp_path / "images"
    make_image_folder(src, {"train": 5, "test": 2})
    storage.upload_dir(src, f"gs://{BUCKET}/own-images")
    local = prepare_data(DataConfig(f"folder:{src}"), str(tmp_path / "local"))
    remote = prepare_data(DataConfig(f"folder:gs://{BUCKET}/own-images"), str(tmp_path / "remote"))
    assert remote.examples == local.examples == {"train": 12, "validation": 3, "test": 6}
    assert remote.fingerprint == local.fingerprint
    shards = lambda d: [p.read_bytes() for p in sorted((tmp_path / d).glob("trainboard-*"))]  # noqa: E731
    assert shards("remote") == shards("local"), "the same images, written in the same order"


def test_tfds_source_on_the_real_builder_with_mock_data(tmp_path, monkeypatch):
    # mock_data replaces the download and the records with random examples of caltech101's features; the
    # builder, its metadata and trainboard's reading and writing are the real ones. No download: no host
    # needs to answer.
    monkeypatch.setattr(tfds_source, "online", lambda **_: True)
    with tfds.testing.mock_data(num_examples=30):
        info = prepare_data(DataConfig("tfds:caltech101"), str(tmp_path / "data"))
    assert len(info.class_names) == 102 and info.class_names[0] == "accordion"
    # Random mock images of random size: the few under 8 px are skipped and counted.
    assert set(info.extra["skipped"]) <= {"smaller than 8 px"}
    assert sum(info.examples.values()) + sum(info.extra["skipped"].values()) == 3 * 30
    for split in ("train", "validation", "test"):
        assert len(read_back(tmp_path / "data", split)) == info.examples[split] > 20
    card = json.loads((tmp_path / "data" / "dataset.json").read_text())
    assert card["source"] == "tfds:caltech101"
    assert read_info(tmp_path / "data").fingerprint == info.fingerprint


def test_demo_source(tmp_path):
    info = prepare_data(DataConfig("demo"), str(tmp_path / "d"), seed=3)
    assert info.examples == {"train": 960, "validation": 160, "test": 160}
    assert np.bincount(read_back(tmp_path / "d", "test")).tolist() == [40] * 4


def _folder(tmp_path, layout: dict[str, int] | None = None, classes=None):
    src = tmp_path / "images"
    if layout is not None:
        make_image_folder(src, layout, classes=classes)
    src.mkdir(exist_ok=True)
    return src


BAD_SOURCES = [
    ("tfds:caltech10", {}, ["tfds:caltech10 is not a TFDS dataset", "did you mean tfds:caltech101"]),
    ("tfds:imdb_reviews", {}, ["not an image-classification dataset", "Image and a ClassLabel"]),
    ("tfds:Bad Name", {}, ["is not tfds:NAME[:CONFIG][@VERSION]"]),
    ("s3://bucket/images", {}, ["unsupported source", "folder:URI"]),
    ("folder:s3://bucket/images", {}, ["scheme s3:// is not supported"]),
    ("demo", {"validation_fraction": 0.0}, ["between 0 and 1"]),
    ("demo", {"test_fraction": 1.5}, ["between 0 and 1"]),
    ("demo", {"validation_fraction": 0.6, "test_fraction": 0.5}, ["must stay below 1"]),
]


@pytest.mark.parametrize(("dataset", "options", "words"), BAD_SOURCES)
def test_bad_sources_are_refused_before_writing(tmp_path, dataset, options, words):
    out = tmp_path / "out"
    with pytest.raises(UsageError) as error:
        prepare_data(DataConfig(dataset, **options), str(out))
    for word in words:
        assert word in str(error.value)
    assert not out.exists()


@pytest.mark.parametrize(
    ("layout", "classes", "words"),
    [
        (None, None, ["no files found"]),
        ({"": 3}, ["only"], ["only one class (only)"]),
        ({"train": 3, "validation": 0}, None, ["split 'validation' has no images"]),
        ({"train": 3}, None, []),  # filled below with an empty class folder
    ],
    ids=["no-classes", "single-class", "empty-split", "empty-class"],
)
def test_bad_folders_are_refused_before_writing(tmp_path, layout, classes, words):
    src = _folder(tmp_path, layout, classes)
    if not words:
        (src / "train" / "hexagon").mkdir()
        words = ["class folder train/hexagon has no images"]
    out = tmp_path / "out"
    with pytest.raises(UsageError) as error:
        prepare_data(DataConfig(f"folder:{src}"), str(out))
    assert error.value.field == "dataset"
    for word in words:
        assert word in str(error.value)
    assert not out.exists()


@pytest.mark.parametrize("where", ["local", "gcs"])
def test_the_cache_key_fingerprint_follows_the_folder_contents(request, tmp_path, where):
    src = tmp_path / "images"
    make_image_folder(src, {"": 2})
    uri = str(src)
    if where == "gcs":
        request.getfixturevalue("gcs")
        uri = f"gs://{BUCKET}/images"
        storage.upload_dir(src, uri)
    first = fingerprint_source(f"folder:{uri}")
    assert fingerprint_source(f"folder:{uri}") == first, "unchanged data, same key: a cache hit"
    storage.write_bytes(storage.join(uri, "circle", "0000.png"), (src / "square" / "0001.jpg").read_bytes())
    assert fingerprint_source(f"folder:{uri}") != first, "a replaced image changes the key"
    assert fingerprint_source("demo") == fingerprint_source("demo") != fingerprint_source("tfds:cifar10")
    with pytest.raises(UsageError, match="no files found"):
        fingerprint_source(f"folder:{tmp_path / 'nothing'}")


def test_a_messy_folder_hidden_entries_split_aliases_and_names_that_need_escaping(tmp_path):
    """What a real folder holds besides images: hidden entries (never a class, never read, no part of the
    cache key), split folders by their other names, a misspelled split, a class named with Markdown."""
    src = tmp_path / "images"
    make_image_folder(src / "Training", {"": 4}, classes=["circle", "a|b_*c*"])
    make_image_folder(src / "val", {"": 2}, classes=["circle", "a|b_*c*"])
    make_image_folder(src / "tset", {"": 2}, classes=["circle", "a|b_*c*"])
    image = (src / "Training" / "circle" / "0001.jpg").read_bytes()
    for hidden in (".ipynb_checkpoints", ".git/objects/ab", "Training/.thumbnails", "Training/circle/.cache"):
        (src / hidden).mkdir(parents=True)
        (src / hidden / "copy.jpg").write_bytes(image)
    (src / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (src / "Training" / "circle" / "._0001.jpg").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
    key = fingerprint_source(f"folder:{src}")
    notes = check_source(f"folder:{src}")
    assert notes == [
        "folder Training/ read as the train split",
        "folder val/ read as the validation split",
        "folder tset/ is not a split (train (train/training), validation (validation/valid/val/dev), "
        "test (test/testing)) and was left out: did you mean test?",
    ]
    info = prepare_data(DataConfig(f"folder:{src}"), str(tmp_path / "data"))
    assert info.class_names == ["a|b_*c*", "circle"]
    assert info.examples == {"train": 6, "validation": 4, "test": 2}, "test carved from train, tset not read"
    assert info.extra["skipped"] == {}, "hidden files are not even counted as skipped"
    write_card(info, str(tmp_path / "card.md"), str(tmp_path / "data"))
    card = (tmp_path / "card.md").read_text()
    assert "| a\\|b\\_\\*c\\* | 3 | 2 | 1 |" in card, "one cell, read literally"
    assert "- folder tset/ is not a split" in card and "did you mean test?" in card
    (src / ".DS_Store").write_bytes(b"changed by the Finder")
    (src / ".git" / "objects" / "ab" / "new").write_bytes(b"a commit")
    assert fingerprint_source(f"folder:{src}") == key, "hidden files are no new data"


def test_header_sizes_are_the_decoded_sizes_in_every_format(tmp_path):
    """The pixel limit reads sizes from headers: they must be what the decode gives, in each format
    TensorFlow decodes, and the header alone must do (no decode: a decompression bomb costs nothing)."""
    rng = np.random.default_rng(3)
    cases = []
    for fmt, options in (
        ("JPEG", {}),
        ("JPEG", {"progressive": True, "icc_profile": bytes(70_000)}),  # frame header past 64 KiB
        ("PNG", {}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
        ("WEBP", {"exif": b"Exif\x00\x00" + bytes(100)}),  # the extended format (VP8X)
    ):
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (37, 61, 3), dtype=np.uint8)).save(out, fmt, **options)
        cases.append((fmt, out.getvalue()))
    for fmt, data in cases:
        decoded = tf.io.decode_image(data, channels=3, expand_animations=False).shape[:2]
        assert image_check.header_size(data) == tuple(decoded) == (37, 61), fmt
        (tmp_path / "image").write_bytes(data)
        assert image_check._file_header_size(str(tmp_path / "image")) == (37, 61), fmt
    png = cases[2][1]
    assert image_check.header_size(png[:20]) is None, "cut inside its header"
    assert image_check.header_size(png[:16] + b"\xff" + png[17:]) is None, "IHDR checksum wrong"
    assert image_check.header_size(b"just text") is None


def _png_bomb(height: int, width: int) -> bytes:
    """A real PNG of ``height`` x ``width`` black pixels: a few hundred kilobytes that decode to
    height x width x 3 bytes."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + 3 * width)  # filter byte 0, then the row's pixels
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


# The peak from VmHWM, this process's own: ru_maxrss would start at the forking pytest's.
_MEASURE_PEAK = """
import json, re, sys
from pathlib import Path
from trainboard.components.prepare_data.core import prepare_data
from trainboard.config import DataConfig
peaks = []
for limit, out in ((None, "gated"), (200_000_000, "decoded")):
    options = {} if limit is None else {"max_image_pixels": limit}
    info = prepare_data(DataConfig("folder:" + sys.argv[1], **options), sys.argv[2] + "/" + out)
    peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1]) // 1024
    peaks.append((info.extra["skipped"], peak))
print(json.dumps(peaks))
"""


def test_an_image_over_the_pixel_limit_is_skipped_undecoded(tmp_path):
    """A decompression bomb, 12,000 x 12,000 px (144 MP, 432 MB decoded) in a PNG of a few hundred KB:
    skipped at the default limit (40 MP) and counted in the card, and the peak memory shows it was never
    decoded: the same run with the limit raised above it decodes it and peaks hundreds of MB higher."""
    src = tmp_path / "images"
    make_image_folder(src, {"": 4}, classes=["circle", "square"])
    bomb = _png_bomb(12_000, 12_000)
    assert len(bomb) < 1_000_000
    (src / "square" / "bomb.png").write_bytes(bomb)
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE_PEAK, str(src), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    (gated_skipped, gated_peak), (decoded_skipped, decoded_peak) = json.loads(result.stdout.splitlines()[-1])
    assert gated_skipped == {"larger than 40 megapixels (max_image_pixels)": 1}
    assert decoded_skipped == {}
    assert decoded_peak - gated_peak > 300, (gated_peak, decoded_peak)
    info = read_info(tmp_path / "gated")
    write_card(info, str(tmp_path / "card.md"), str(tmp_path / "gated"))
    card = (tmp_path / "card.md").read_text()
    assert "- 1 larger than 40 megapixels (max_image_pixels): square/bomb.png" in card


class OfflineShapes(tfds.core.GeneratorBasedBuilder):
    """A registered TFDS dataset generated without any download (the demo's shapes), to prepare in a
    tfds_data_dir as a machine with network would have."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        features = {
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(names=demo.CLASS_NAMES),
        }
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 16), "test": self._generate_examples(1, 8)}

    def _generate_examples(self, seed: int, count: int):
        rng = np.random.default_rng(seed)
        for i in range(count):
            yield i, {"image": demo.draw(rng, i % 4, size=32), "label": i % 4}


def test_tfds_offline_is_known_at_once_and_a_prepared_dataset_still_works(tmp_path, monkeypatch):
    """Offline, a dataset not prepared in tfds_data_dir is refused in seconds (TFDS would retry its
    download for minutes); one already prepared there is read without any network."""
    prepared = tmp_path / "tfds"
    OfflineShapes(data_dir=str(prepared)).download_and_prepare()
    monkeypatch.setenv("TRAINBOARD_OFFLINE", "1")
    started = time.monotonic()
    for check in (
        lambda: check_source("tfds:mnist", str(tmp_path / "empty")),
        lambda: prepare_data(
            DataConfig("tfds:mnist", tfds_data_dir=str(tmp_path / "empty")), str(tmp_path / "out")
        ),
    ):
        with pytest.raises(UsageError) as error:
            check()
        assert error.value.field == "dataset"
        assert f"tfds:mnist is not prepared in {tmp_path / 'empty'}/mnist/" in error.value.problem
        assert "TRAINBOARD_OFFLINE is set (no network)" in error.value.problem
    assert time.monotonic() - started < 10
    assert not (tmp_path / "out").exists()
    assert check_source("tfds:offline_shapes", str(prepared)) == []
    info = prepare_data(
        DataConfig("tfds:offline_shapes", tfds_data_dir=str(prepared)), str(tmp_path / "data")
    )
    assert info.examples == {"train": 12, "validation": 4, "test": 8}


def test_tfds_data_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not a folder")
    for data_dir in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "tfds"):
        with pytest.raises(UsageError) as error:
            check_source("tfds:mnist", str(data_dir))
        assert error.value.field == "tfds_data_dir"
        assert error.value.problem.startswith(f"{tmp_path / 'notes.txt'} is a file, not a folder")


def _with_class(tmp_path, name: str, files: dict[str, bytes]) -> Path:
    """Two healthy classes of 6 images, and class ``name`` holding ``files``."""
    src = tmp_path / "images"
    make_image_folder(src, {"": 6}, classes=["circle", "square"])
    (src / name).mkdir()
    for file, data in files.items():
        (src / name / file).write_bytes(data)
    return src


def _refused(dataset: str, out: Path, **options) -> str:
    """The problem check_source and prepare_data both refuse ``dataset`` with, before anything is written."""
    problems = []
    for check in (
        lambda: check_source(dataset, **options),
        lambda: prepare_data(DataConfig(dataset, **options), str(out)),
    ):
        with pytest.raises(UsageError) as error:
            check()
        assert error.value.field == "dataset"
        problems.append(error.value.problem)
    assert not out.exists()
    assert problems[0] == problems[1]
    return problems[0]


def test_a_class_too_small_for_the_carved_splits_is_refused_naming_it(tmp_path):
    image = encode(demo.draw(np.random.default_rng(0), 0, size=40), "png")
    src = _with_class(tmp_path, "dot", {"0.png": image, "1.png": image})
    problem = _refused(f"folder:{src}", tmp_path / "out")
    assert (
        "class 'dot' has 2 images; carving test (0.1) and validation (0.1) out of each class needs at "
        in problem
    )
    assert "least 3 images in every class" in problem
    problem = _refused(f"folder:{src}", tmp_path / "out", validation_fraction=0.5, test_fraction=0.4)
    assert "class 'dot' has 2 images" in problem and "needs at least 5 images" in problem
    (src / "dot" / "1.png").unlink()
    assert "class 'dot' has 1 image;" in _refused(f"folder:{src}", tmp_path / "out")


@pytest.mark.parametrize(("validation", "test"), [(0.1, 0.1), (0.2, 0.1), (0.45, 0.45), (0.05, 0.3)])
def test_the_class_size_check_agrees_with_the_carving(validation, test):
    """What check_folder computes from the counts is what complete_splits then does with the files."""
    for count in range(1, 25):
        carved = folder_checks.carve_fractions({"train"}, validation, test)
        plan = Plan([Example(f"{i}.png", 0, f"{i}.png", "train") for i in range(count)], ["only"])
        complete_splits(plan, validation, test, seed=0)
        splits = {example.split for example in plan.examples}
        assert folder_checks._leaves_each_split_one(count, carved) == (
            splits == {"train", "validation", "test"}
        )


def test_a_class_of_files_that_are_not_images_is_refused_from_their_headers(tmp_path, monkeypatch):
    """All of a class's files fail the header check: refused before work. A healthy class costs one batch
    of header reads however large; a file cut after a sound header is left to the decode."""
    files = {"0.jpg": b"\xff\xd8\xff not a JPEG", "1.png": b"<html>saved page</html>", "2.gif": b""}
    src = _with_class(tmp_path, "dot", files)
    make_image_folder(src, {"": 100}, classes=["circle"], seed=1)  # a large healthy class
    read = []
    monkeypatch.setattr(folder_checks, "usable_size", lambda uri: read.append(uri) or usable_size(uri))
    problem = _refused(f"folder:{src}", tmp_path / "out")
    assert problem.endswith(
        "class 'dot' has no usable training images: none of its 3 files has the header of a .jpg, .jpeg, "
        ".png, .bmp, .gif image of at least 8x8 px; replace them or remove the folder"
    )
    assert sum("/circle/" in uri for uri in read) <= 2 * folder_checks._HEADER_BATCH  # twice: two checks
    whole = (src / "square" / "0001.jpg").read_bytes()
    for name in files:
        (src / "dot" / name).unlink()
    for i in range(3):
        (src / "dot" / f"{i}.jpg").write_bytes(whole[: len(whole) // 2])  # header sound, data cut
    check_source(f"folder:{src}")  # not found before work: only decoding tells
    with pytest.raises(UsageError, match="class 'dot' has no usable training images; each must decode"):
        prepare_data(DataConfig(f"folder:{src}"), str(tmp_path / "out"))


def test_a_bucket_class_of_non_images_and_a_missing_bucket_are_refused(gcs, tmp_path):
    src = _with_class(tmp_path, "dot", {"0.jpg": b"not an image", "1.jpg": b"", "2.png": b"\x89PNG"})
    storage.upload_dir(src, f"gs://{BUCKET}/images")
    problem = _refused(f"folder:gs://{BUCKET}/images", tmp_path / "out")
    assert "class 'dot' has no usable training images: none of its 3 files" in problem
    missing = "folder:gs://missing-bucket/images"
    problem = _refused(missing, tmp_path / "out")
    assert problem.startswith(f"{missing}: nothing there: bucket missing-bucket does not exist")
    with pytest.raises(UsageError, match="bucket missing-bucket does not exist"):
        fingerprint_source(missing)


def test_names_hiding_text_or_written_twice_and_unsupported_types_are_refused(tmp_path):
    image = encode(demo.draw(np.random.default_rng(0), 0, size=40), "png")
    images = {f"{i}.png": image for i in range(4)}
    src = _with_class(tmp_path / "bidi", "dot\u202egnp.exe", images)
    problem = _refused(f"folder:{src}", tmp_path / "out")
    assert "the folder name 'dot\\u202egnp.exe' holds U+202E, invisible formatting (such as a" in problem
    src = _with_class(tmp_path / "twice", "caf\u00e9", images)
    (src / "cafe\u0301").mkdir()
    (src / "cafe\u0301" / "0.png").write_bytes(image)
    problem = _refused(f"folder:{src}", tmp_path / "out")
    assert "folders 'cafe\\u0301' and 'caf\\xe9' are the same name in two Unicode forms" in problem
    webp = io.BytesIO()
    Image.fromarray(demo.draw(np.random.default_rng(0), 1, size=40)).save(webp, "WEBP")
    src = _with_class(tmp_path / "webp", "dot", {f"{i}.webp": webp.getvalue() for i in range(3)})
    problem = _refused(f"folder:{src}", tmp_path / "out")
    assert problem.endswith(
        "class folder train/dot holds 3 files of which none is a supported image: not a supported image type "
        "(webp); allowed: .jpg, .jpeg, .png, .bmp, .gif"
    )
    assert "no images" not in problem
