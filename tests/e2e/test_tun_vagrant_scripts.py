"""The Vagrant lab and the namespace lab share their provisioning: the scripts it runs
exist, pass shellcheck, and use the namespace lab's address plan."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.e2e.lab import REPO

LAB_D = REPO / "scripts" / "lab.d"
VAGRANTFILE = REPO / "vagrant" / "Vagrantfile"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_provisioning_scripts_pass_shellcheck() -> None:
    scripts = [str(p) for p in sorted(LAB_D.glob("*.sh"))] + [str(REPO / "scripts" / "lab")]
    res = subprocess.run(["shellcheck", "-x", *scripts], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_vagrantfile_runs_the_lab_scripts_that_exist() -> None:
    text = VAGRANTFILE.read_text()
    used = set(re.findall(r"/gateway/(scripts/lab\.d/[\w.-]+)", text))
    assert used, "the Vagrantfile provisions with no lab script"
    for rel in used:
        assert (REPO / rel).is_file(), rel
    node = (LAB_D / "vm-node.sh").read_text()
    assert "topology.sh" in node and "provision-servers.sh" in node


def test_vms_use_the_namespace_labs_addresses() -> None:
    topology = (LAB_D / "topology.sh").read_text()
    vm = VAGRANTFILE.read_text() + (LAB_D / "vm-node.sh").read_text()
    ns_addrs = set(re.findall(r"\b10\.99\.[1-3]\.[12]\b|\bfd99:[1-3]::[12]\b", topology))
    vm_addrs = set(re.findall(r"\b10\.99\.[1-3]\.[12]\b|\bfd99:[1-3]::[12]\b", vm))
    assert ns_addrs and ns_addrs == vm_addrs
