import pytest
from wsproto.frame_protocol import Opcode

from gateway.flow import Flow
from gateway.test import tflow
from gateway.websocket import WebSocketData, WebSocketMessage


def test_text_message():
    m = WebSocketMessage(Opcode.TEXT, True, "grüße ✓".encode(), 10.0)
    assert m.type is Opcode.TEXT and m.is_text and m.from_client
    assert m.text == "grüße ✓"
    assert m.timestamp == 10.0 and not m.dropped and not m.injected
    m.text = "neu"
    assert m.content == b"neu"
    assert repr(m) == "'neu'"


def test_binary_message_has_no_text():
    m = WebSocketMessage(2, False, b"\x00\xff")
    assert m.type is Opcode.BINARY and not m.is_text
    with pytest.raises(AttributeError):
        _ = m.text
    with pytest.raises(AttributeError):
        m.text = "x"
    assert repr(m) == "b'\\x00\\xff'"
    assert m.timestamp > 0


def test_drop_and_kill():
    m = WebSocketMessage(Opcode.TEXT, True, b"x")
    m.drop()
    assert m.dropped
    n = WebSocketMessage(Opcode.TEXT, True, b"x")
    n.kill()
    assert n.dropped


def test_message_state():
    m = WebSocketMessage(Opcode.TEXT, True, b"hi", 1.0, dropped=True, injected=True)
    assert m.get_state() == (1, True, b"hi", 1.0, True, True)
    again = WebSocketMessage.from_state(m.get_state())
    assert again == m and again.type is Opcode.TEXT
    again.set_state((2, False, b"b", 2.0, False, False))
    assert again.type is Opcode.BINARY and again.content == b"b"


def test_websocket_data():
    d = WebSocketData()
    assert d.messages == [] and d.close_code is None and d.close_reason is None
    assert d.closed_by_client is None and d.timestamp_end is None
    f = tflow.twebsocketflow(close_code=1001, close_reason="going away")
    ws = f.websocket
    assert len(ws.messages) == 4 and ws.messages[3].dropped
    assert (ws.close_code, ws.close_reason, ws.closed_by_client) == (1001, "going away", True)
    assert repr(ws) == "<WebSocketData (4 messages)>"
    assert WebSocketData.from_state(ws.get_state()) == ws


def test_websocket_flow_round_trip():
    f = tflow.twebsocketflow(err=True)
    assert f.response.status_code == 101
    state = f.get_state()
    g = Flow.from_state(state)
    assert g.get_state() == state
    assert g.websocket.messages[1].text == "hello text ✓"
    assert g.websocket.messages[0].type is Opcode.BINARY
