"""Image sizes from file headers, without decoding: prepare_data's image check reads them to leave out
images over max_image_pixels undecoded, and check_source to find, before any work, a class none of whose
files is an image (usable_size). TensorFlow-free: pure Python, with Pillow where the JPEG walk gives up."""

from __future__ import annotations

import io
import os
import struct
import zlib

from PIL import Image, UnidentifiedImageError

from trainboard import storage

JPEG = b"\xff\xd8\xff"
PNG = b"\x89PNG\r\n\x1a\n"
MIN_IMAGE_SIDE = 8  # smaller images carry no usable signal for these models
# Read first from a local file to find its size: every format's header but a JPEG's that follows long
# metadata (EXIF, ICC profiles), for which the read goes on, 16 times as much each time. A system call
# on a few pages: 7 us an image with the parse, where a buffered open() of 64 KiB took 11.
HEAD_BYTES = 4096
_START_OF_FRAME = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn markers (not DHT, JPG, DAC)
_NO_LENGTH = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: markers without a segment


def header_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from the header of a JPEG, PNG, GIF, BMP or WebP (what TensorFlow decodes), without
    decoding it; None where the header does not tell (another format, cut or corrupt, or a JPEG whose
    segments the walk cannot follow: the caller decides what that JPEG is)."""
    try:
        if data.startswith(JPEG):
            return jpeg_walk(data)
        if data.startswith(PNG) and data[12:16] == b"IHDR" and len(data) >= 33:
            # Only with its checksum right: libpng refuses a corrupt IHDR, so must this.
            if zlib.crc32(data[12:29]) == int.from_bytes(data[29:33]):
                width, height = struct.unpack_from(">II", data, 16)
                return height, width
        elif data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 10:
            width, height = struct.unpack_from("<HH", data, 6)  # the logical screen, which GIF decodes to
            return height, width
        elif data.startswith(b"BM") and len(data) >= 26:
            width, height = struct.unpack_from("<ii", data, 18)
            return abs(height), abs(width)  # a negative height: rows stored top-down
        elif data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            return _webp_size(data)
    except struct.error:  # cut inside its header
        return None
    return None


def jpeg_walk(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's frame header, found by walking the few segments before it."""
    at = 2
    while at + 9 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker in _START_OF_FRAME:
            height, width = struct.unpack_from(">HH", data, at + 5)
            if height and width:
                return height, width
            break  # the height comes later (DNL): leave it to libjpeg
        if marker == 0xFF:  # a fill byte
            at += 1
        else:
            at += 2 if marker in _NO_LENGTH else 2 + int.from_bytes(data[at + 2 : at + 4])
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """The canvas of an extended WebP, else the frame of a lossy (VP8) or lossless (VP8L) one."""
    if len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return int.from_bytes(data[27:30], "little") + 1, int.from_bytes(data[24:27], "little") + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack_from("<HH", data, 26)
        return height & 0x3FFF, width & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    return None


def read_head(path: str) -> bytes:
    """The beginning of a local file, enough for header_size: longer for a JPEG whose frame header is
    not in the first HEAD_BYTES (the whole file where the walk never finds it). OSError when unreadable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        head = os.read(fd, HEAD_BYTES)
        while head.startswith(JPEG) and jpeg_walk(head) is None:
            more = os.read(fd, 15 * len(head))
            if not more:
                break
            head += more
    finally:
        os.close(fd)
    return head


def usable_size(uri: str) -> bool:
    """Whether the file's header is that of an image at least MIN_IMAGE_SIDE px a side. Only the header:
    a file cut or corrupt after it passes here, and the full decode in prepare_data finds it."""
    try:
        # An object is read whole: one request either way (a ranged read of an empty object fails).
        data = storage.read_bytes(uri) if storage.is_gcs(uri) else read_head(uri)
    except OSError:  # unreadable: not an image here, and prepare_data's read would fail too
        return False
    size = header_size(data)
    if size is None and data.startswith(JPEG):  # segments the walk cannot follow (stray bytes): Pillow's
        try:
            width, height = Image.open(io.BytesIO(data)).size  # parses the header, decodes nothing
            size = height, width
        except (UnidentifiedImageError, OSError, SyntaxError):
            return False
    return size is not None and min(size) >= MIN_IMAGE_SIDE
