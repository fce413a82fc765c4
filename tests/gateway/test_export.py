"""curl, raw and HAR exports, checked by parsing them back and by running the curl
command against a real server on loopback."""

from __future__ import annotations

import base64
import io
import json
import shlex
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway import export, http
from gateway.test import tflow


def post_flow(body: bytes, content_type: str = "application/json") -> http.HTTPFlow:
    f = tflow.tflow(resp=True)
    f.request.method = "POST"
    f.request.headers["Content-Type"] = content_type
    f.request.headers.add("X-Repeat", "one")
    f.request.headers.add("X-Repeat", "two")
    f.request.headers["X-Quote"] = "it's \"quoted\" $HOME `x`"
    f.request.content = body
    return f


def test_curl_command_arguments_for_a_get():
    f = tflow.tflow(req=tflow.treq(content=b""))
    args = shlex.split(export.curl_command(f))
    assert args[0] == "curl"
    assert "-X" not in args  # GET is curl's default
    assert "https://example.com/path?q=1" in args
    headers = [args[i + 1] for i, a in enumerate(args) if a == "-H"]
    assert headers == ["header: qvalue", "Accept: text/html", "Accept: application/json",
                       "Cookie: session=abc; theme=dark"]  # fmt: skip
    assert "--data-binary" not in args


def test_curl_command_arguments_for_a_post_with_awkward_headers():
    f = post_flow('{"name": "Zoë", "note": "it\'s $HOME"}'.encode())
    args = shlex.split(export.curl_command(f))
    assert "-X" not in args  # POST is implied by --data-binary
    headers = [args[i + 1] for i, a in enumerate(args) if a == "-H"]
    assert "X-Quote: it's \"quoted\" $HOME `x`" in headers
    assert headers.count("X-Repeat: one") == 1 and "X-Repeat: two" in headers
    assert not any(h.lower().startswith("content-length") for h in headers)
    assert args[args.index("--data-binary") + 1] == '{"name": "Zoë", "note": "it\'s $HOME"}'


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_curl_command_names_other_methods(method):
    f = tflow.tflow(req=tflow.treq(method=method.encode()))
    args = shlex.split(export.curl_command(f))
    assert args[args.index("-X") + 1] == method


def test_curl_keeps_a_host_header_that_differs_from_the_url():
    f = tflow.tflow()
    f.request.headers["Host"] = "virtual.example"
    assert "Host: virtual.example" in shlex.split(export.curl_command(f))


def test_curl_refuses_non_http_flows():
    with pytest.raises(ValueError, match="only HTTP flows"):
        export.curl_command(tflow.ttcpflow())


