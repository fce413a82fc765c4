"""Live output: one line per finished flow for every flow type, detail levels, quiet, plain when piped."""

from __future__ import annotations

import io
import ipaddress

import pytest

from gateway import dns
from gateway.addons.dumper import Dumper, pretty_duration, pretty_size
from gateway.connection import Client, Server
from gateway.flow import Error
from gateway.http import HTTPFlow, Request, Response
from gateway.tcp import TCPFlow, TCPMessage
from gateway.test import taddons
from gateway.udp import UDPFlow, UDPMessage
from gateway.websocket import WebSocketData, WebSocketMessage


def client(**kw) -> Client:
    return Client(peername=("10.0.0.2", 41000), sockname=("10.0.0.1", 443), **kw)


def http_flow(status: int = 200, body: bytes = b"x" * 1500) -> HTTPFlow:
    f = HTTPFlow(client(), Server(address=("example.com", 443)))
    f.request = Request.make("POST", "https://example.com/api?q=1", b'{"a": 1}', {"Content-Type": "application/json"})
    f.request.timestamp_start = 1000.0
    f.response = Response.make(status, body, {"Content-Type": "text/plain", "Set-Cookie": "a=1"})
    f.response.timestamp_start = 1000.030
    f.response.timestamp_end = 1000.045
    return f


def run(dumper: Dumper, hook: str, f, **options) -> str:
    out = io.StringIO()
    dumper.outfile = out
    with taddons.context(dumper) as tctx:
        if options:
            tctx.configure(dumper, **options)
        tctx.master.addons.trigger_sync(hook, f)
    return out.getvalue()


def test_http_line_has_client_method_url_status_size_duration():
    out = run(Dumper(), "response", http_flow())
    assert out == "10.0.0.2:41000 POST https://example.com/api?q=1 200 OK 1.5k 45ms\n"


def test_streamed_response_and_errors():
    f = http_flow()
    f.response.raw_content = None
    f.response.headers["content-length"] = "2048"
    assert "2.0k (streamed)" in run(Dumper(), "response", f)

    f = HTTPFlow(client(), Server(address=("down.test", 80)))
    f.request = Request.make("GET", "http://down.test/")
    f.error = Error("server unreachable: connection refused")
    out = run(Dumper(), "error", f)
    assert out.startswith("10.0.0.2:41000 GET http://down.test/")
    assert "<< server unreachable: connection refused" in out


def test_wireguard_peer_is_shown():
    f = http_flow()
    f.client_conn = client(wireguard_peer="phone")
    assert run(Dumper(), "response", f).startswith("10.0.0.2:41000 [phone] POST")


def test_flow_detail_levels():
    f = http_flow(body=b"hello body")
    assert run(Dumper(), "response", f, flow_detail=0) == ""
    one = run(Dumper(), "response", f, flow_detail=1)
    assert len(one.splitlines()) == 1
    two = run(Dumper(), "response", f, flow_detail=2)
    assert "> content-type: application/json" in two.lower()
    assert "< set-cookie: a=1" in two.lower()
    assert "hello body" not in two
    three = run(Dumper(), "response", f, flow_detail=3)
    assert "hello body" in three
    assert '"a": 1' in three  # the request body through the JSON content view


def test_detail_3_cuts_long_bodies_and_4_shows_all():
    f = http_flow(body=b"A" * 5000)
    three = run(Dumper(), "response", f, flow_detail=3)
    assert "A" * 1024 in three and "A" * 1025 not in three
    assert "cut off" in three
    four = run(Dumper(), "response", f, flow_detail=4)
    assert "A" * 5000 in four and "cut off" not in four


def test_many_lines_cut_at_detail_3():
    f = http_flow(body=b"line\n" * 200)
    three = run(Dumper(), "response", f, flow_detail=3)
    assert three.count("line") < 100 and "cut off" in three
    four = run(Dumper(), "response", f, flow_detail=4)
    assert four.count("line") == 200


