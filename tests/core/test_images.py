"""core.images.check_jpeg_complete: a JPEG cut short is refused (its header alone still reads);
a complete one passes, padding after its end-of-image marker included; files are told apart by
their first bytes, not their names, and anything but a JPEG stream is left alone."""
import io

import numpy as np
import pytest
from PIL import Image

from core.images import TruncatedJPEG, check_jpeg_complete


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
