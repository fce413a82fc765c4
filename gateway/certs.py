"""The interception CA and the leaf certificates it mints on the fly.

The CA is created once, on first run, in the state directory and then reused, so a
device that trusted it once keeps trusting it.  Leaf certificates are made per host
name set while connections arrive, so minting must be cheap: every leaf of a store
shares one key pair (generated once; ECDSA P-256 by default because signing and
handshakes with it are several times faster than RSA), and finished certificates sit in
an LRU cache together with the ``ssl.SSLContext`` built around them.

Python's ``ssl`` module loads certificates only from files, so each cached leaf is
written once to a private (0700) directory under the state directory.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import os
import secrets
import ssl
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("gateway.certs")

CA_BASENAME = "gateway-ca"
CA_ORGANIZATION = "gateway"
CA_COMMON_NAME = "gateway"
CA_VALIDITY = datetime.timedelta(days=10 * 365)
# Apple platforms reject server certificates valid for more than 398 days.
LEAF_VALIDITY = datetime.timedelta(days=365)
# Clocks of phones and VMs are often a little behind.
BACKDATE = datetime.timedelta(days=2)
DEFAULT_STATE_DIR = "~/.gateway"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class Cert:
    """An X.509 certificate with the few accessors the proxy and addons use."""

    def __init__(self, cert: x509.Certificate):
        self._cert = cert

    @classmethod
    def from_pem(cls, data: bytes) -> Cert:
        return cls(x509.load_pem_x509_certificate(data))

    @classmethod
    def from_der(cls, data: bytes) -> Cert:
        return cls(x509.load_der_x509_certificate(data))

    @classmethod
    def from_cryptography(cls, cert: x509.Certificate) -> Cert:
        return cls(cert)

    def to_cryptography(self) -> x509.Certificate:
        return self._cert

    def to_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def to_der(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.DER)

    def fingerprint(self) -> bytes:
        """SHA-256 over the DER encoding."""
        return self._cert.fingerprint(hashes.SHA256())

    @property
    def cn(self) -> str | None:
        attrs = self._cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else None

    @property
    def organization(self) -> str | None:
        attrs = self._cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(attrs[0].value) if attrs else None

    @property
    def issuer(self) -> list[tuple[str, str]]:
        return [(a.oid._name, str(a.value)) for a in self._cert.issuer]

    @property
    def subject(self) -> list[tuple[str, str]]:
        return [(a.oid._name, str(a.value)) for a in self._cert.subject]

    @property
    def serial(self) -> int:
        return self._cert.serial_number

    @property
    def notbefore(self) -> datetime.datetime:
        return self._cert.not_valid_before_utc

    @property
    def notafter(self) -> datetime.datetime:
        return self._cert.not_valid_after_utc

    @property
    def has_expired(self) -> bool:
        return datetime.datetime.now(datetime.UTC) > self.notafter

    @property
    def altnames(self) -> list[str]:
        """DNS names and IP addresses from subjectAltName, as strings."""
        try:
            ext = self._cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return []
        names: list[str] = list(ext.get_values_for_type(x509.DNSName))
        names += [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
        return names

    @property
    def is_ca(self) -> bool:
        try:
            return self._cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cert) and self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        return f"Cert(cn={self.cn!r}, altnames={self.altnames!r}, notafter={self.notafter:%Y-%m-%d})"


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, without a window where it is wider."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _create_exclusive(path: Path, data: bytes) -> bool:
    """Write a private file only if ``path`` does not exist yet (atomic against other
    processes creating it at the same time); False if it already existed."""
    tmp = path.with_name(path.name + f".{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_leaves(leaf_dir: Path) -> None:
    """Leaf files of processes that died without ``close()`` (their pid is in the name)."""
    for f in leaf_dir.glob("*.pem"):
        parts = f.stem.split("-")  # leaf-PID-HASH / key-PID-RANDOM
        pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
        if pid is not None and pid != os.getpid() and not _pid_alive(pid):
            f.unlink(missing_ok=True)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def create_ca(
    common_name: str = CA_COMMON_NAME, organization: str = CA_ORGANIZATION
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed CA.  RSA-2048 for the CA key: every TLS client accepts it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _name_to_general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _normalize_names(names: Iterable[str | None]) -> tuple[str, ...]:
    """Deduplicated, lower-cased, order kept (the first name becomes the CN)."""
    out: list[str] = []
    for n in names:
        if not n:
            continue
        n = n.strip().rstrip(".").lower()
        if n.startswith("[") and n.endswith("]"):
            n = n[1:-1]
        try:
            n = str(ipaddress.ip_address(n))
        except ValueError:
            try:
                n = n.encode("idna").decode("ascii")
            except UnicodeError:
                continue
        if n and n not in out:
            out.append(n)
    return tuple(out)


class CertStore:
    """The CA of one state directory plus a cache of leaf certificates signed by it."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        leaf_key_type: str = "ecdsa",
        cache_size: int = 1024,
        announce: bool = True,
    ):
        """``announce``: log a new CA at once; False leaves it to ``announce_created()``,
        for a caller that may still discard it (``gateway up`` before its listeners open)."""
        self.state_dir = Path(os.path.expanduser(str(state_dir or DEFAULT_STATE_DIR)))
        self.leaf_key_type = leaf_key_type
        self.cache_size = cache_size
        self._lock = threading.Lock()
        self._leaves: OrderedDict[tuple[tuple[str, ...], str | None], tuple[Cert, Path]] = OrderedDict()
        self._contexts: OrderedDict[tuple, ssl.SSLContext] = OrderedDict()
        # What this store made on disk, for discard_created(): a run that cannot open its
        # listeners must leave no new CA behind.
        self.created_ca = False
        self._announced = False
        self._created_dirs = [d for d in (self.state_dir / "leaf-certs", self.state_dir) if not d.exists()]
        self.ca_key, ca = self._load_or_create_ca(announce)
        self.default_ca = Cert(ca)
        self.leaf_key = self._make_leaf_key(leaf_key_type)
        self._leaf_dir = self.state_dir / "leaf-certs"
        self._leaf_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self._leaf_dir, 0o700)
        _remove_stale_leaves(self._leaf_dir)
        self._leaf_key_path = self._leaf_dir / f"key-{os.getpid()}-{secrets.token_hex(4)}.pem"
        _write_private(
            self._leaf_key_path,
            self.leaf_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    # -- CA files ---------------------------------------------------------------------------
    @property
    def ca_path(self) -> Path:
        """Key + certificate, private."""
        return self.state_dir / f"{CA_BASENAME}.pem"

    @property
    def ca_cert_pem_path(self) -> Path:
        return self.state_dir / f"{CA_BASENAME}-cert.pem"

    @property
    def ca_cert_cer_path(self) -> Path:
        return self.state_dir / f"{CA_BASENAME}-cert.cer"

    @property
    def ca_cert_p12_path(self) -> Path:
        return self.state_dir / f"{CA_BASENAME}-cert.p12"

    def _load_or_create_ca(self, announce: bool = True) -> tuple[PrivateKey, x509.Certificate]:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.ca_path.exists():
            data = self.ca_path.read_bytes()
            key = serialization.load_pem_private_key(data, password=None)
            if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
                raise ValueError(f"{self.ca_path}: unsupported CA key type")
            cert = x509.load_pem_x509_certificate(data)
            if os.stat(self.ca_path).st_mode & 0o077:
                os.chmod(self.ca_path, 0o600)
        else:
            key, cert = create_ca()
            key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            if not _create_exclusive(self.ca_path, key_pem + cert.public_bytes(serialization.Encoding.PEM)):
                return self._load_or_create_ca(announce)  # another process made one first: use it
            self.created_ca = True
            self._write_public_ca_files(cert)
            if announce:
                self.announce_created()
            return key, cert
        self._write_public_ca_files(cert)
        return key, cert

    def _write_public_ca_files(self, cert: x509.Certificate) -> None:
        pem = cert.public_bytes(serialization.Encoding.PEM)
        if not self.ca_cert_pem_path.exists() or self.ca_cert_pem_path.read_bytes() != pem:
            _write_public(self.ca_cert_pem_path, pem)
            _write_public(self.ca_cert_cer_path, cert.public_bytes(serialization.Encoding.DER))
            _write_public(
                self.ca_cert_p12_path,
                pkcs12.serialize_key_and_certificates(
                    name=CA_COMMON_NAME.encode(),
                    key=None,
                    cert=None,
                    cas=[cert],
                    encryption_algorithm=serialization.NoEncryption(),
                ),
            )

    @staticmethod
    def _make_leaf_key(kind: str) -> PrivateKey:
        if kind == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "ecdsa":
            return ec.generate_private_key(ec.SECP256R1())
        raise ValueError(f"unknown leaf key type {kind!r} (ecdsa or rsa)")

    # -- leaves -----------------------------------------------------------------------------
    def _mint(self, names: tuple[str, ...], organization: str | None) -> Cert:
        now = _now()
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]
        if organization:
            subject.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64]))
        is_rsa = isinstance(self.leaf_key, rsa.RSAPrivateKey)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(self.default_ca.to_cryptography().subject)
            .public_key(self.leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + LEAF_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=is_rsa,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([_name_to_general_name(n) for n in names]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
        )
        return Cert(builder.sign(self.ca_key, hashes.SHA256()))

    def get_cert(
        self, commonname: str | None, sans: Iterable[str] = (), organization: str | None = None
    ) -> tuple[Cert, Path]:
        """A leaf for ``commonname`` + ``sans`` and the path of its chain file (leaf + CA)."""
        names = _normalize_names([commonname, *sans])
        if not names:
            names = ("gateway",)
        key = (names, organization)
        with self._lock:
            hit = self._leaves.get(key)
            if hit is not None:
                self._leaves.move_to_end(key)
                return hit
        cert = self._mint(names, organization)
        path = self._leaf_dir / f"leaf-{os.getpid()}-{hashlib.sha256(repr(key).encode()).hexdigest()[:32]}.pem"
        _write_public(path, cert.to_pem() + self.default_ca.to_pem())
        with self._lock:
            self._leaves[key] = (cert, path)
            self._leaves.move_to_end(key)
            while len(self._leaves) > self.cache_size:
                _, (_, old) = self._leaves.popitem(last=False)
                old.unlink(missing_ok=True)
        return cert, path

    def server_context(
        self,
        commonname: str | None,
        sans: Iterable[str] = (),
        *,
        alpn: Iterable[bytes] | None = None,
        organization: str | None = None,
        minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    ) -> tuple[ssl.SSLContext, Cert]:
        """An ``SSLContext`` presenting a leaf for these names, offering exactly ``alpn``.

        Python's server-side ALPN callback picks the first of *our* protocols that the
        client offers, so a list of one (the upstream's choice) makes us agree with the
        upstream or negotiate no ALPN at all.
        """
        cert, path = self.get_cert(commonname, sans, organization)
        alpn_t = tuple(alpn or ())
        key = (path, alpn_t, minimum_version)
        with self._lock:
            ctx = self._contexts.get(key)
            if ctx is not None:
                self._contexts.move_to_end(key)
                return ctx, cert
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = minimum_version
        ctx.load_cert_chain(str(path), str(self._leaf_key_path))
        if alpn_t:
            ctx.set_alpn_protocols([p.decode("latin-1") for p in alpn_t])
        with self._lock:
            self._contexts[key] = ctx
            while len(self._contexts) > self.cache_size:
                self._contexts.popitem(last=False)
        return ctx, cert

    def close(self) -> None:
        """Remove this process's leaf files (the CA stays)."""
        with self._lock:
            for _, path in self._leaves.values():
                path.unlink(missing_ok=True)
            self._leaves.clear()
            self._contexts.clear()
        self._leaf_key_path.unlink(missing_ok=True)

    def announce_created(self) -> None:
        """Log once that this store made a new CA, naming the certificate a user installs,
        not the private key file next to it (the onboarding addon names its page)."""
        if self.created_ca and not self._announced:
            self._announced = True
            log.info("created a new CA: its certificate to install on devices is %s", self.ca_cert_pem_path)

    def discard_created(self) -> None:
        """Undo what this store wrote (leaf files; the CA and directories if it made them):
        for a `gateway up` that fails before serving anything."""
        self.close()
        if self.created_ca:
            for path in (self.ca_path, self.ca_cert_pem_path, self.ca_cert_cer_path, self.ca_cert_p12_path):
                path.unlink(missing_ok=True)
            self.created_ca = False
        for d in self._created_dirs:  # leaf dir first, then the state dir: only if empty
            try:
                d.rmdir()
            except OSError:
                pass

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
