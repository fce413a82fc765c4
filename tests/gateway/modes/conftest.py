"""The gateway and server fixtures of tests/gateway/proxy (loaded by path: test folders
are not packages)."""

import importlib.util
import sys
from pathlib import Path

_path = Path(__file__).resolve().parent.parent / "proxy" / "gateway_fixtures.py"
if "gateway_fixtures" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("gateway_fixtures", _path)
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["gateway_fixtures"] = _mod
    _spec.loader.exec_module(_mod)
from gateway_fixtures import Gateway, Hooks, Servers, gateway, run, servers, socks5, socks5_open, upstream_ca  # noqa: E402,F401
