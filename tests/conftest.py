"""Shared test set-up: deterministic CPU threads, the repository root and the interpreter."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "2")
# tools record their runs in the results store: tests (and the tools they start) use their own
if "FLSL_RESULTS" not in os.environ:
    import tempfile
    os.environ["FLSL_RESULTS"] = str(Path(tempfile.mkdtemp(prefix="flsl-test-results-")) / "results.db")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def venv_python() -> str:
    """The interpreter running the tests (the project's .venv under tools/test.sh)."""
    return sys.executable
