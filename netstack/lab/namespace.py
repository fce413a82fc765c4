"""Throwaway network namespaces for tests and benchmarks.

A namespace made here has no link to the root namespace and no route out: the only way
in or out is a TUN device whose descriptor our own process holds.  ``setns`` applies to
the calling thread only, so a short-lived thread enters the namespace to create a TUN
device or sockets there while the rest of the process (the asyncio loop running netstack)
stays where it is; the descriptors keep working from any thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def unique_name(prefix: str = "nstk") -> str:
    """A namespace name no other run uses: prefix, pid and a random suffix."""
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


def run_in_netns(name: str, fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn(*args)`` in a fresh thread that has entered namespace ``name``."""
    result: list[Any] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            result.append(fn(*args))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            error.append(e)

    th = threading.Thread(target=body, name=f"netns-{name}")
    th.start()
    th.join(60)
    if error:
        raise error[0]
    if not result:
        raise TimeoutError(f"run_in_netns({name}) did not finish")
    return result[0]


@contextlib.contextmanager
def netns(prefix: str = "nstk") -> Iterator[str]:
    """Create a namespace (loopback up) and remove it afterwards, whatever happens."""
    name = unique_name(prefix)
    ip("netns", "add", name)
    try:
        ip("link", "set", "lo", "up", netns=name)
        yield name
    finally:
        ip("netns", "del", name, check=False)


def netns_exec(name: str, *cmd: str) -> list[str]:
    """The argv that runs ``cmd`` inside namespace ``name``."""
    return ["ip", "netns", "exec", name, *cmd]