def test_contentview_option():
    f = http_flow(body=b"hi")
    out = run(Dumper(), "response", f, flow_detail=3, dumper_default_contentview="hex")
    assert "00000000  68 69" in out

    from gateway.optmanager import OptionsError

    d = Dumper()
    with taddons.context(d) as tctx, pytest.raises(OptionsError, match="unknown view 'nope'"):
        tctx.configure(d, dumper_default_contentview="nope")


def test_binary_body_is_hexdumped():
    f = http_flow(body=bytes(range(0, 40)))
    out = run(Dumper(), "response", f, flow_detail=3)
    assert "00000000  00 01 02 03" in out


def test_long_url_shortened_at_detail_1_only():
    f = http_flow()
    f.request.url = "https://example.com/" + "p" * 300
    assert "…" in run(Dumper(), "response", f, flow_detail=1)
    assert "p" * 300 in run(Dumper(), "response", f, flow_detail=2)


def test_tcp_and_udp_lines():
    f = TCPFlow(client(), Server(address=("10.9.9.9", 7)))
    f.messages = [TCPMessage(True, b"hello", 1000.0), TCPMessage(False, b"hello world", 1000.5)]
    f.client_conn.timestamp_start = 1000.0
    out = run(Dumper(), "tcp_end", f)
    assert out == "10.0.0.2:41000 TCP 10.9.9.9:7 2 messages, 5b up, 11b down 500ms\n"

    u = UDPFlow(client(), Server(address=("2001:db8::1", 53000)))
    u.messages = [UDPMessage(True, b"ping", 1.0)]
    u.client_conn.timestamp_start = 1.0
    out = run(Dumper(), "udp_end", u)
    assert out.startswith("10.0.0.2:41000 UDP [2001:db8::1]:53000 1 messages, 4b up, 0b down")

    out = run(Dumper(), "tcp_message", f, flow_detail=3)
    assert "<- 10.9.9.9:7 11b" in out and "hello world" in out


def test_tcp_error_shown_on_end_line():
    f = TCPFlow(client(), Server(address=("10.9.9.9", 7)))
    f.error = Error("connection reset")
    assert run(Dumper(), "tcp_error", f) == ""
    assert "<< connection reset" in run(Dumper(), "tcp_end", f)


def test_dns_line():
    f = dns.DNSFlow(client(), Server(address=("9.9.9.9", 53)))
    f.request = dns.DNSMessage.make_query("example.com", dns.types.A)
    f.request.timestamp = 10.0
    f.response = f.request.succeed([dns.ResourceRecord.A("example.com", ipaddress.IPv4Address("93.184.216.34"))])
    f.response.timestamp = 10.012
    out = run(Dumper(), "dns_response", f)
    assert out == "10.0.0.2:41000 DNS A example.com -> 93.184.216.34 NOERROR 12ms\n"

    f.response = f.request.fail(dns.response_codes.NXDOMAIN)
    f.response.timestamp = 10.001
    assert "(no answer) NXDOMAIN" in run(Dumper(), "dns_response", f)

    f.response = None
    f.error = Error("timeout")
    assert "DNS A example.com << timeout" in run(Dumper(), "dns_error", f)


def test_websocket_end_and_messages():
    f = http_flow(status=101, body=b"")
    f.websocket = WebSocketData(
        [WebSocketMessage(1, True, b"hi"), WebSocketMessage(1, False, b"there")], close_code=1000
    )
    out = run(Dumper(), "websocket_end", f)
    assert out == "10.0.0.2:41000 WS https://example.com/api?q=1 2 messages, closed 1000\n"
    assert run(Dumper(), "websocket_message", f) == ""
    assert "there" in run(Dumper(), "websocket_message", f, flow_detail=3)


