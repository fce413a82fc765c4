from gateway import dns, http, tcp, udp
from gateway.flow import Flow
from gateway.test import tflow


def test_every_factory_builds_a_complete_flow():
    f = tflow.tflow(resp=True, err=True, ws=True)
    assert isinstance(f, http.HTTPFlow) and f.live
    assert f.request.url == "https://example.com/path?q=1"
    assert f.request.headers.get_all("accept") == ["text/html", "application/json"]
    assert f.request.cookies["session"] == "abc"
    assert f.response.cookies["id"][1]["path"] == "/"
    assert f.websocket.messages[0].content == b"hello"
    assert isinstance(tflow.ttcpflow(), tcp.TCPFlow)
    assert isinstance(tflow.tudpflow(), udp.UDPFlow)
    d = tflow.tdnsflow(resp=True)
    assert isinstance(d, dns.DNSFlow) and d.response.answers
    assert tflow.tdnsflow().response is None
    ws = tflow.twebsocketflow()
    assert ws.response.status_code == 101 and len(ws.websocket.messages) == 4
    assert tflow.tdummyflow().type == "dummy"
    assert tflow.tclient_conn().wireguard_peer == "phone"
    assert tflow.tserver_conn(address=("x", 1)).address == ("x", 1)
    assert tflow.treq(method=b"POST").method == "POST"
    assert tflow.tresp(status_code=404).status_code == 404
    assert tflow.terr("boom").msg == "boom"


def test_fresh_ids_each_call_and_fixed_timestamps():
    a, b = tflow.tflow(), tflow.tflow()
    assert a.id != b.id and a.client_conn.id != b.client_conn.id
    assert a.request.timestamp_start == b.request.timestamp_start == tflow.T0
    assert a.timestamp_created == tflow.T0


def test_flows_survive_state_round_trip():
    for f in (tflow.tflow(resp=True), tflow.ttcpflow(err=True), tflow.tudpflow(), tflow.tdnsflow(resp=True),
              tflow.twebsocketflow(), tflow.tdummyflow(err=True)):  # fmt: skip
        assert Flow.from_state(f.get_state()).get_state() == f.get_state()


def test_optional_parts_can_be_left_out():
    f = tflow.tflow(req=None, client_conn=tflow.tclient_conn(wireguard_peer=None))
    assert f.request is None and f.client_conn.wireguard_peer is None
    t = tflow.ttcpflow(messages=[])
    assert t.messages == []
