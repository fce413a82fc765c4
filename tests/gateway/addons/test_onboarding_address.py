"""The onboarding page answers a request whatever its Host header when it was sent to
``onboarding_ip``: WireGuard mode sends http://10.0.0.1/ (the gateway's own tunnel
address) there, and the phone's Host header then says 10.0.0.1."""

from __future__ import annotations

from gateway.addons.onboarding import Onboarding
from gateway.test import taddons, tflow


def test_request_to_the_onboarding_address_gets_the_page(tmp_path) -> None:  # type: ignore[no-untyped-def]
    addon = Onboarding()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, state_dir=str(tmp_path))
        flow = tflow.tflow(req=tflow.treq(host="198.18.0.1", port=80, scheme=b"http", path=b"/",
                                          headers=((b"Host", b"10.0.0.1"),), content=b""))
        addon.request(flow)
        assert flow.response is not None and flow.response.status_code == 200
        assert b"Trust the gateway" in flow.response.content

        other = tflow.tflow(req=tflow.treq(host="192.0.2.80", port=80, scheme=b"http", path=b"/",
                                           headers=((b"Host", b"10.0.0.1"),), content=b""))
        addon.request(other)
        assert other.response is None

        tctx.configure(addon, onboarding=False)
        off = tflow.tflow(req=tflow.treq(host="198.18.0.1", port=80, scheme=b"http", path=b"/",
                                         headers=((b"Host", b"10.0.0.1"),), content=b""))
        addon.request(off)
        assert off.response is None