def test_flow_detail_out_of_range_refused():
    from gateway.optmanager import OptionsError

    d = Dumper()
    with taddons.context(d) as tctx, pytest.raises(OptionsError, match="between 0 and 4"):
        tctx.configure(d, flow_detail=7)


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tty_output_goes_through_rich_and_piped_output_is_plain(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    d = Dumper(outfile=FakeTTY())
    with taddons.context(d) as tctx:
        tctx.master.addons.trigger_sync("response", http_flow())
    coloured = d.outfile.getvalue()
    assert "\x1b[" in coloured and "example.com/api" in coloured
    plain = run(Dumper(), "response", http_flow())
    assert "\x1b[" not in plain


@pytest.mark.parametrize(
    "n,text", [(0, "0b"), (1023, "1023b"), (1536, "1.5k"), (5 * 2**20, "5.0m"), (150 * 2**20, "150m"), (None, "?")]
)
def test_pretty_size(n, text):
    assert pretty_size(n) == text


@pytest.mark.parametrize("s,text", [(0.0123, "12ms"), (1.25, "1.2s"), (250, "250s"), (None, ""), (-1, "")])
def test_pretty_duration(s, text):
    assert pretty_duration(s) == text


def test_dumper_filter_selects_flows():
    post = http_flow()
    get = http_flow()
    get.request.method = "GET"
    assert run(Dumper(), "response", post, dumper_filter="~m GET") == ""
    assert " GET " in run(Dumper(), "response", get, dumper_filter="~m GET")


def test_bad_dumper_filter_is_a_one_line_error():
    from gateway.optmanager import OptionsError

    d = Dumper()
    with taddons.context(d) as tctx, pytest.raises(OptionsError) as e:
        tctx.configure(d, dumper_filter="~m (")
    assert str(e.value).startswith("dumper_filter:") and "\n" not in str(e.value)


def test_cut_off_streamed_response_shows_time_to_the_error_and_no_full_size():
    """A streamed download the client abandoned: the line must not claim the whole announced
    body nor the time to the response head (seen in the lab: '50.0m (streamed) 1ms')."""
    f = http_flow()
    f.response.raw_content = None
    f.response.headers["content-length"] = str(50 << 20)
    f.response.timestamp_end = None
    f.error = Error("client disconnected: netstack: connection reset", 1000.530)
    out = run(Dumper(), "error", f)
    assert "200 OK" in out
    assert "50.0m announced (streamed)" in out
    assert " 530ms " in out
    assert out.rstrip().endswith("<< client disconnected: netstack: connection reset")


def test_detail_3_says_a_streamed_body_was_not_recorded():
    """At detail 3 a 20 MB upload streamed through showed its headers and then nothing, as
    if the body were empty."""
    f = http_flow()
    f.request.raw_content = None
    f.request.headers["content-length"] = "20000000"
    out = run(Dumper(), "response", f, flow_detail=3)
    lines = out.splitlines()
    at = lines.index("    > content-length: 20000000")
    assert lines[at + 1] == "    (body streamed through, not recorded)"
    # A streamed GET (an addon set request.stream) has no body: no note.
    f.request.headers.pop("content-length")
    f.request.method = "GET"
    assert "not recorded" not in run(Dumper(), "response", f, flow_detail=3)


def test_live_message_lines_name_their_flow():
    """At detail 3 TCP/UDP/WebSocket messages are printed as they pass, long before the
    flow's own line (a UDP flow's comes when it goes idle): with several flows at once a
    bare '-> 9b' could belong to any of them."""
    f = TCPFlow(client(wireguard_peer="phone"), Server(address=("www.lab.test", 5001)))
    f.messages = [TCPMessage(True, b"GET 3000\n", 1000.0), TCPMessage(False, b"x" * 10, 1000.5)]
    out = run(Dumper(), "tcp_message", f, flow_detail=3).splitlines()
    assert out[0] == "    10.0.0.2:41000 [phone] <- www.lab.test:5001 10b"
    f.messages.pop()
    out = run(Dumper(), "tcp_message", f, flow_detail=3).splitlines()
    assert out[0] == "    10.0.0.2:41000 [phone] -> www.lab.test:5001 9b"

    u = UDPFlow(client(), Server(address=("2001:db8::1", 9999)))
    u.messages = [UDPMessage(True, b"ping", 1.0)]
    assert run(Dumper(), "udp_message", u, flow_detail=3).splitlines()[0] == "    10.0.0.2:41000 -> [2001:db8::1]:9999 4b"

    w = http_flow(status=101, body=b"")
    w.websocket = WebSocketData([WebSocketMessage(1, False, b"there")])
    assert run(Dumper(), "websocket_message", w, flow_detail=3).splitlines()[0] == \
        "    10.0.0.2:41000 <- WS example.com:443 5b"


def test_a_request_refused_before_it_had_a_url_shows_its_target():
    """A malformed request (answered 400 before its URL was known) printed as 'GET ://:0/'."""
    from gateway.http import Headers

    f = HTTPFlow(client(), Server(address=None))
    f.request = Request("", 0, b"GET", b"", b"", b"/index.html", b"HTTP/1.1", Headers(), None, None, 1.0, 1.0)
    f.error = Error("invalid Content-Length: b'-5'")
    assert run(Dumper(), "error", f) == "10.0.0.2:41000 GET /index.html << invalid Content-Length: b'-5'\n"


def test_flows_still_open_at_shutdown_get_their_line():
    """Ctrl-C during a download printed nothing for it (its connection was cancelled, no
    error hook ran), and a WebSocket's line came after the shutdown summary."""
    from gateway.addons.save import SHUTDOWN_MESSAGE

    d = Dumper()
    out = io.StringIO()
    d.outfile = out
    downloading = http_flow()
    downloading.response.timestamp_end = None
    finished = http_flow()
    tcp = TCPFlow(client(), Server(address=("10.9.9.9", 7)))
    tcp.messages = [TCPMessage(True, b"hello", 1000.0)]
    with taddons.context(d) as tctx:
        for f in (downloading, finished):
            tctx.master.addons.trigger_sync("request", f)
        tctx.master.addons.trigger_sync("tcp_start", tcp)
        tctx.master.addons.trigger_sync("response", finished)
        killed = http_flow()
        tctx.master.addons.trigger_sync("request", killed)
        killed.live = True
        killed.kill()  # by an addon in the request hook: the layer fires no end hook for it
        assert out.getvalue().count("\n") == 1
        tctx.master.addons.trigger_sync("done")
        lines = out.getvalue().splitlines()[1:]
        assert len(lines) == 2
        assert lines[0].startswith("10.0.0.2:41000 POST https://example.com/api?q=1 200 OK")
        assert lines[0].endswith(f"<< {SHUTDOWN_MESSAGE}")
        assert lines[1].startswith("10.0.0.2:41000 TCP 10.9.9.9:7 1 messages")
        assert lines[1].endswith(f"<< {SHUTDOWN_MESSAGE}")
        assert downloading.error is None and tcp.error is None  # the flows are left alone
        # What the cancelled connections report afterwards is not printed a second time.
        tctx.master.addons.trigger_sync("tcp_end", tcp)
        assert out.getvalue().splitlines()[1:] == lines


def test_open_flows_remembered_for_shutdown_are_bounded(monkeypatch):
    import gateway.addons.dumper as dumper_module

    monkeypatch.setattr(dumper_module, "MAX_OPEN", 3)
    d = Dumper()
    d.outfile = io.StringIO()
    flows = [TCPFlow(client(), Server(address=("10.9.9.9", n))) for n in range(5)]
    with taddons.context(d) as tctx:
        for f in flows:
            tctx.master.addons.trigger_sync("tcp_start", f)
        tctx.master.addons.trigger_sync("done")
    assert [line.split()[2] for line in d.outfile.getvalue().splitlines()] == ["10.9.9.9:2", "10.9.9.9:3", "10.9.9.9:4"]
