"""``gateway ca`` as a user runs it: creates the CA on first use, prints path, fingerprint
and instructions; ``--pem`` prints the certificate itself."""

import subprocess
import sys

from gateway.certs import Cert


def gateway(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, timeout=60)


def test_ca_prints_path_fingerprint_and_instructions(tmp_path):
    r = gateway("ca", "--state-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    pem_path = tmp_path / "gateway-ca-cert.pem"
    assert str(pem_path) in out
    ca = Cert.from_pem(pem_path.read_bytes())
    fp = ca.fingerprint().hex().upper()
    assert ":".join(fp[i : i + 2] for i in range(0, len(fp), 2)) in out
    assert "update-ca-certificates" in out and "http://gateway.internal/" in out
    # A second run shows the same CA (it is kept, not recreated).
    again = gateway("ca", "--state-dir", str(tmp_path)).stdout.decode()
    assert ":".join(fp[i : i + 2] for i in range(0, len(fp), 2)) in again


def test_ca_pem(tmp_path):
    r = gateway("ca", "--state-dir", str(tmp_path), "--pem")
    assert r.returncode == 0
    assert r.stdout == (tmp_path / "gateway-ca-cert.pem").read_bytes()
