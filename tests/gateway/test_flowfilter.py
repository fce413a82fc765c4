"""Filter expressions on real flows of every type, and clear errors for bad expressions."""

from __future__ import annotations

import pytest

from gateway import flowfilter, http
from gateway.flowfilter import FilterSyntaxError, match, parse
from gateway.test import tflow
from gateway.websocket import Opcode, WebSocketMessage


@pytest.fixture
def flows() -> dict:
    get = tflow.tflow(resp=True)  # GET https://example.com/path?q=1 -> 200 text/plain
    post = tflow.tflow(
        req=tflow.treq(method=b"POST", host="api.test", path=b"/v2/login", content=b'{"user": "ann"}',
                       headers=http.Headers([(b"Host", b"api.test"), (b"Content-Type", b"application/json"),
                                             (b"User-Agent", b"curl/8.5.0")])),
        resp=tflow.tresp(status_code=404, headers=http.Headers(content_type="text/html")),
    )  # fmt: skip
    pending = tflow.tflow()
    failed = tflow.tflow(err=True)
    gz = tflow.tflow(resp=True)
    gz.response.headers["Content-Encoding"] = "gzip"
    gz.response.content = b"secret inside gzip"
    img = tflow.tflow(resp=tflow.tresp(headers=http.Headers(content_type="image/png")))
    ws = tflow.twebsocketflow()
    ws.websocket.messages.append(WebSocketMessage(Opcode.TEXT, False, b"server says hi", 1.0))
    marked = tflow.tflow(resp=True)
    marked.marked = ":star:"
    marked.comment = "check later"
    marked.metadata["tag"] = "interesting"
    marked.is_replay = "request"
    return {
        "get": get, "post": post, "pending": pending, "failed": failed, "gz": gz, "img": img, "ws": ws,
        "marked": marked, "tcp": tflow.ttcpflow(), "udp": tflow.tudpflow(),
        "dnsq": tflow.tdnsflow(), "dns": tflow.tdnsflow(resp=True),
    }  # fmt: skip


def matching(expr: str, flows: dict) -> set[str]:
    flt = parse(expr)
    return {name for name, f in flows.items() if flt(f)}


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("~http", {"get", "post", "pending", "failed", "gz", "img", "ws", "marked"}),
        ("~tcp", {"tcp"}),
        ("~udp", {"udp"}),
        ("~dns", {"dnsq", "dns"}),
        ("~websocket", {"ws"}),
        ("~q", {"pending", "failed", "dnsq"}),
        ("~s & ~dns", {"dns"}),
        ("~e", {"failed"}),
        ("~marked", {"marked"}),
        ("~marker star", {"marked"}),
        ("~comment later", {"marked"}),
        ("~meta tag:\\s*interesting", {"marked"}),
        ("~replay", {"marked"}),
        ("~replayq", {"marked"}),
        ("~replays", set()),
        ("~c 404", {"post"}),
        ("~c 101", {"ws"}),
        ("~m POST", {"post"}),
        ("~m post", {"post"}),  # case-insensitive
        ("~d api\\.test", {"post"}),
        ("~d dns.google", {"dnsq", "dns"}),
        ("~u /v2/login$", {"post"}),
        ("login", {"post"}),  # bare word: URL regex
        ("~u ^http://example.com/ws", {"ws"}),
        ('~h "user-agent: curl"', {"post"}),
        ("~hq header:.qvalue", {"get", "pending", "failed", "gz", "img", "marked"}),
        ("~hs sec-websocket-accept", {"ws"}),
        ("~hs header-response & !~hq curl", {"get", "gz", "marked"}),
        ("~t json", {"post"}),
        ("~tq json", {"post"}),
        ("~ts json", set()),
        ("~ts html", {"post"}),
        ("~a", {"img"}),
        ('~b "secret inside"', {"gz"}),  # decoded body
        ("~bq ann", {"post"}),
        ("~bs ann", set()),
        ("~b hello", {"ws", "tcp", "udp"}),
        ("~bq \"it's me\"", {"tcp", "udp"}),
        ("~bs \"server says\"", {"ws"}),
        ("~bs \"it's also me\"", {"tcp", "udp"}),
        ("~b \\x00\\xff", {"tcp"}),
        ("~b 8\\.8\\.4\\.4", {"dns"}),
        ("~src 10\\.0\\.0\\.2:52044", {"get", "post", "pending", "failed", "gz", "img", "ws", "marked",
                                       "tcp", "udp", "dnsq", "dns"}),  # fmt: skip
        ("~dst 8.8.8.8:53", {"dnsq", "dns"}),
        ("~all & !~http & !~dns", {"tcp", "udp"}),
        ("~tcp | ~udp | ~c 404", {"tcp", "udp", "post"}),
        ("!(~http | ~dns)", {"tcp", "udp"}),
        ("~http ~s !~c 200", {"post", "ws"}),  # implicit and
        ("~s & (~c 404 | ~websocket)", {"post", "ws"}),
        ("!!~tcp", {"tcp"}),
        ("~tcp | ~udp & ~b nothing", {"tcp"}),  # & binds tighter than |
    ],
)
def test_filters_on_real_flows(expr, expected, flows):
    assert matching(expr, flows) == expected


