"""Shared test set-up: deterministic CPU threads, the repository root and the interpreter."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def venv_python() -> str:
    """The interpreter running the tests (the project's .venv under tools/test.sh)."""
    return sys.executable
