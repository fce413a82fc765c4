import asyncio

import pytest

from gateway import flow
from gateway.flow import STATE_VERSION, ControlException, Error, Flow
from gateway.test import tflow

ALL_FLOWS = {
    "http": lambda: tflow.tflow(resp=True),
    "http+error": lambda: tflow.tflow(err=True),
    "websocket": lambda: tflow.twebsocketflow(close_code=1000, close_reason="bye"),
    "tcp": tflow.ttcpflow,
    "udp": tflow.tudpflow,
    "dns": lambda: tflow.tdnsflow(resp=True),
    "dns+error": lambda: tflow.tdnsflow(err=True),
}
PLAIN = (str, int, float, bool, type(None), bytes)


def assert_plain(value, path="state"):
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{path}: key {k!r}"
            assert_plain(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            assert_plain(v, f"{path}[{i}]")
    else:
        assert type(value) in PLAIN, f"{path} is {type(value).__name__}"


def listify(value):
    """What a format without tuples (JSON, msgpack) gives back."""
    if isinstance(value, dict):
        return {k: listify(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [listify(v) for v in value]
    return value


@pytest.mark.parametrize("kind", sorted(ALL_FLOWS))
def test_state_round_trip_for_every_flow_type(kind):
    f = ALL_FLOWS[kind]()
    f.marked = ":star:"
    f.comment = "ünïcode comment"
    f.metadata = {"addon": {"n": 1, "list": [1, "x"]}}
    f.is_replay = "request"
    state = f.get_state()
    assert state["type"] == f.type and state["version"] == STATE_VERSION
    assert_plain(state)
    g = Flow.from_state(state)
    assert type(g) is type(f)
    assert g.get_state() == state
    # set_state on an existing flow gives the same
    h = type(f).from_state(ALL_FLOWS[kind]().get_state())
    h.set_state(state)
    assert h.get_state() == state
    # tuples may come back as lists from a file format: the flow is the same
    assert Flow.from_state(listify(state)).get_state() == state


def test_state_is_a_snapshot():
    f = tflow.tflow(resp=True)
    f.metadata["k"] = ["v"]
    state = f.get_state()
    f.metadata["k"].append("w")
    f.request.headers["x"] = "1"
    assert state["metadata"] == {"k": ["v"]}
    assert all(name != b"x" for name, _ in state["request"]["headers"])
    g = Flow.from_state(state)
    state["metadata"]["k"].append("z")
    assert g.metadata == {"k": ["v"]}


def test_from_state_errors():
    state = tflow.tflow().get_state()
    with pytest.raises(ValueError, match="unknown flow type"):
        Flow.from_state({**state, "type": "carrier-pigeon"})
    from gateway.tcp import TCPFlow

    with pytest.raises(ValueError):
        TCPFlow.from_state(state)
    f = tflow.ttcpflow()
    with pytest.raises(ValueError):
        f.set_state(state)
    assert flow.flow_class("dns").__name__ == "DNSFlow"


def test_flow_defaults():
    f = tflow.tflow(live=False)
    g = type(f)(f.client_conn, f.server_conn)
    assert len(g.id) == 36 and g.id != f.id
    assert g.error is None and not g.intercepted and g.marked == "" and g.comment == ""
    assert g.metadata == {} and g.is_replay is None and g.live is False
    assert g.timestamp_created > 0
    assert g.client_conn is f.client_conn and g.server_conn is f.server_conn
    assert not g.modified()


def test_error():
    e = Error("connection refused", 123.0)
    assert e.msg == "connection refused" and e.timestamp == 123.0
    assert str(e) == "connection refused" and repr(e) == "connection refused"
    assert Error.from_state(e.get_state()) == e
    assert Error("x").timestamp > 0
    assert Error.KILLED_MESSAGE == "Connection killed."
    e2 = Error("a", 1.0)
    e2.set_state({"msg": "b", "timestamp": 2.0})
    assert (e2.msg, e2.timestamp) == ("b", 2.0)


def test_copy_has_new_id_same_content_not_live():
    f = tflow.tflow(resp=True)
    f.metadata = {"a": [1]}
    c = f.copy()
    assert c.id != f.id and c.live is False and f.live is True
    assert c.request.get_state() == f.request.get_state()
    c.metadata["a"].append(2)
    assert f.metadata == {"a": [1]}


def test_backup_revert_modified():
    f = tflow.tflow(resp=True)
    assert not f.modified()
    f.backup()
    assert not f.modified()
    f.request.path = "/changed"
    f.response.status_code = 500
    f.comment = "edited"
    assert f.modified()
    f.backup()  # keeps the first backup
    f.revert()
    assert f.request.path == "/path?q=1" and f.response.status_code == 200 and f.comment == ""
    assert not f.modified()
    assert f.live is True  # live-ness is not part of the backup
    f.revert()  # no backup: nothing happens
    assert f.request.path == "/path?q=1"


def test_backup_force_and_backup_in_state():
    f = tflow.ttcpflow()
    f.backup()
    f.messages[0].content = b"edited"
    f.backup(force=True)
    assert not f.modified()
    state = f.get_state()
    assert state["backup"]["messages"][0][1] == b"edited"
    g = Flow.from_state(state)
    g.messages[0].content = b"again"
    assert g.modified()
    g.revert()
    assert g.messages[0].content == b"edited"


def test_modified_after_backup_of_websocket_flow():
    f = tflow.twebsocketflow()
    f.backup()
    f.websocket.messages[1].text = "changed"
    assert f.modified()
    f.revert()
    assert f.websocket.messages[1].text == "hello text ✓"


async def test_intercept_resumed_from_another_task():
    f = tflow.tflow()
    f.intercept()
    assert f.intercepted
    f.intercept()  # idempotent
    order = []

    async def layer():
        order.append("waiting")
        await f.wait_for_resume()
        order.append("resumed")

    async def user():
        await asyncio.sleep(0)
        order.append("resume")
        f.resume()

    waiter = asyncio.create_task(layer())
    await asyncio.sleep(0)
    assert order == ["waiting"]
    await asyncio.wait_for(asyncio.gather(waiter, user()), 5)
    assert order == ["waiting", "resume", "resumed"]
    assert not f.intercepted
    f.resume()  # resuming a running flow does nothing


async def test_wait_for_resume_returns_immediately_when_not_intercepted():
    f = tflow.tflow()
    await asyncio.wait_for(f.wait_for_resume(), 1)


async def test_reintercepted_before_waiter_runs_keeps_waiting():
    f = tflow.tflow()
    f.intercept()
    waiter = asyncio.create_task(f.wait_for_resume())
    await asyncio.sleep(0)
    f.resume()
    f.intercept()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not waiter.done()
    f.resume()
    await asyncio.wait_for(waiter, 5)


async def test_kill_releases_an_intercepted_flow():
    f = tflow.tflow()
    assert f.killable
    f.intercept()
    waiter = asyncio.create_task(f.wait_for_resume())
    await asyncio.sleep(0)
    f.kill()
    await asyncio.wait_for(waiter, 5)
    assert f.error.msg == Error.KILLED_MESSAGE
    assert not f.intercepted and not f.live and not f.killable
    with pytest.raises(ControlException):
        f.kill()


def test_not_live_flows_cannot_be_killed():
    f = tflow.tflow(live=False)
    assert not f.killable
    with pytest.raises(ControlException):
        f.kill()
    assert f.error is None


def test_timestamp_start_defaults_to_creation():
    f = tflow.tdummyflow()
    assert f.timestamp_start == f.timestamp_created
    assert f.type == "dummy"
    assert Flow.from_state(f.get_state()).get_state() == f.get_state()
