"""Reading MMEngine configs and applying ``--cfg-options`` with one-line errors.

MMEngine accepts any ``KEY=VALUE`` override: a misspelt key (``train.epochz=2``) silently adds a
new, unused entry, and a value of the wrong kind (``train.epochs=abc``) surfaces later as a
traceback far from the option. :func:`apply_options` checks each override against the value it
replaces first.
"""
from __future__ import annotations

import difflib
import fnmatch
import logging
import os
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger("flsl")


def read_config(path: str | os.PathLike, **kwargs):
    """``mmengine.Config.fromfile`` with a one-line :class:`ConfigError` for a missing file or any
    error while the config's Python runs (syntax errors, unknown names, bad ``_base_``)."""
    from mmengine.config import Config
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return Config.fromfile(str(path), **kwargs)
    except Exception as err:  # noqa: BLE001 - whatever the config's code raises, named with the file
        text = str(err).strip().splitlines()
        raise ConfigError(f"{path}: cannot be read ({type(err).__name__}: {text[0] if text else ''})") from None


def flat_keys(tree, prefix: str = "") -> list[str]:
    """Dotted keys of every entry of nested dicts (``a``, ``a.b``, ...)."""
    out = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            key = f"{prefix}{k}"
            out.append(key)
            out += flat_keys(v, key + ".")
    return out


def lookup(tree, key: str):
    """``(value, True)`` for the dotted ``key`` of nested dicts / lists, ``(None, False)`` if absent."""
    node = tree
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None, False
    return node, True


def _kind(value) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a dict"
    return type(value).__name__


def compatible(old, new) -> bool:
    """Whether ``new`` may replace ``old`` (DictAction values: int, float, bool, str, None,
    lists, tuples, dicts)."""
    if old is None:
        return True
    if new is None:
        return not isinstance(old, (bool, int, float))
    if isinstance(old, bool):
        return isinstance(new, bool)
    if isinstance(old, int):
        return isinstance(new, int) and not isinstance(new, bool)
    if isinstance(old, float):
        return isinstance(new, (int, float)) and not isinstance(new, bool)
    if isinstance(old, str):
        return isinstance(new, str)
    if isinstance(old, (list, tuple)):
        return isinstance(new, (list, tuple))
    if isinstance(old, dict):
        return isinstance(new, dict)
    return True


def apply_options(cfg, options: dict | None, extra_keys=(), strict: bool = True,
                  option: str = "--cfg-options") -> None:
    """Merge ``options`` (``{"a.b": value}``) into ``cfg`` after checking them.

    A key must exist in ``cfg`` or match one of ``extra_keys`` (``fnmatch`` patterns of keys the
    program reads with a default); with ``strict=False`` a new key is only a warning. A value must
    be of the same kind as the one it replaces (an integer for an integer, ...).
    """
    if not options:
        return
    tree = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    known = flat_keys(tree)
    for key, value in options.items():
        old, found = lookup(tree, key)
        if not found:
            if any(fnmatch.fnmatchcase(key, pattern) for pattern in extra_keys):
                continue
            close = difflib.get_close_matches(key, known + [p for p in extra_keys if "*" not in p], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            if strict:
                raise ConfigError(f"{key}: unknown key in {option}{hint}")
            log.warning("warning: %s: not in the config, added as a new key (%s)%s", key, option, hint)
        elif not compatible(old, value):
            raise ConfigError(f"{key}={value!r} ({option}): expected {_kind(old)}, as the config's "
                              f"{old!r}")
    cfg.merge_from_dict(options)


__all__ = ["read_config", "apply_options", "flat_keys", "lookup", "compatible"]