class _Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        _Recorder.seen.append((self.command, self.path, self.headers.items(), body))
        self.send_response(204)
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen = []
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "Zo\xc3\xab and it\'s $HOME `id`"}',
        b"\x00\x01binary\xff\xfe with 100% \\ backslash and 'quotes'\n\r\n",
        bytes(range(256)),
    ],
    ids=["text", "binary", "every-byte"],
)
def test_curl_command_sends_the_same_request_to_a_real_server(recorder, body):
    f = post_flow(body, "application/octet-stream")
    f.request.url = f"http://127.0.0.1:{recorder.server_port}/upload?x=1&y=%20"
    f.request.method = "PUT"
    command = export.curl_command(f) + " --silent --max-time 10"
    result = subprocess.run(["sh", "-c", command], capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    method, path, headers, got_body = _Recorder.seen[-1]
    assert (method, path) == ("PUT", "/upload?x=1&y=%20")
    assert got_body == body
    sent = [(k.lower(), v) for k, v in headers]
    assert ("x-quote", "it's \"quoted\" $HOME `x`") in sent
    assert [v for k, v in sent if k == "x-repeat"] == ["one", "two"]
    assert ("content-type", "application/octet-stream") in sent


def test_raw_request_and_response_are_http1_bytes():
    f = tflow.tflow(resp=True)
    assert export.raw_request(f) == (
        b"GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nheader: qvalue\r\nAccept: text/html\r\n"
        b"Accept: application/json\r\nCookie: session=abc; theme=dark\r\ncontent-length: 7\r\n\r\ncontent"
    )
    assert export.raw_response(f) == (
        b"HTTP/1.1 200 OK\r\nheader-response: svalue\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Set-Cookie: id=a3fWa; Path=/; Secure; HttpOnly\r\ncontent-length: 7\r\n\r\nmessage"
    )
    assert export.raw(f) == export.raw_request(f) + b"\r\n\r\n" + export.raw_response(f)
    assert export.raw(tflow.tflow()) == export.raw_request(tflow.tflow())
    with pytest.raises(ValueError, match="no response"):
        export.raw_response(tflow.tflow())


def test_raw_export_of_a_chunked_message_is_chunked_again():
    f = tflow.tflow(resp=True)
    del f.response.headers["content-length"]
    f.response.headers["Transfer-Encoding"] = "chunked"
    f.response.trailers = http.Headers(x_sum="1")
    out = export.raw_response(f)
    assert out.endswith(b"\r\n\r\n7\r\nmessage\r\n0\r\nx-sum: 1\r\n\r\n")


def test_raw_export_of_http2_uses_http1_form_with_a_host_header():
    req = http.Request("example.com", 443, b"GET", b"https", b"example.com", b"/x", b"HTTP/2.0",
                       http.Headers(accept="*/*"), b"", None, 0.0, 0.0)  # fmt: skip
    f = tflow.tflow(req=req)
    assert export.raw_request(f).startswith(b"GET /x HTTP/1.1\r\nHost: example.com\r\naccept: */*\r\n")
    assert "--http2" in shlex.split(export.curl_command(f))


def test_har_export_parses_back_with_every_field():
    text_flow = tflow.tflow(resp=True)
    text_flow.comment = "first"
    form = post_flow(b"a=1&b=caf%C3%A9", "application/x-www-form-urlencoded")
    binary = tflow.tflow(resp=tflow.tresp(headers=http.Headers(content_type="image/png"), content=bytes(range(256))))
    gz = tflow.tflow(resp=True)
    gz.response.headers["Content-Encoding"] = "gzip"
    gz.response.content = b"hello " * 100
    failed = tflow.tflow(err=True)
    flows = [text_flow, form, binary, gz, failed, tflow.twebsocketflow(), tflow.ttcpflow(), tflow.tdnsflow()]
    buf = io.StringIO()
    assert export.write_har(flows, buf) == 6
    doc = json.loads(buf.getvalue())
    log = doc["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "gateway"
    entries = log["entries"]
    assert len(entries) == 6  # TCP and DNS flows have no HAR form

    e = entries[0]
    assert e["startedDateTime"] == "1999-12-31T23:00:00.000Z"
    assert e["request"]["method"] == "GET" and e["request"]["url"] == "https://example.com/path?q=1"
    assert {"name": "Accept", "value": "application/json"} in e["request"]["headers"]
    assert e["request"]["queryString"] == [{"name": "q", "value": "1"}]
    assert e["request"]["cookies"] == [{"name": "session", "value": "abc"}, {"name": "theme", "value": "dark"}]
    assert e["response"]["status"] == 200 and e["response"]["content"]["text"] == "message"
    assert e["response"]["cookies"] == [{"name": "id", "value": "a3fWa", "path": "/", "httpOnly": True,
                                         "secure": True}]  # fmt: skip
    assert e["timings"]["send"] == 1000 and e["timings"]["wait"] == 1000 and e["timings"]["receive"] == 1000
    assert e["serverIPAddress"] == "93.184.216.34" and e["comment"] == "first"

    assert entries[1]["request"]["postData"]["params"] == [{"name": "a", "value": "1"}, {"name": "b", "value": "café"}]
    content = entries[2]["response"]["content"]
    assert content["encoding"] == "base64" and base64.b64decode(content["text"]) == bytes(range(256))
    content = entries[3]["response"]["content"]
    assert content["text"] == "hello " * 100 and content["size"] == 600
    assert content["compression"] == 600 - len(gz.response.raw_content)
    assert entries[4]["response"]["status"] == 0 and entries[4]["response"]["_error"] == "error"
    ws = entries[5]["_webSocketMessages"]
    assert [m["type"] for m in ws] == ["send", "send", "receive", "receive"]
    assert base64.b64decode(ws[0]["data"]) == b"hello binary" and ws[1]["data"] == "hello text ✓"


def test_formats_table_exports_bytes():
    f = tflow.tflow(resp=True)
    for name, fn in export.formats.items():
        assert isinstance(fn(f), bytes), name


def streamed_flow() -> http.HTTPFlow:
    """A 20 MB upload and a 50 MB download streamed through without being kept (both bodies
    above stream_large_bodies), the download cut off by the client."""
    from gateway.flow import Error

    f = tflow.tflow(resp=True)
    f.request.method = "POST"
    f.request.headers["Content-Length"] = "20000000"
    f.request.raw_content = None
    f.response.headers["content-length"] = str(50 << 20)
    f.response.raw_content = None
    f.error = Error("client disconnected: connection reset")
    return f


def test_curl_command_says_when_the_body_was_not_recorded():
    """The command for a streamed POST replayed it with no body and said nothing."""
    command = export.curl_command(streamed_flow())
    first, _, rest = command.partition("\n")
    assert first.startswith("#") and "not recorded" in first and "20000000 bytes" in first
    assert shlex.split(rest)[:3] == ["curl", "-X", "POST"]
    # A shell runs it as the comment plus the command.
    assert subprocess.run(["sh", "-n", "-c", command]).returncode == 0


def test_har_of_streamed_bodies_gives_their_announced_sizes_and_the_error():
    entry = export.har_entry(streamed_flow())
    assert entry["request"]["bodySize"] == 20000000
    assert "postData" not in entry["request"]
    content = entry["response"]["content"]
    assert content["size"] == 50 << 20 and content["text"] == ""
    assert "not recorded" in content["comment"]
    assert entry["response"]["bodySize"] == 50 << 20
    assert entry["response"]["_error"] == "client disconnected: connection reset"
