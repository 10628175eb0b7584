"""The p2v engine without a network: one ssh session per server, reused and replaced."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from pyv2v.p2v.config import Config
from pyv2v.p2v.engine import RealEngine

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n"


def test_one_session_per_server_and_credentials(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text(KEY)
    cfg = Config(server="conv", identity=f"file://{key}", known_hosts=str(tmp_path / "kh"))
    engine = RealEngine()
    s = engine.session(cfg)
    assert s.target.identity and os.path.exists(s.target.identity)
    # Conversion settings are not the session's business: the same session serves them all.
    assert engine.session(dataclasses.replace(cfg, output_type="null", disks=["sda"])) is s
    conv = engine.conversion(cfg, None)
    assert conv.session() is s
    conv.close()  # a conversion leaves the engine's session open
    assert os.path.exists(s.target.identity)
    assert engine.sessions_opened == 1
    # Another server: a new session, and the old one is closed (its fetched key is gone).
    other = engine.session(dataclasses.replace(cfg, port=2222))
    assert other is not s and not os.path.exists(s.target.identity)
    # Other credentials: a new session too (password auth: an askpass of its own).
    pw = engine.session(dataclasses.replace(cfg, identity=None, password="one"))
    assert pw.askpass is not None and not os.path.exists(other.target.identity or "")
    again = engine.session(dataclasses.replace(cfg, identity=None, password="two"))
    assert again is not pw and pw.askpass is None
    assert engine.sessions_opened == 4
    engine.close()
    assert again.askpass is None
    engine.close()  # idempotent


def test_a_conversion_without_the_engine_owns_its_session(tmp_path: Path) -> None:
    from pyv2v.p2v.conversion import Conversion

    key = tmp_path / "id"
    key.write_text(KEY)
    conv = Conversion(Config(server="conv", identity=f"file://{key}"))
    s = conv.session()
    assert s.target.identity and os.path.exists(s.target.identity)
    conv.close()
    assert not os.path.exists(s.target.identity)
