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
PLAN_FILE = REPO / "scripts" / "lab.d" / "plan.env"


def read_plan(path: Path = PLAN_FILE) -> dict[str, str]:
    """The lab's address plan (plain KEY=VALUE lines, shared with the shell and the Vagrantfile)."""
    plan = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier() or not value or any(c in value for c in " \t\"'$`\\"):
            raise ValueError(f"{path}:{n}: not a plain KEY=VALUE line: {line!r}")
        plan[key] = value
    return plan


PLAN = read_plan()
SERVER_V4 = PLAN["SRV_V4"]
SERVER_V6 = PLAN["SRV_V6"]
LAN_CLIENT_V4 = PLAN["LAN_V4"]
LAN_CLIENT_V6 = PLAN["LAN_V6"]
GATEWAY_PHONE_V4 = PLAN["GW_PHONE_V4"]
GATEWAY_PHONE2_V4 = PLAN["GW_PHONE2_V4"]
GATEWAY_LAN_V4 = PLAN["GW_LAN_V4"]
GATEWAY_LAN_V6 = PLAN["GW_LAN_V6"]


def unique_prefix() -> str:
    return "t" + uuid.uuid4().hex[:6]


class Lab:
    def __init__(self, prefix: str | None = None, big_files: tuple[int, ...] = (),
                 plan: Path | None = None) -> None:
        self.prefix = prefix or unique_prefix()
        self.dir = Path(f"/tmp/{self.prefix}-lab")
        self.big_files = big_files
        self.plan_file = plan
        self.plan = read_plan(plan) if plan is not None else PLAN

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, LAB_PREFIX=self.prefix)
        if self.plan_file is not None:
            env["LAB_PLAN"] = str(self.plan_file)
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
