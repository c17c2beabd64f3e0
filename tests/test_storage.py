"""The storage layer on a local directory and on a real GCS API (fake-gcs-server)."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from tests.support.forbidden_gcs import ForbiddenGCS
from tests.support.gcs import BUCKET
from tests.support.restricted import without_read_override
from tests.support.upload_memory import upload_peak_rss
from trainboard import layout, storage


def test_write_read_list_exists(root):
    a, b = storage.join(root, "a.txt"), storage.join(root, "sub", "b.bin")
    assert not storage.exists(a)
    storage.write_bytes(a, b"hello")
    storage.write_bytes(b, bytes(range(256)))
    assert storage.read_bytes(a) == b"hello"
    assert storage.read_bytes(b) == bytes(range(256))
    assert storage.exists(a)
    assert storage.list_files(root) == sorted([a, b])
    assert storage.list_files(storage.join(root, "sub")) == [b]


def test_hidden_entries_are_listed_only_when_asked_for(root):
    shown = [storage.join(root, "cats", "a.jpg"), storage.join(root, "cats.d", "b.jpg")]
    hidden = [storage.join(root, ".git", "HEAD"), storage.join(root, "cats", ".DS_Store")]
    for uri in shown + hidden:
        storage.write_bytes(uri, b"x")
    assert storage.list_files(root) == sorted(shown + hidden)
    assert storage.list_files(root, skip_hidden=True) == sorted(shown)
    assert sorted(storage.list_versions(root, skip_hidden=True)) == ["cats.d/b.jpg", "cats/a.jpg"]
    assert len(storage.list_versions(root)) == 4


def test_links_are_followed_and_a_loop_is_named(tmp_path):
    (tmp_path / "images" / "cats").mkdir(parents=True)
    (tmp_path / "images" / "cats" / "a.jpg").write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "b.jpg").write_bytes(b"y")
    (tmp_path / "images" / "dogs").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "images" / "cats" / "same").symlink_to(tmp_path / "elsewhere")  # twice: no loop
    listed = storage.list_files(str(tmp_path / "images"))
    assert [uri[len(str(tmp_path)) :] for uri in listed] == [
        "/images/cats/a.jpg",
        "/images/cats/same/b.jpg",
        "/images/dogs/b.jpg",
    ]
    assert sorted(storage.list_versions(str(tmp_path / "images"))) == [
        "cats/a.jpg",
        "cats/same/b.jpg",
        "dogs/b.jpg",
    ]
    (tmp_path / "elsewhere" / "up").symlink_to(tmp_path / "images")  # images/dogs/up/dogs/up/...
    with pytest.raises(storage.SymlinkLoop) as loop:
        storage.list_files(str(tmp_path / "images"))
    assert loop.value.path.endswith("/up")
    (tmp_path / "elsewhere" / "up").unlink()
    (tmp_path / "images" / "me").symlink_to("me")  # no folder at all: the kernel's ELOOP
    with pytest.raises(storage.SymlinkLoop, match="images/me is a symbolic link"):
        storage.list_versions(str(tmp_path / "images"))


def test_sync_dir_beside_a_writer_leaves_its_temporary_file_alone(tmp_path):
    """A local write goes through a temporary file then a rename; a sync_dir of the same folder running
    at that moment (two promotions) must neither list nor delete it."""
    source, dest = tmp_path / "source", tmp_path / "dest"
    storage.write_bytes(str(source / "model.keras"), b"model")
    in_flight = dest / ".trainboard-123-456.tmp"  # another writer's, between its write and its rename
    in_flight.parent.mkdir(parents=True)
    in_flight.write_bytes(b"half")
    storage.sync_dir(str(source), str(dest))
    assert storage.list_files(str(dest)) == [str(dest / "model.keras")]
    assert in_flight.read_bytes() == b"half"


def test_upload_and_download_dir(root, tmp_path):
    src = tmp_path / "src"
    (src / "x").mkdir(parents=True)
    (src / "x" / "f").write_bytes(b"1" * 1000)
    (src / "g").write_bytes(b"2")
    storage.upload_dir(src, storage.join(root, "d"))
    back = storage.download_dir(storage.join(root, "d"), tmp_path / "back")
    assert (back / "x" / "f").read_bytes() == b"1" * 1000
    assert (back / "g").read_bytes() == b"2"


def test_mirror_sends_only_new_bytes(root, tmp_path):
    logs = tmp_path / "logs"
    (logs / "train").mkdir(parents=True)
    event = logs / "train" / "events.out.tfevents.1"
    mirror = storage.DirectoryMirror(logs, storage.join(root, "tb"))
    expected = b""
    for i in range(5):
        chunk = bytes([i]) * (100 + i)
        expected += chunk
        with event.open("ab") as f:
            f.write(chunk)
        assert mirror.sync() == len(chunk)
        assert storage.read_bytes(storage.join(root, "tb", "train", "events.out.tfevents.1")) == expected
    assert mirror.sync() == 0, "nothing changed, nothing sent"
    assert mirror.bytes_uploaded == len(expected)
    # No leftovers of the incremental upload.
    assert storage.list_files(storage.join(root, "tb")) == [
        storage.join(root, "tb", "train", "events.out.tfevents.1")
    ]


def test_the_facade_hands_each_uri_to_the_backend_of_its_scheme(tmp_path, monkeypatch):
    local_file = str(tmp_path / "f")
    assert storage.backends.backend_for(f"gs://{BUCKET}/f") is storage.gcs
    assert storage.backends.backend_for(local_file) is storage.local
    calls = []
    for backend in (storage.gcs, storage.local):
        for name in ("write_bytes", "read_bytes", "exists", "list_files"):
            monkeypatch.setattr(backend, name, lambda uri, *_, b=backend, n=name: calls.append((b, n, uri)))
    for uri in (f"gs://{BUCKET}/f", local_file):
        storage.write_bytes(uri, b"x")
        storage.read_bytes(uri)
        storage.exists(uri)
        storage.list_files(uri)
    ops = ["write_bytes", "read_bytes", "exists", "list_files"]
    assert calls == [(storage.gcs, n, f"gs://{BUCKET}/f") for n in ops] + [
        (storage.local, n, local_file) for n in ops
    ]


def test_an_injected_client_serves_every_gs_operation(gcs, monkeypatch):
    """Without STORAGE_EMULATOR_HOST the default client would go to real GCS; the injected one, made here
    for the emulator, is the one used."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.storage import Client

    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    injected = Client(
        credentials=AnonymousCredentials(), project="injected", client_options={"api_endpoint": gcs.url}
    )
    storage.gcs.set_client(injected)
    try:
        assert storage.gcs.client() is injected
        uri = f"gs://{BUCKET}/injected/a.txt"
        storage.write_bytes(uri, b"through the injected client")
        assert storage.read_bytes(uri) == b"through the injected client"
        assert storage.list_files(f"gs://{BUCKET}/injected") == [uri]
    finally:
        storage.gcs.set_client(None)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    assert storage.gcs.client() is not injected, "None: back to the default client"


