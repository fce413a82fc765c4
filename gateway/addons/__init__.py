"""Built-in addons and the default chain that ``gateway up`` runs.

The order matters: addons see each hook in this order.  Traffic-shaping addons that
answer or rewrite requests come before the user's scripts (as in mitmproxy), so scripts
see their effect; recording and output (save, dumper) come last, so they record what was
actually sent.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

DEFAULT_ADDONS: list[tuple[str, str]] = [
    ("gateway.addons.proxyserver", "Proxyserver"),
    ("gateway.addons.onboarding", "Onboarding"),
    ("gateway.links.tun.addon", "TunOptions"),
    ("gateway.addons.block_list", "BlockList"),
    ("gateway.addons.anticache", "AntiCache"),
    ("gateway.addons.anticomp", "AntiComp"),
    ("gateway.addons.client_replay", "ClientReplay"),
    ("gateway.addons.script", "ScriptLoader"),
    ("gateway.addons.server_replay", "ServerReplay"),
    ("gateway.addons.map_remote", "MapRemote"),
    ("gateway.addons.map_local", "MapLocal"),
    ("gateway.addons.modify_body", "ModifyBody"),
    ("gateway.addons.modify_headers", "ModifyHeaders"),
    ("gateway.addons.upstream_auth", "UpstreamAuth"),
    ("gateway.addons.save", "Save"),
    ("gateway.addons.dumper", "Dumper"),
]
"""(module, class) of each default addon, in chain order."""


def available(module: str) -> bool:
    """Whether a module exists (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def default_addons() -> list[Any]:
    """One instance of each default addon whose module exists in this build.

    A module that is not written yet is skipped; one that exists but fails to import, or
    lacks its class, is an error (a broken build must not start silently without it).
    """
    addons = []
    for module_name, class_name in DEFAULT_ADDONS:
        if not available(module_name):
            continue
        module = importlib.import_module(module_name)
        try:
            cls = getattr(module, class_name)
        except AttributeError:
            raise ImportError(f"{module_name} has no {class_name}") from None
        addons.append(cls())
    return addons
