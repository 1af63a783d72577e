"""Load a command-line tool of tools/ as a module (they are scripts, not a package)."""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{Path(name).stem}", REPO / "tools" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
