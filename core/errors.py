"""One error type and one handler for every command-line tool.

Every problem with a user's input (a file, an annotation, a checkpoint, a config key, a
command-line argument) is raised as a subclass of :class:`FLSLError` whose message starts with
the file or key at fault. :func:`cli_main` turns it into a single ``error: <message>`` line on
stderr and exit status 2; anything else is a bug in the project and keeps its traceback.
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence


class FLSLError(RuntimeError):
    """A problem with the user's input; the one-line message names the file, line or key."""


class ConfigError(FLSLError):
    """A config file or a ``--cfg-options`` entry that cannot be used."""


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def cli_main(main: Callable[[Sequence[str] | None], int | None],
             argv: Sequence[str] | None = None) -> int:
    """Run a tool's ``main(argv)`` and return its exit status.

    :class:`FLSLError` -> ``error: ...`` and 2; Pillow's decompression-bomb error (not an
    ``OSError``, so easily missed) likewise; Ctrl-C -> 130 with a short note.
    """
    try:
        code = main(argv)
    except FLSLError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - only the decompression bomb is translated
        if type(err).__name__ == "DecompressionBombError":
            print(f"error: {_one_line(err)}", file=sys.stderr)
            return 2
        raise
    return int(code or 0)


__all__ = ["FLSLError", "ConfigError", "cli_main"]
