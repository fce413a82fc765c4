from gateway.flow import Flow
from gateway.test import tflow
from gateway.udp import UDPFlow, UDPMessage


def test_message_attributes_and_state():
    m = UDPMessage(False, b"\x01\x02", 3.0)
    assert (m.from_client, m.content, m.timestamp) == (False, b"\x01\x02", 3.0)
    assert UDPMessage.from_state(m.get_state()) == m
    assert repr(m) == "<- b'\\x01\\x02'"
    assert UDPMessage(True, b"").timestamp > 0


def test_flow_round_trip():
    f = tflow.tudpflow(err=True)
    assert f.type == "udp"
    assert f.client_conn.transport_protocol == "udp" and f.server_conn.transport_protocol == "udp"
    state = f.get_state()
    g = Flow.from_state(state)
    assert isinstance(g, UDPFlow) and g.get_state() == state
    assert [m.content for m in g.messages] == [b"hello", b"it's me", b"it's also me"]
    assert g.error.msg == "error"
    assert repr(g) == "<UDPFlow (3 messages)>"
