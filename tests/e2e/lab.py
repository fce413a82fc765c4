"""The namespace lab for e2e tests: the same scripts/lab a person runs, with a unique prefix.

Each test session builds its own lab (prefix from the pid, so parallel runs and a person's
own lab do not collide) and removes it afterwards, also when a test fails.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "scripts" / "lab"

SERVER_V4 = "10.99.3.2"
SERVER_V6 = "fd99:3::2"
GATEWAY_PHONE_V4 = "10.99.1.1"
GATEWAY_PHONE2_V4 = "10.99.4.1"
GATEWAY_LAN_V4 = "10.99.2.1"


def unique_prefix() -> str:
    return "t" + uuid.uuid4().hex[:6]


class Lab:
    def __init__(self, prefix: str | None = None, big_files: tuple[int, ...] = ()) -> None:
        self.prefix = prefix or unique_prefix()
        self.dir = Path(f"/tmp/{self.prefix}-lab")
        self.big_files = big_files

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, LAB_PREFIX=self.prefix)
        if self.big_files:
            env["LAB_BIG_FILES"] = " ".join(str(s) for s in self.big_files)
        return env

    def ns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def lab(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(LAB), *args], env=self.env, check=check, capture_output=True, text=True, timeout=timeout
        )

    def up(self) -> Lab:
        self.lab("up")
        return self

    def down(self) -> None:
        self.lab("down", check=False)

    def exec(self, node: str, *cmd: str, check: bool = True, timeout: float = 60,
             input: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", self.ns(node), *cmd],
            check=check, capture_output=True, timeout=timeout, input=input,
        )

    def popen(self, node: str, *cmd: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.ns(node), *cmd], **kw)

    def phone_up(self, conf: Path, node: str = "phone") -> None:
        self.lab("phone-up", str(conf), node)

    def phone_down(self, node: str = "phone") -> None:
        self.lab("phone-down", node, check=False)

    @property
    def server_ca(self) -> Path:
        return self.dir / "tls" / "ca.pem"

    def __enter__(self) -> Lab:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc: object) -> None:
        self.down()
