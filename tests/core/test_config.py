"""core.config.apply_options: overrides must name a key and keep the kind of value they replace."""
import logging

import pytest
from mmengine.config import Config

from core.config import apply_options, read_config
from core.errors import ConfigError


def cfg():
    return Config(dict(train=dict(epochs=10, amp="bf16", scale=(0.5, 1.0), lr=0.1, flag=True, start=None),
                       model=dict(backbone=dict(init_cfg=dict(type="Pretrained")))))


@pytest.mark.parametrize("key,value,ok", [
    ("train.epochs", 12, True), ("train.epochs", "abc", False), ("train.epochs", 2.5, False),
    ("train.epochs", True, False), ("train.epochs", None, False), ("train.lr", 1, True),
    ("train.lr", "x", False), ("train.amp", None, True), ("train.amp", 16, False),
    ("train.scale", [0.3, 1.0], True), ("train.scale", 0.3, False), ("train.flag", 0, False),
    ("train.start", "anything", True), ("model.backbone.init_cfg", None, True),
])
def test_value_kinds(key, value, ok):
    c = cfg()
    if ok:
        apply_options(c, {key: value})
        assert c.to_dict()["train" if key.startswith("train") else "model"] is not None
    else:
        with pytest.raises(ConfigError, match=rf"^{key}="):
            apply_options(c, {key: value})
        assert c.train.epochs == 10 and c.train.amp == "bf16"  # nothing merged


def test_unknown_keys_refused_or_reported(caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("flsl"), "propagate", True)  # a trainer test may have cut it
    with pytest.raises(ConfigError, match=r"^train.epochz: unknown key in --cfg-options \(did you mean train.epochs\?\)$"):
        apply_options(cfg(), {"train.epochz": 2})
    apply_options(cfg(), {"train.seed": 3}, extra_keys=("train.seed",))  # read with a default
    c = cfg()
    with caplog.at_level(logging.WARNING, logger="flsl"):
        apply_options(c, {"model.backbone.init_cfg.checkpoint": "x.safetensors"}, strict=False)
    assert c.model.backbone.init_cfg.checkpoint == "x.safetensors"
    assert "model.backbone.init_cfg.checkpoint: not in the config, added as a new key" in caplog.text


def test_read_config_names_the_file(tmp_path):
    bad = tmp_path / "c.py"
    bad.write_text("x = 1 / 0\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: cannot be read \(ZeroDivisionError: division by zero\)$"):
        read_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        read_config(tmp_path / "none.py")
