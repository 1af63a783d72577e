"""The command-line vocabulary every tool shares, built in once.

Each tool takes its common flags from :func:`flags` as an ``argparse`` parent parser, so a flag
is spelt, typed and explained the same way everywhere and no tool can drift::

    parser = ToolParser(description=__doc__,
                                     parents=[flags("checkpoint", "data_root", "out", "cfg_options",
                                                    required=("checkpoint", "out"))])

Values are checked where they are parsed (a batch size of 0, a split name that climbs out of its
folder), so a bad option is refused before any work starts, with argparse's usage line and exit
status 2 like every other input error (:class:`ToolParser`).
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys


class ToolParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose refusals are the suite's one line, ``error: <flag>: <what
    is wrong>`` with exit status 2, like every other input error (argparse's own prints the usage
    block first)."""

    def error(self, message: str):
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _int_at_least(text, 0)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def plain_name(text: str) -> str:
    """A file-name component: letters, digits, ``_ . -``, no separator and no ``..`` (split names
    are joined to data folders, so ``../x`` would read outside them)."""
    if not _NAME.fullmatch(text) or ".." in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a plain name (letters, digits, '_', '.', '-'; "
                                          f"no '/' or '..')")
    return text


def device_name(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected cpu, cuda or cuda:N")
    return text


@dataclasses.dataclass(frozen=True)
class Flag:
    """One entry of the vocabulary: option string and ``add_argument`` keywords."""
    option: str
    help: str
    kwargs: dict = dataclasses.field(default_factory=dict)


def _cfg_options_action():
    # MMEngine's own parser of KEY=VALUE pairs (lists, tuples, numbers), so overrides mean what
    # they mean for MMDetection's and MMSegmentation's tools; imported only by tools that take it
    # (the DAVIS evaluator keeps its start-up free of MMEngine).
    from mmengine.config import DictAction
    return DictAction


VOCABULARY: dict[str, Flag] = {
    "checkpoint": Flag("--checkpoint", "checkpoint to read: an encoder file of any supported family, "
                                       "or a training / detector checkpoint", dict(metavar="PATH")),
    "data_root": Flag("--data-root", "the data set's root folder", dict(metavar="DIR")),
    "out": Flag("--out", "what the tool writes (a file or a folder); never one of its inputs",
                dict(metavar="PATH")),
    "work_dir": Flag("--work-dir", "logs and checkpoints of a run", dict(metavar="DIR")),
    "which": Flag("--which", "encoder of a file that holds both",
                  dict(choices=("teacher", "student"))),
    "patch_size": Flag("--patch-size", "refuse a checkpoint with another patch size",
                       dict(type=positive_int, metavar="P")),
    "split": Flag("--split", "data split name", dict(type=plain_name, metavar="NAME")),
    "cfg_options": Flag("--cfg-options", "config overrides KEY=VALUE (MMEngine syntax; keys are "
                                         "checked against the config, with 'did you mean')",
                        dict(nargs="+", default={}, metavar="KEY=VALUE")),
    "batch_size": Flag("--batch-size", "images per forward pass", dict(type=positive_int, metavar="N")),
    "short_side": Flag("--short-side", "short side of the network input, in pixels",
                       dict(type=positive_int, metavar="PIXELS")),
    "family": Flag("--family", "checkpoint family, when its content does not settle it",
                   dict(metavar="NAME")),
    "store": Flag("--store", "results database (default: $FLSL_RESULTS, else work_dirs/results.db)",
                  dict(metavar="PATH")),
    "seed": Flag("--seed", "random seed", dict(type=non_negative_int, metavar="N")),
    "device": Flag("--device", "cpu, cuda or cuda:N (default: cuda when available)",
                   dict(type=device_name)),
}


def flags(*names: str, required: tuple[str, ...] = (), **defaults) -> argparse.ArgumentParser:
    """A parent parser holding the named flags of :data:`VOCABULARY`.

    ``required`` lists the names a tool cannot run without; ``defaults`` gives a tool's own
    default for a flag (``flags("short_side", short_side=480)``), stated in its help.
    """
    unknown = sorted(set(names) - set(VOCABULARY))
    if unknown:
        raise ValueError(f"not in the shared vocabulary: {', '.join(unknown)}")
    stray = sorted((set(required) | set(defaults)) - set(names))
    if stray:
        raise ValueError(f"required / defaults name flags not requested: {', '.join(stray)}")
    parent = argparse.ArgumentParser(add_help=False)
    for name in names:
        flag = VOCABULARY[name]
        kwargs = dict(flag.kwargs, help=flag.help, dest=name)
        if name == "cfg_options":
            kwargs["action"] = _cfg_options_action()
        if name in defaults:
            kwargs["default"] = defaults[name]
            kwargs["help"] = f"{flag.help} (default {defaults[name]})"
        if name in required:
            kwargs["required"] = True
        parent.add_argument(flag.option, **kwargs)
    return parent


__all__ = ["ToolParser", "VOCABULARY", "Flag", "flags", "positive_int", "non_negative_int", "plain_name", "device_name"]
