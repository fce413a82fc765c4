"""Whether this process may create TUN devices and change routes.

Checked up front so a missing privilege is one clear line ("needs root or
CAP_NET_ADMIN") instead of an EPERM from deep inside pyroute2 after half the setup.
"""

from __future__ import annotations

CAP_NET_ADMIN = 12

MISSING = "needs root or CAP_NET_ADMIN (to create a TUN device and change routes and rules)"


def effective_caps(status_text: str) -> int:
    """The ``CapEff`` bit mask from the text of ``/proc/<pid>/status`` (0 when absent)."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split(":", 1)[1].strip(), 16)
    return 0


def has_net_admin(status_text: str | None = None) -> bool:
    if status_text is None:
        try:
            with open("/proc/self/status", encoding="ascii", errors="replace") as f:
                status_text = f.read()
        except OSError:
            return False
    return bool(effective_caps(status_text) & (1 << CAP_NET_ADMIN))