def test_check_uri_normalises():
    assert storage.check_uri("gs://bucket/a/b/") == "gs://bucket/a/b"
    assert storage.check_uri("gs://bucket") == "gs://bucket"
    assert storage.check_uri("rel/dir").endswith("/rel/dir")


def test_run_names_sort_by_time_and_are_unique():
    names = [layout.new_run_name() for _ in range(50)]
    assert len(set(names)) == 50
    assert layout.new_run_name("ABCDEF0123456789").endswith("-abcdef01")
    assert layout.tensorboard_dir("gs://b/r", names[0]) == f"gs://b/r/tensorboard/{names[0]}"


def test_the_mirror_uploads_a_large_event_file_and_its_appends_in_bounded_memory(gcs, tmp_path):
    """128 MiB, then 64 MiB appended: streamed in chunks, never held whole (that took 400+ MiB)."""
    import google_crc32c

    target = f"gs://{BUCKET}/up/tensorboard"
    peak = upload_peak_rss(tmp_path / "logs", target, 128, 64, gcs.env())
    blob = storage.gcs.client().bucket(BUCKET).get_blob("up/tensorboard/train/events.out.tfevents.1")
    local = tmp_path / "logs" / "train" / "events.out.tfevents.1"
    assert blob.size == local.stat().st_size == 192 * 2**20
    crc = google_crc32c.Checksum()
    with local.open("rb") as f:
        while chunk := f.read(2**20):
            crc.update(chunk)
    assert blob.crc32c == base64.b64encode(crc.digest()).decode(), "every byte, in order"
    assert storage.list_files(target) == [f"{target}/train/events.out.tfevents.1"], "no part left behind"
    # The interpreter and the Google client take about 60-70 MiB.
    assert peak < 150 * 2**20, f"peak RSS {peak / 2**20:.0f} MiB uploading 128 + 64 MiB"


def test_a_prefix_the_credentials_cannot_list_is_a_permission_error_naming_it(monkeypatch):
    with ForbiddenGCS() as server:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        storage.gcs.set_client(None)
        try:
            for look in (storage.folder_exists, storage.list_files, storage.list_versions):
                with pytest.raises(
                    PermissionError, match=r"^gs://b-team/runs: these credentials may not list"
                ):
                    look("gs://b-team/runs")
        finally:
            storage.gcs.set_client(None)


def test_a_local_folder_this_user_cannot_read_is_a_permission_error_not_an_empty_listing(tmp_path):
    folder = tmp_path / "runs"
    (folder / "run").mkdir(parents=True)
    (folder / "run" / "events.out.tfevents.1").write_bytes(b"e")
    folder.chmod(0)
    code = (
        "import sys; from trainboard import storage\n"
        "for look in (storage.folder_exists, storage.list_files):\n"
        "    try: look(sys.argv[1])\n"
        "    except PermissionError as e: print(type(e).__name__, e.filename)\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code, str(folder)],
            capture_output=True, text=True, preexec_fn=without_read_override, check=True,
        ).stdout  # fmt: skip
    finally:
        folder.chmod(0o755)
    assert out.splitlines() == [f"PermissionError {folder}"] * 2
