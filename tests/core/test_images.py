"""core.images.check_jpeg_complete: a JPEG cut short is refused (its header alone still reads);
a complete one passes, padding after its end-of-image marker included; files are told apart by
their first bytes, not their names, and anything but a JPEG stream is left alone."""
import io

import numpy as np
import pytest
from PIL import Image

from core.images import TruncatedJPEG, check_jpeg_complete, jpeg_image_ends


def encoded(fmt: str) -> bytes:
    """A 64x80 noise image (large enough that the end-of-image marker lies > 4 KB from the start)."""
    pixels = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buf.getvalue()


def test_complete_jpeg_passes_with_and_without_trailing_padding(tmp_path):
    data = encoded("JPEG")
    assert data.endswith(b"\xff\xd9")
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(data)
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(data + b"\x00" * 1000)  # some writers pad after the end-of-image marker
    assert check_jpeg_complete(plain) is None
    assert check_jpeg_complete(padded) is None


@pytest.mark.parametrize("name", ["cut.jpg", "cut.png", "cut"])
def test_truncated_jpeg_is_refused_whatever_its_name(tmp_path, name):
    data = encoded("JPEG")
    cut = data[: len(data) * 2 // 3]
    path = tmp_path / name
    path.write_bytes(cut)
    with Image.open(path) as im:  # the header check the callers already had lets it through
        assert im.size == (80, 64)
    with pytest.raises(TruncatedJPEG) as info:
        check_jpeg_complete(path)
    err = info.value
    assert (err.path, err.size, err.searched) == (path, len(cut), min(4096, len(cut) - 2))
    assert str(err) == f"no end-of-image marker in its last {min(4096, len(cut) - 2)} bytes of {len(cut)}"


def test_jpeg_cut_right_before_its_end_marker_is_refused(tmp_path):
    data = encoded("JPEG")
    path = tmp_path / "a.jpg"
    path.write_bytes(data[:-2])
    with pytest.raises(TruncatedJPEG):
        check_jpeg_complete(path)
    path.write_bytes(data[:-1])  # half a marker is no marker
    with pytest.raises(TruncatedJPEG):
        check_jpeg_complete(path)


def test_other_files_are_left_to_the_header_check(tmp_path):
    png = encoded("PNG")
    path = tmp_path / "cut_png.jpg"  # a PNG cut short, named like a JPEG: not a JPEG stream
    path.write_bytes(png[: len(png) // 2])
    assert check_jpeg_complete(path) is None
    text = tmp_path / "x.jpg"
    text.write_bytes(b"not an image")
    assert check_jpeg_complete(text) is None
    with pytest.raises(FileNotFoundError):
        check_jpeg_complete(tmp_path / "missing.jpg")


def _with_thumbnail(main: bytes, thumb: bytes) -> bytes:
    """``main`` with an APP1 (EXIF-style) segment holding the JPEG ``thumb`` right after its
    start marker, as cameras write them: a second end-of-image marker early in the file."""
    body = b"Exif\x00\x00" + thumb
    return main[:2] + b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body + main[2:]


@pytest.mark.parametrize("progressive", [False, True])
def test_only_the_whole_stream_reaches_its_end_marker(progressive):
    """Every proper prefix of a JPEG (baseline or progressive, with restart markers, with an
    embedded thumbnail that has its own end marker) is cut short; the whole file, and the file
    with data appended after it, are not."""
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(
        buf, format="JPEG", quality=90, progressive=progressive, restart_marker_blocks=2)
    thumb = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(thumb, format="JPEG")
    data = _with_thumbnail(buf.getvalue(), thumb.getvalue())
    with Image.open(io.BytesIO(data)) as im:                # a valid file, for Pillow too
        im.load()
    assert data.count(b"\xff\xd9") >= 2
    assert jpeg_image_ends(data) and jpeg_image_ends(data + bytes(range(256)) * 40)
    assert [n for n in range(2, len(data)) if jpeg_image_ends(data[:n])] == []


def test_complete_jpeg_with_a_long_trailer_passes_a_cut_one_with_a_thumbnail_does_not(tmp_path):
    data = encoded("JPEG")
    path = tmp_path / "trailer.jpg"
    path.write_bytes(data + b"\x00" * 10_000)   # e.g. appended camera data: the end marker is
    check_jpeg_complete(path)                 # far from the end, but the image is whole
    thumb = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(thumb, format="JPEG")
    full = _with_thumbnail(data, thumb.getvalue())
    thumb_end = full.index(b"\xff\xd9") + 2
    cuts = list(range(thumb_end, len(full), 300)) + [len(full) - 1]
    assert any(len(full[:c]) - full[:c].rfind(b"\xff\xd9") <= 4096 for c in cuts)
    for cut in cuts:                          # the thumbnail's own end marker does not count,
        path.write_bytes(full[:cut])          # even within the last 4096 bytes
        with pytest.raises(TruncatedJPEG):
            check_jpeg_complete(path)
    path.write_bytes(full)
    check_jpeg_complete(path)
