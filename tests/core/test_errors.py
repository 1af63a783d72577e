"""core.errors: every error a tool reports derives from FLSLError; cli_main prints one line."""
import pytest
from PIL import Image

from core.errors import FLSLError, cli_main


def _error_classes():
    from benchmarks.davis.io import DavisError
    from benchmarks.dense.data_check import AnnotationError
    from benchmarks.reproduce import ReproduceError
    from benchmarks.demo.run import DemoError
    from benchmarks.figures.maps import FigureError
    from benchmarks.uavdt.convert import UAVDTError
    from core.errors import ConfigError
    from pretrain.checkpoint import CheckpointError
    from pretrain.data import DataError
    from pretrain.trainer import NonFiniteLossError
    return [DavisError, AnnotationError, ReproduceError, DemoError, FigureError, UAVDTError,
            ConfigError, CheckpointError, DataError, NonFiniteLossError]


def test_every_tool_error_is_an_flsl_error():
    classes = _error_classes()
    assert all(issubclass(c, FLSLError) for c in classes)
    assert len({c.__name__ for c in classes}) == len(classes)  # no two classes share a name


def test_cli_main_prints_one_error_line(capsys):
    def main(argv):
        raise FLSLError("some/file.json: line 3\nsecond line")
    assert cli_main(main, []) == 2
    err = capsys.readouterr().err
    assert err == "error: some/file.json: line 3 second line\n"


def test_cli_main_translates_decompression_bombs(tmp_path, capsys):
    path = tmp_path / "bomb.png"
    Image.new("L", (64, 64)).save(path)
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 100  # a 64x64 image is then more than twice the limit: a "bomb"

    def main(argv):
        with Image.open(path) as im:
            im.load()
    try:
        assert cli_main(main, []) == 2
    finally:
        Image.MAX_IMAGE_PIXELS = old
    assert capsys.readouterr().err.startswith("error: Image size")


def test_cli_main_keeps_bugs_visible():
    def main(argv):
        raise ZeroDivisionError("bug")
    with pytest.raises(ZeroDivisionError):
        cli_main(main, [])
    assert cli_main(lambda argv: 0, []) == 0 and cli_main(lambda argv: None, []) == 0