def test_match_accepts_strings_compiled_filters_and_none(flows):
    assert match("~c 404", flows["post"])
    assert not match(parse("~c 404"), flows["get"])
    assert match(None, flows["tcp"])


def test_filters_print_back_as_expressions_that_parse_the_same(flows):
    for expr in ["~d a & ~m 'GET|POST'", "!(~tcp | ~udp) login", '~h "a b" | ~c 200 ~e', "~b '(x)'"]:
        flt = parse(expr)
        again = parse(flt.pattern)
        assert again.pattern == flt.pattern
        assert matching(flt.pattern, flows) == matching(expr, flows)


def test_quoted_strings_keep_regex_escapes():
    assert parse(r'~u "\d+\.json"').re.pattern == r"\d+\.json"
    assert parse(r'~u "say \"hi\""').re.pattern == 'say "hi"'
    assert parse("~u 'a b'").re.pattern == "a b"


@pytest.mark.parametrize(
    "expr, message",
    [
        ("", "empty filter expression"),
        ("~nosuch", "unknown filter ~nosuch at position 0"),
        ("~d", "~d needs an argument at position 2"),
        ("~c abc", "~c needs a status code .* at position 3"),
        ("~u '(unclosed'", "invalid regex for ~u"),
        ("(~tcp | ~udp", "missing '\\)' at position 12"),
        ("~tcp)", "unexpected '\\)' at position 4"),
        ("~tcp &", "expression ends too early at position 6"),
        ("| ~tcp", "unexpected '\\|' at position 0"),
        ("~u 'open", "unterminated quoted string starting at position 3"),
        ("~d ~tcp", "needs an argument \\(quote it"),
        # One position, the expression's (it also said the regex's own 'at position 0').
        ("~u [", "^invalid regex for ~u '\\[' \\(unterminated character set\\) at position 3: ~u >>>\\[$"),
    ],
)
def test_bad_expressions_raise_clear_errors(expr, message):
    with pytest.raises(FilterSyntaxError, match=message):
        parse(expr)
    with pytest.raises(ValueError):
        match(expr, tflow.tflow())


def test_help_lists_every_filter():
    codes = {token.split()[0] for token, _ in flowfilter.help}
    for code in ["~d", "~m", "~c", "~u", "~h", "~hq", "~hs", "~b", "~bq", "~bs", "~t", "~http", "~tcp", "~udp",
                 "~dns", "~websocket", "~q", "~s", "~e", "~marked", "!", "&", "|"]:  # fmt: skip
        assert code in codes
    for token, _ in flowfilter.help:
        if token.startswith("~"):
            code, *arg = token.split()
            parse(code + (" x" if arg and arg[0] == "regex" else " 1" if arg else ""))
