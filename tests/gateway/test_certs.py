"""The CA is made once and kept; leaves verify against it with the names asked for."""

import ipaddress
import logging
import os
import ssl
import stat

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from gateway.certs import Cert, CertStore


def test_ca_created_once_with_private_key_mode(tmp_path):
    store = CertStore(tmp_path)
    for name in ("gateway-ca.pem", "gateway-ca-cert.pem", "gateway-ca-cert.cer", "gateway-ca-cert.p12"):
        assert (tmp_path / name).exists(), name
    assert stat.S_IMODE(os.stat(tmp_path / "gateway-ca.pem").st_mode) == 0o600
    again = CertStore(tmp_path)
    assert again.default_ca == store.default_ca
    assert store.default_ca.is_ca
    assert Cert.from_der((tmp_path / "gateway-ca-cert.cer").read_bytes()) == store.default_ca
    assert Cert.from_pem((tmp_path / "gateway-ca-cert.pem").read_bytes()) == store.default_ca
    _, _, cas = pkcs12.load_key_and_certificates((tmp_path / "gateway-ca-cert.p12").read_bytes(), None)
    assert [Cert(c) for c in cas] == [store.default_ca]


def test_new_ca_message_names_the_certificate_to_install(tmp_path, caplog):
    """It named gateway-ca.pem, the private key: a user copying that to a phone hands out the key."""
    with caplog.at_level(logging.INFO, logger="gateway.certs"):
        CertStore(tmp_path)
        CertStore(tmp_path)
    [message] = [r.getMessage() for r in caplog.records if "CA" in r.getMessage()]
    assert str(tmp_path / "gateway-ca-cert.pem") in message
    assert str(tmp_path / "gateway-ca.pem") not in message


def test_discard_created_removes_only_what_this_store_made(tmp_path):
    fresh = tmp_path / "fresh"
    store = CertStore(fresh, announce=False)
    store.get_cert("example.com")
    store.discard_created()
    assert not fresh.exists()
    kept = CertStore(tmp_path)
    again = CertStore(tmp_path, announce=False)  # loaded, not created: discarding keeps the CA
    again.discard_created()
    assert CertStore(tmp_path).default_ca == kept.default_ca


def test_leaf_names_and_cache(tmp_path):
    store = CertStore(tmp_path)
    cert, path = store.get_cert("Example.COM", ["www.example.com", "10.1.2.3", "example.com"])
    assert cert.cn == "example.com"
    assert cert.altnames == ["example.com", "www.example.com", "10.1.2.3"]
    ext = cert.to_cryptography().extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ext.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    assert not cert.is_ca
    assert cert.notbefore < cert.notafter
    assert len(cert.fingerprint()) == 32
    assert store.get_cert("example.com", ["www.example.com", "10.1.2.3"])[0] == cert
    assert store.get_cert("other.example", [])[0] != cert
    assert path.read_bytes().startswith(cert.to_pem())
    assert Cert.from_pem(cert.to_pem()) == cert


def test_lru_evicts_and_removes_files(tmp_path):
    store = CertStore(tmp_path, cache_size=2)
    _, p1 = store.get_cert("a.example")
    store.get_cert("b.example")
    store.get_cert("c.example")
    assert not p1.exists()
    store.close()
    assert not list((tmp_path / "leaf-certs").iterdir())


def test_leaf_verifies_in_real_handshake(tmp_path):
    """A stdlib client trusting only our CA accepts the minted leaf for the name asked."""
    for kind in ("ecdsa", "rsa"):
        store = CertStore(tmp_path / kind, leaf_key_type=kind)
        sctx, _ = store.server_context("host.test", ["::1"], alpn=[b"h2"])
        cctx = ssl.create_default_context(cafile=str(store.ca_cert_pem_path))
        cctx.set_alpn_protocols(["http/1.1", "h2"])
        for hostname in ("host.test", "::1"):
            c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
            client = cctx.wrap_bio(c_in, c_out, server_hostname=hostname)
            server = sctx.wrap_bio(s_in, s_out, server_side=True)
            done = set()
            for _ in range(10):
                for name, obj, out, peer_in in (("c", client, c_out, s_in), ("s", server, s_out, c_in)):
                    if name not in done:
                        try:
                            obj.do_handshake()
                            done.add(name)
                        except ssl.SSLWantReadError:
                            pass
                    peer_in.write(out.read())
                if len(done) == 2:
                    break
            assert done == {"c", "s"}
            assert client.selected_alpn_protocol() == "h2"


def test_stale_leaf_files_of_dead_processes_are_removed(tmp_path):
    import subprocess
    import sys

    CertStore(tmp_path).close()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    pid = int(dead.stdout)
    stale = tmp_path / "leaf-certs" / f"leaf-{pid}-{'ab' * 16}.pem"
    stale.write_bytes(b"x")
    live = tmp_path / "leaf-certs" / f"leaf-{os.getpid()}-{'cd' * 16}.pem"
    live.write_bytes(b"x")
    store = CertStore(tmp_path)
    assert not stale.exists() and live.exists()
    store.close()
    live.unlink()


def test_two_processes_racing_create_one_ca(tmp_path):
    import subprocess
    import sys

    code = "import sys; from gateway.certs import CertStore; s = CertStore(sys.argv[1]); print(s.default_ca.fingerprint().hex()); s.close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE) for _ in range(4)]
    fps = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(fps) == 1
    assert CertStore(tmp_path).default_ca.fingerprint().hex().encode() in fps
