"""The TensorBoard pod's sidecar: a bucket prefix mirrored into a folder, fetching only what changed."""

from __future__ import annotations

from tests.support.gcs import BUCKET
from trainboard import storage
from trainboard.storage import BucketMirror


def test_mirror_fetches_new_files_then_only_new_tails_then_drops_deleted(gcs, tmp_path):
    training = tmp_path / "training"
    (training / "run" / "train").mkdir(parents=True)
    event_file = training / "run" / "train" / "events.out.tfevents.1"
    event_file.write_bytes(b"epoch-0;")
    uploader = storage.DirectoryMirror(training, f"gs://{BUCKET}/root/tensorboard")
    uploader.sync()
    mirror = BucketMirror(f"gs://{BUCKET}/root/tensorboard", tmp_path / "logs")
    copy = tmp_path / "logs" / "run" / "train" / "events.out.tfevents.1"

    assert mirror.sync() == len(b"epoch-0;")
    assert copy.read_bytes() == b"epoch-0;"
    assert mirror.sync() == 0, "nothing changed, nothing fetched"

    with event_file.open(
        "ab"
    ) as f:  # the next epoch: training appends, the uploader composes onto the object
        f.write(b"epoch-1;")
    uploader.sync()
    assert mirror.sync() == len(b"epoch-1;"), "only the new tail"
    assert copy.read_bytes() == b"epoch-0;epoch-1;"
    assert [p.name for p in copy.parent.iterdir()] == [copy.name], "no partial file left behind"

    storage.gcs.client().bucket(BUCKET).blob("root/tensorboard/run/train/events.out.tfevents.1").delete()
    assert mirror.sync() == 0
    assert not copy.exists()
