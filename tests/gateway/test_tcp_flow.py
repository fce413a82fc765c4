from gateway.flow import Flow
from gateway.tcp import TCPFlow, TCPMessage
from gateway.test import tflow


def test_message_attributes_and_state():
    m = TCPMessage(True, b"\x00hello\xff", 12.5)
    assert (m.from_client, m.content, m.timestamp) == (True, b"\x00hello\xff", 12.5)
    assert m.get_state() == (True, b"\x00hello\xff", 12.5)
    assert TCPMessage.from_state(m.get_state()) == m
    assert TCPMessage(False, b"x").timestamp > 0
    m.set_state([False, b"y", 1.0])
    assert (m.from_client, m.content, m.timestamp) == (False, b"y", 1.0)
    assert repr(m) == "<- b'y'"
    assert m != TCPMessage(False, b"y", 2.0)
    assert not hasattr(m, "__dict__")  # slotted: one per chunk on the hot path


def test_flow_messages_and_round_trip():
    f = tflow.ttcpflow()
    assert f.type == "tcp"
    assert [m.from_client for m in f.messages] == [True, True, False, False]
    f.messages.append(TCPMessage(True, b"more", 5.0))
    state = f.get_state()
    assert state["messages"][-1] == (True, b"more", 5.0)
    g = Flow.from_state(state)
    assert isinstance(g, TCPFlow) and g.get_state() == state
    assert g.messages[-1] == TCPMessage(True, b"more", 5.0)
    assert repr(g) == "<TCPFlow (5 messages)>"


def test_empty_flow():
    f = TCPFlow(tflow.tclient_conn(), tflow.tserver_conn(), live=True)
    assert f.messages == [] and f.live
    assert TCPFlow.from_state(f.get_state()).messages == []
