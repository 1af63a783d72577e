"""Generated UAVDT trees for the UAVDT tests."""
import pytest

from synthetic.uavdt import write_uavdt_tree


@pytest.fixture(scope="module")
def uavdt_tree(tmp_path_factory):
    """Three sequences (two train, one test), 6 frames each; M0201 has another image size."""
    root = tmp_path_factory.mktemp("uavdt") / "uavdt"
    return write_uavdt_tree(root, train=("M0101", "M0201"), test=("M0203",), n_frames=6,
                            size=(160, 96), sizes={"M0201": (176, 88)}, seed=3)


@pytest.fixture
def fresh_tree(tmp_path):
    """A tree of its own, for tests that damage files."""
    return write_uavdt_tree(tmp_path / "uavdt", train=("M0101",), test=("M0203",), n_frames=4,
                            size=(128, 72), seed=5)
