"""The onboarding page: ``http://gateway.internal/`` serves the CA to devices behind us.

The magic host is answered locally by the ``request`` hook, so no server is ever
contacted for it (mitmproxy's ``mitm.it`` works the same way).  It is under the
``.internal`` top-level domain, which ICANN reserves for private use, so the name can
never reach a real site.  For packet modes (WireGuard) the device first resolves the
name through us: ``dns_request`` answers it locally with ``onboarding_ip``, an address
from the benchmarking range (198.18.0.0/15) that is never routed; the connection to it
goes through the gateway and is answered by the ``request`` hook.

Paths: ``/`` (instructions), ``/cert/pem``, ``/cert/cer`` (DER), ``/cert/p12``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gateway import ctx
from gateway.addons.onboarding_page import INDEX

log = logging.getLogger("gateway.onboarding")

DEFAULT_HOST = "gateway.internal"
DEFAULT_IP = "198.18.0.1"

FILES = {
    "/cert/pem": ("gateway-ca-cert.pem", "application/x-x509-ca-cert", "gateway-ca-cert.pem"),
    "/cert/cer": ("gateway-ca-cert.cer", "application/x-x509-ca-cert", "gateway-ca-cert.cer"),
    "/cert/p12": ("gateway-ca-cert.p12", "application/x-pkcs12", "gateway-ca-cert.p12"),
}


class Onboarding:
    def load(self, loader: Any) -> None:
        loader.add_option("onboarding", bool, True, "Serve the CA on the onboarding host.")
        loader.add_option(
            "onboarding_host", str, DEFAULT_HOST,
            "Host name of the onboarding page, answered locally (no server is contacted).",
        )
        loader.add_option(
            "onboarding_ip", str, DEFAULT_IP,
            "Address returned to DNS queries for the onboarding host (packet modes).",
        )

    def running(self) -> None:
        """One line after the listeners: where devices get the CA.  Without it, whoever
        scanned the QR code sees certificate errors on every HTTPS site and no hint of
        this page."""
        proxyserver = ctx.master.addons.get("proxyserver") if ctx.master is not None else None
        if ctx.options.onboarding and (proxyserver is None or getattr(proxyserver, "servers", True)):
            log.info("install the CA on each device from http://%s/ (opened through the gateway)",
                     ctx.options.onboarding_host)

    def _state_dir(self) -> Path:
        state = Path(ctx.options.state_dir).expanduser()
        if not (state / "gateway-ca-cert.pem").exists():
            from gateway.certs import CertStore

            CertStore(state).close()
        return state

    def _is_onboarding(self, host: str | None) -> bool:
        if not ctx.options.onboarding or not host:
            return False
        return host.rstrip(".").lower() == ctx.options.onboarding_host.lower()

    def request(self, flow: Any) -> None:
        # pretty_host: the Host header when present.  In packet and transparent modes
        # request.host is the address the phone connected to, not the name it asked for.
        if flow.response is not None or not (
            self._is_onboarding(flow.request.pretty_host)
            # A packet mode sends the gateway's own tunnel address (http://10.0.0.1/) here.
            or (ctx.options.onboarding and flow.request.host == ctx.options.onboarding_ip)
        ):
            return
        from gateway.http import Response

        path = flow.request.path.split("?", 1)[0]
        if flow.request.method not in ("GET", "HEAD"):
            flow.response = Response.make(405, b"GET only\n", {"Content-Type": "text/plain", "Allow": "GET, HEAD"})
            return
        state = self._state_dir()
        if path in ("/", "/index.html"):
            from gateway.certs import Cert

            ca = Cert.from_pem((state / "gateway-ca-cert.pem").read_bytes())
            fp = ca.fingerprint().hex().upper()
            page = INDEX.format(cn=ca.cn, fingerprint=":".join(fp[i : i + 2] for i in range(0, len(fp), 2)))
            flow.response = Response.make(200, page, {"Content-Type": "text/html; charset=utf-8",
                                                      "Cache-Control": "no-store"})
        elif path in FILES:
            name, ctype, download = FILES[path]
            flow.response = Response.make(200, (state / name).read_bytes(), {
                "Content-Type": ctype,
                "Content-Disposition": f'attachment; filename="{download}"',
                "Cache-Control": "no-store",
            })
        else:
            flow.response = Response.make(404, b"Not found\n", {"Content-Type": "text/plain"})

    def dns_request(self, flow: Any) -> None:
        """Answer A queries for the onboarding host (AAAA and others: no data)."""
        if flow.response is not None or not ctx.options.onboarding:
            return
        try:
            import dns.message
            import dns.rdataclass
            import dns.rdatatype
            import dns.rrset

            query = dns.message.from_wire(flow.request.packed)
        except Exception:  # noqa: BLE001 - not our business if it does not parse
            return
        if len(query.question) != 1:
            return
        q = query.question[0]
        if not self._is_onboarding(q.name.to_text(omit_final_dot=True)):
            return
        answer = dns.message.make_response(query)
        if q.rdtype == dns.rdatatype.A and q.rdclass == dns.rdataclass.IN:
            answer.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", ctx.options.onboarding_ip))
        from gateway.layers.dns import message_from_wire

        flow.response = message_from_wire(answer.to_wire())
