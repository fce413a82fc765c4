"""What a TUN run changed in the kernel, written down before each change is made.

A run that is killed (kill -9, power loss) cannot undo its policy rules: the device and
the routes through it vanish with the process (the device is not persistent), but rules
stay.  So every change is recorded in ``<state dir>/tun/<interface>.json`` *before* it is
made, and ``gateway down`` or the next ``gateway up`` replays the record backwards.

A record names its process by pid *and* start time, so a reused pid is not mistaken for
the run that wrote it, and its network namespace by inode, so ``gateway down`` run in
another namespace does not delete rules that happen to look alike there.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORD_DIR = "tun"


def process_start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (clock ticks since boot), None if no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = text.rsplit(")", 1)[-1].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def current_netns() -> int:
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return 0


@dataclass
class TunRecord:
    interface: str
    pid: int = field(default_factory=os.getpid)
    started: int | None = field(default_factory=lambda: process_start_time(os.getpid()))
    netns: int = field(default_factory=current_netns)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def is_live(self) -> bool:
        """Whether the run that wrote this record is still running."""
        return self.started is not None and process_start_time(self.pid) == self.started

    @staticmethod
    def path_for(state_dir: str | os.PathLike[str], interface: str) -> Path:
        return Path(os.path.expanduser(str(state_dir))) / RECORD_DIR / f"{interface}.json"

    def save(self, path: Path) -> None:
        """Atomically (write + rename), so a crash never leaves half a record."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> TunRecord:
        """``ValueError`` if the file is not a record."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                interface=str(data["interface"]),
                pid=int(data["pid"]),
                started=None if data.get("started") is None else int(data["started"]),
                netns=int(data.get("netns", 0)),
                changes=[dict(c) for c in data.get("changes", [])],
            )
        except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a TUN record ({e})") from None


def records(state_dir: str | os.PathLike[str]) -> list[tuple[Path, TunRecord | None]]:
    """Every record file in the state directory (None for an unreadable one)."""
    folder = Path(os.path.expanduser(str(state_dir))) / RECORD_DIR
    found: list[tuple[Path, TunRecord | None]] = []
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            found.append((path, TunRecord.load(path)))
        except ValueError:
            found.append((path, None))
    return found


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
