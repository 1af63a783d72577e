"""The direct label-map PNG decoder (benchmarks/davis/png.py) against Pillow: the same array for
every file it decodes, ``None`` (Pillow decides) for every file outside its layout, and
read_index_png's results and errors unchanged either way."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from benchmarks.davis import png
from benchmarks.davis.io import DavisError, image_size, read_index_png, write_index_png


def _labels(h, w, seed, ids=4):
    """Blocky label maps like annotations: a few rectangles of ids on background, some void."""
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), np.uint8)
    for k in range(1, ids + 1):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        m[y0:y0 + rng.integers(1, h + 1), x0:x0 + rng.integers(1, w + 1)] = k
    m[rng.random((h, w)) < 0.01] = 255
    return m


def _chunks(data):
    """[(type, body)] of a PNG file, parsed here independently of the module."""
    pos, out = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        out.append((kind, data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def _chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _handmade(rows_with_filters, width, colour=3, depth=8, interlace=0):
    """A PNG built from raw scanlines (filter byte + pixels), for layouts Pillow will not write."""
    h = len(rows_with_filters)
    body = png.SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, h, depth, colour, 0, 0, interlace))
    if colour == 3:
        body += _chunk(b"PLTE", bytes(range(256)) * 3)
    return body + _chunk(b"IDAT", zlib.compress(b"".join(rows_with_filters))) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("h,w,seed", [(480, 854, 0), (1, 1, 1), (3, 5, 2), (37, 1, 3), (1, 91, 4), (241, 427, 5)])
def test_unfiltered_palette_and_grey_files_decode_to_pillows_array(tmp_path, h, w, seed):
    m = _labels(h, w, seed)
    p_path, l_path = tmp_path / "p.png", tmp_path / "l.png"
    write_index_png(p_path, m)              # "P" by Pillow, as annotations and predictions are
    l_path.write_bytes(_handmade([b"\0" + row.tobytes() for row in m], w, colour=0))  # grey, unfiltered
    for path, mode in ((p_path, "P"), (l_path, "L")):
        with Image.open(path) as im:
            assert im.mode == mode
            expected = np.array(im)
        got = png.decode_label_png(path.read_bytes())
        assert got is not None, f"{mode} file fell back to Pillow"
        assert got[1] == mode
        np.testing.assert_array_equal(got[0], expected)
        assert got[0].dtype == np.uint8 and got[0].flags.c_contiguous
        assert png.png_size(path.read_bytes()[:33]) == (h, w) == image_size(path, "annotation")
    # Pillow filters the rows of grey files it writes: those go to Pillow, same array
    Image.fromarray(m).save(l_path)
    got = png.decode_label_png(l_path.read_bytes())
    assert got is None or np.array_equal(got[0], m)
    np.testing.assert_array_equal(read_index_png(l_path, "prediction", allow_grey=True), m)


def test_several_idat_chunks_and_both_inflaters_agree(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    m = rng.integers(0, 256, size=(600, 700), dtype=np.uint8)   # incompressible: Pillow splits IDAT
    path = tmp_path / "noise.png"
    write_index_png(path, m)
    data = path.read_bytes()
    assert sum(kind == b"IDAT" for kind, _ in _chunks(data)) > 1
    with Image.open(path) as im:
        expected = np.array(im)
    np.testing.assert_array_equal(png.decode_label_png(data)[0], expected)
    monkeypatch.setattr(png, "_inflate_lib", zlib)              # the stdlib fallback
    np.testing.assert_array_equal(png.decode_label_png(data)[0], expected)


def test_layouts_outside_the_fast_path_go_to_pillow_with_the_same_result(tmp_path):
    m = _labels(20, 30, 9)
    # rows filtered with "Sub" (type 1): Pillow unfilters them; the decoder declines
    sub = [bytes([1]) + bytes(np.diff(row, prepend=np.uint8(0)).astype(np.uint8)) for row in m]
    cases = {
        "sub_filter.png": _handmade(sub, 30),
        "interlaced.png": _handmade([b"\0" + row.tobytes() for row in m], 30, interlace=1),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert png.decode_label_png(data) is None, name
    with Image.open(tmp_path / "sub_filter.png") as im:
        np.testing.assert_array_equal(np.array(im), m)         # the hand-made file is valid
    np.testing.assert_array_equal(read_index_png(tmp_path / "sub_filter.png"), m)
    # 4-bit palette: Pillow unpacks to one index per pixel
    small = (m % 16).astype(np.uint8)
    im = Image.fromarray(small)
    im.putpalette(list(range(48)))
    im.save(tmp_path / "bits4.png", bits=4)
    data = (tmp_path / "bits4.png").read_bytes()
    assert _chunks(data)[0][1][8] == 4                         # the file is 4-bit
    assert png.decode_label_png(data) is None
    np.testing.assert_array_equal(read_index_png(tmp_path / "bits4.png"), small)
    # RGB: declined, and read_index_png refuses it as before
    Image.fromarray(np.stack([m] * 3, -1)).save(tmp_path / "rgb.png")
    assert png.decode_label_png((tmp_path / "rgb.png").read_bytes()) is None
    with pytest.raises(DavisError, match=r"rgb\.png: annotation is not an indexed palette PNG \(mode RGB"):
        read_index_png(tmp_path / "rgb.png")
    # grey ids are refused where only palette files are allowed, accepted where grey is allowed
    Image.fromarray(m).save(tmp_path / "grey.png")
    with pytest.raises(DavisError, match=r"mode L, expected P \(palette\)\)"):
        read_index_png(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_index_png(tmp_path / "grey.png", "prediction", allow_grey=True), m)


def _damaged(tmp_path, m):
    path = tmp_path / "ok.png"
    write_index_png(path, m)
    data = path.read_bytes()
    chunks = _chunks(data)
    idat_at = data.index(b"IDAT") + 4
    flipped = bytearray(data)
    flipped[idat_at + 5] ^= 0xFF                               # corrupt data, CRC now wrong
    # corrupt stream with a correct CRC: inflating fails
    i = [k for k, _ in chunks].index(b"IDAT")
    bad_stream = b"".join(_chunk(k, b if j != i else b[:2] + bytes(len(b) - 2)) for j, (k, b) in enumerate(chunks))
    return {"crc.png": bytes(flipped), "truncated.png": data[:len(data) // 2],
            "stream.png": png.SIGNATURE + bad_stream, "no_iend.png": data[:-12],
            "short_stream.png": png.SIGNATURE + b"".join(
                _chunk(k, zlib.compress(zlib.decompress(b)[:-7]) if k == b"IDAT" else b) for k, b in chunks)}


def test_damaged_files_are_declined_and_reported_naming_the_file(tmp_path):
    m = _labels(48, 64, 11)
    for name, data in _damaged(tmp_path, m).items():
        assert png.decode_label_png(data) is None, name
        (tmp_path / name).write_bytes(data)
        pillow_fails = False
        try:
            with Image.open(tmp_path / name) as im:
                expected = np.array(im)
        except Exception:
            pillow_fails = True
        if pillow_fails:   # read_index_png reports what Pillow reports, naming the file
            with pytest.raises(DavisError, match=rf"{name}: unreadable annotation \("):
                read_index_png(tmp_path / name)
        else:              # Pillow tolerates it (e.g. a missing IEND): same array as Pillow
            np.testing.assert_array_equal(read_index_png(tmp_path / name), expected)
    assert png.png_size(b"\x89PNG\r\n\x1a\n" + b"\0" * 25) is None


def test_a_header_declaring_a_huge_image_is_left_to_pillows_bomb_check(tmp_path):
    side = 30000
    data = _handmade([b"\0" * 2], 1)                           # valid file, then a huge header
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 3, 0, 0, 0)
    data = data[:8] + _chunk(b"IHDR", ihdr) + data[8 + 25:]
    assert png.png_size(data[:33]) is None and png.decode_label_png(data) is None
    (tmp_path / "bomb.png").write_bytes(data)
    with pytest.raises(DavisError, match=r"bomb\.png: unreadable annotation \(.*exceeds limit"):
        read_index_png(tmp_path / "bomb.png")
