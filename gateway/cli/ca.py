"""``gateway ca``: where the interception CA is, its fingerprint, and how to trust it.

Creates the CA if this is the first run, exactly as ``gateway up`` would, so a user can
install the certificate on a device before starting the gateway.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from gateway.options import DEFAULT_STATE_DIR

ONBOARDING_HOST = "gateway.internal"

INSTRUCTIONS = """\
Install it:
  Devices through the gateway: open http://{host}/ and follow the page.
  Debian/Ubuntu:  sudo cp {pem} /usr/local/share/ca-certificates/gateway.crt && sudo update-ca-certificates
  Fedora/RHEL:    sudo cp {pem} /etc/pki/ca-trust/source/anchors/gateway.pem && sudo update-ca-trust
  macOS:          sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {pem}
  Windows:        certutil -addstore root {cer}
  Firefox:        Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import {pem}
  Android:        copy {cer} to the phone, Settings > Security > Encryption & credentials > Install a certificate > CA certificate
  iOS:            open {p12_or_cer} on the device (AirDrop/mail) or http://{host}/, install the profile, then
                  Settings > General > About > Certificate Trust Settings > enable full trust
  Python/curl:    curl --cacert {pem} ...   /   SSL_CERT_FILE={pem} / REQUESTS_CA_BUNDLE={pem}
Keep {key} private: anyone with it can impersonate any site to devices that trust this CA."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "ca",
        help="show the interception CA (path, fingerprint) and how to install it",
        description="Print the CA certificate's location and SHA-256 fingerprint, and how to "
        "make devices trust it.  Creates the CA on first use.",
    )
    p.add_argument("--state-dir", metavar="DIR", default=None,
                   help=f"directory holding the CA (default: $GATEWAY_STATE_DIR or {DEFAULT_STATE_DIR})")
    p.add_argument("--pem", action="store_true", help="print only the CA certificate in PEM form")
    return p


def run(args: argparse.Namespace) -> int:
    from gateway.certs import CertStore

    state_dir = os.path.expanduser(args.state_dir or DEFAULT_STATE_DIR)
    store = CertStore(state_dir)
    try:
        ca = store.default_ca
        if args.pem:
            print(ca.to_pem().decode(), end="")
            return 0
        fp = ca.fingerprint().hex().upper()
        print(f"CA certificate: {store.ca_cert_pem_path}")
        print(f"  also as DER:  {store.ca_cert_cer_path}")
        print(f"  and PKCS#12:  {store.ca_cert_p12_path}")
        print(f"Subject:        CN={ca.cn}, O={ca.organization}")
        print(f"Valid until:    {ca.notafter:%Y-%m-%d}")
        print("SHA-256 fingerprint:")
        print("  " + ":".join(fp[i : i + 2] for i in range(0, len(fp), 2)))
        print()
        print(INSTRUCTIONS.format(
            host=ONBOARDING_HOST, pem=store.ca_cert_pem_path, cer=store.ca_cert_cer_path,
            p12_or_cer=store.ca_cert_cer_path, key=store.ca_path,
        ))
    finally:
        store.close()
    return 0
