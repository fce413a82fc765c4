import ipaddress
import struct

import dns.edns
import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import dns as gdns
from gateway.dns import DNSFlow, DNSMessage, Question, ResourceRecord
from gateway.flow import Flow
from gateway.net.dns import classes, op_codes, response_codes, types
from gateway.test import tflow


def full_response() -> dns.message.Message:
    q = dns.message.make_query("www.example.com", "A", use_edns=0)
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AD
    r.use_edns(0, dns.flags.DO, 1232)
    r.answer.append(dns.rrset.from_text("www.example.com.", 300, "IN", "CNAME", "web.example.org."))
    r.answer.append(dns.rrset.from_text("web.example.org.", 60, "IN", "A", "93.184.216.34", "93.184.216.35"))
    r.authority.append(dns.rrset.from_text("example.org.", 3600, "IN", "NS", "ns1.example.org."))
    r.authority.append(
        dns.rrset.from_text("example.org.", 3600, "IN", "SOA", "ns1.example.org. admin.example.org. 1 2 3 4 5")
    )
    r.additional.append(dns.rrset.from_text("ns1.example.org.", 3600, "IN", "AAAA", "2001:db8::53"))
    r.additional.append(dns.rrset.from_text("example.org.", 3600, "IN", "MX", "10 mail.example.org."))
    r.additional.append(dns.rrset.from_text("example.org.", 3600, "IN", "TXT", '"v=spf1 -all" "second"'))
    return r


def test_query_from_dnspython():
    wire = dns.message.make_query("example.com", "AAAA").to_wire()
    m = DNSMessage.unpack(wire, timestamp=7.0)
    assert m.query and m.op_code == op_codes.QUERY and m.recursion_desired
    assert not (m.authoritative_answer or m.truncation or m.recursion_available)
    assert m.response_code == response_codes.NOERROR
    assert m.question == Question("example.com", types.AAAA, classes.IN)
    assert str(m.question) == "example.com"
    assert m.answers == m.authorities == m.additionals == []
    assert m.size == 1 and m.timestamp == 7.0
    assert m.packed == wire and m.to_wire() == wire and m.content == wire
    assert DNSMessage.from_wire(wire, timestamp=7.0) == m


def test_response_with_every_section_is_parsed_and_repacked_byte_exact():
    r = full_response()
    wire = r.to_wire()
    m = DNSMessage.unpack(wire)
    assert not m.query and m.recursion_available is False and m.reserved == 0b010  # AD bit kept
    assert [(a.name, types.to_str(a.type), a.ttl) for a in m.answers] == [
        ("www.example.com", "CNAME", 300),
        ("web.example.org", "A", 60),
        ("web.example.org", "A", 60),
    ]
    assert m.answers[0].domain_name == "web.example.org"
    assert sorted(str(a.ipv4_address) for a in m.answers[1:]) == ["93.184.216.34", "93.184.216.35"]
    assert m.authorities[0].domain_name == "ns1.example.org"
    assert str(m.authorities[1]) == "ns1.example.org. admin.example.org. 1 2 3 4 5"
    aaaa, mx, txt, opt = m.additionals
    assert aaaa.ipv6_address == ipaddress.IPv6Address("2001:db8::53")
    assert mx.rdata.preference == 10 and str(mx.rdata.exchange) == "mail.example.org."
    assert txt.text == "v=spf1 -allsecond"
    assert (opt.type, opt.class_, opt.name) == (types.OPT, 1232, "")  # EDNS kept as a record
    assert opt.ttl & 0x8000  # DO bit
    assert m.size == 1 + 3 + 2 + 4
    assert m.packed == wire
    assert DNSMessage.unpack(m.packed, timestamp=m.timestamp) == m
    # dnspython, an independent implementation, reads our output back to the same message
    assert dns.message.from_wire(m.packed) == r


def test_records_keep_order_and_ttl_which_rrsets_would_merge():
    msg = DNSMessage.unpack(dns.message.make_query("a.example", "A").to_wire()).succeed(
        [
            ResourceRecord.A("a.example", ipaddress.IPv4Address("10.0.0.1"), ttl=10),
            ResourceRecord.CNAME("a.example", "b.example", ttl=20),
            ResourceRecord.A("a.example", ipaddress.IPv4Address("10.0.0.2"), ttl=30),
        ]
    )
    again = DNSMessage.unpack(msg.packed)
    assert [(a.type, a.ttl) for a in again.answers] == [(1, 10), (5, 20), (1, 30)]


def test_succeed_and_fail():
    q = DNSMessage.unpack(dns.message.make_query("example.com", "A").to_wire())
    ok = q.succeed([ResourceRecord.A("example.com", ipaddress.IPv4Address("1.2.3.4"))])
    assert ok.id == q.id and not ok.query and ok.recursion_available and ok.recursion_desired
    assert ok.response_code == response_codes.NOERROR
    assert ok.questions == q.questions and ok.questions is not q.questions
    assert ok.answers[0].ttl == ResourceRecord.DEFAULT_TTL == 60
    parsed = dns.message.from_wire(ok.packed)
    assert parsed.answer[0].to_text() == "example.com. 60 IN A 1.2.3.4"
    assert parsed.id == q.id
    bad = q.fail(response_codes.NXDOMAIN)
    assert bad.response_code == response_codes.NXDOMAIN and bad.answers == [] and not bad.query
    assert dns.message.from_wire(bad.packed).rcode() == dns.rcode.NXDOMAIN
    with pytest.raises(ValueError):
        q.fail(response_codes.NOERROR)


def test_record_constructors_and_setters():
    a = ResourceRecord.A("h.example", ipaddress.IPv4Address("192.0.2.1"), ttl=5)
    assert a.data == bytes([192, 0, 2, 1]) and str(a) == "192.0.2.1"
    a.ipv4_address = ipaddress.IPv4Address("192.0.2.9")
    assert str(a.ipv4_address) == "192.0.2.9"
    with pytest.raises(AttributeError):
        _ = a.ipv6_address
    with pytest.raises(AttributeError):
        _ = a.domain_name
    with pytest.raises(AttributeError):
        _ = a.text
    aaaa = ResourceRecord.AAAA("h.example", ipaddress.IPv6Address("2001:db8::1"))
    assert str(aaaa) == "2001:db8::1"
    aaaa.ipv6_address = ipaddress.IPv6Address("::1")
    assert aaaa.data == b"\x00" * 15 + b"\x01"
    cname = ResourceRecord.CNAME("alias.example", "canonical.example")
    assert cname.domain_name == "canonical.example"
    cname.domain_name = "other.example"
    assert str(cname) == "other.example."
    ptr = ResourceRecord.PTR("4.3.2.1.in-addr.arpa", "host.example")
    assert ptr.domain_name == "host.example"
    long_text = "ü" * 200  # 400 bytes: needs two character-strings
    txt = ResourceRecord.TXT("t.example", long_text)
    assert txt.text == long_text
    assert len(txt.rdata.strings) == 2
    txt.text = ""
    assert txt.data == b"\x00" and txt.text == ""
    mx = ResourceRecord("m.example", types.MX, classes.IN, 60, b"")
    mx.rdata = dns.rdata.from_text("IN", "MX", "5 mx.example.")
    assert mx.data == b"\x00\x05\x02mx\x07example\x00"
    assert mx.to_json() == {"name": "m.example", "type": "MX", "class": "IN", "ttl": 60, "data": "5 mx.example."}


def test_invalid_and_unknown_rdata():
    broken = ResourceRecord("x.example", types.A, classes.IN, 60, b"\x01\x02")
    with pytest.raises(ValueError):
        _ = broken.rdata
    assert "invalid A data" in str(broken)
    unknown = ResourceRecord("x.example", 65280, classes.IN, 60, b"\xde\xad")
    assert str(unknown) == "\\# 2 dead"  # RFC 3597 generic form
    q = DNSMessage.unpack(dns.message.make_query("x.example", "A").to_wire())
    packed = q.succeed([unknown]).packed
    assert DNSMessage.unpack(packed).answers == [unknown]


def test_unusual_names():
    q = DNSMessage.unpack(dns.message.make_query("ex ample.xn--bcher-kva.example", "A").to_wire())
    assert q.question.name == "ex\\032ample.xn--bcher-kva.example"
    assert DNSMessage.unpack(q.packed).questions == q.questions
    root = DNSMessage.unpack(dns.message.make_query(".", "NS").to_wire())
    assert root.question.name == "" and DNSMessage.unpack(root.packed).questions == root.questions


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"\x00\x01",
        struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0),  # question announced, missing
        struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # pointer loop
        struct.pack("!HHHHHH", 1, 0, 0, 1, 0, 0) + b"\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x09\x01",  # rdlen > data
        struct.pack("!HHHHHH", 1, 0, 0, 1, 0, 0) + b"\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x03abc",  # 3-byte A
        dns.message.make_query("example.com", "A").to_wire() + b"junk",  # trailing bytes
    ],
)
def test_malformed_messages_raise_valueerror(wire):
    with pytest.raises(ValueError):
        DNSMessage.unpack(wire)


def test_unpack_from_tcp_framing():
    a = dns.message.make_query("a.example", "A").to_wire()
    b = dns.message.make_query("b.example", "AAAA").to_wire()
    stream = struct.pack("!H", len(a)) + a + struct.pack("!H", len(b)) + b
    size, first = DNSMessage.unpack_from(stream, 2)
    assert size == len(a) and first.question.name == "a.example"
    size2, second = DNSMessage.unpack_from(stream, 2 + size + 2)
    assert size2 == len(b) and second.question.type == types.AAAA


def test_dnspython_conversion_and_make_query():
    m = DNSMessage.make_query("example.net", types.MX)
    assert m.query and m.recursion_desired and m.question.type == types.MX
    d = m.to_dnspython()
    assert isinstance(d, dns.message.Message) and d.question[0].rdtype == dns.rdatatype.MX
    assert DNSMessage.from_dnspython(d).packed == m.packed
    assert DNSMessage.make_query("x.example").id != DNSMessage.make_query("x.example").id


def test_scapy_built_response_is_read():
    from scapy.layers.dns import DNS, DNSQR, DNSRR

    pkt = DNS(id=99, qr=1, rd=1, ra=1, qd=DNSQR(qname="s.example", qtype="A"),
              an=DNSRR(rrname="s.example", type="A", ttl=42, rdata="198.51.100.7"))  # fmt: skip
    m = DNSMessage.unpack(bytes(pkt))
    assert m.id == 99 and not m.query and m.recursion_available
    assert m.answers[0].ttl == 42 and str(m.answers[0].ipv4_address) == "198.51.100.7"
    back = DNS(m.packed)
    assert back.an.rdata == "198.51.100.7" and back.qd.qname == b"s.example."


def test_to_json_and_str():
    m = tflow.tdnsresp()
    j = m.to_json()
    assert j["response_code"] == "NOERROR" and j["status_code"] == 200 and j["op_code"] == "QUERY"
    assert j["questions"] == [{"name": "dns.google", "type": "A", "class": "IN"}]
    assert [a["data"] for a in j["answers"]] == ["8.8.8.8", "8.8.4.4"]
    assert str(m) == "dns.google\n8.8.8.8\n8.8.4.4"


def test_message_state_and_copy():
    m = DNSMessage.unpack(full_response().to_wire(), timestamp=3.0)
    state = m.get_state()
    assert state["additionals"][-1]["type"] == types.OPT
    again = DNSMessage.from_state(state)
    assert again == m and again.packed == m.packed
    c = m.copy()
    c.answers.clear()
    assert len(m.answers) == 3
    q = Question("a", 1, 1)
    q.set_state({"name": "b", "type": 28, "class_": 1})
    assert Question.from_state(q.get_state()) == Question("b", 28, 1)


def test_dnsflow_round_trip():
    f = tflow.tdnsflow(resp=True)
    assert f.type == "dns" and f.timestamp_start == f.request.timestamp
    assert f.server_conn.address == ("8.8.8.8", 53)
    state = f.get_state()
    g = Flow.from_state(state)
    assert isinstance(g, DNSFlow) and g.get_state() == state
    assert g.response.answers[0].ipv4_address == ipaddress.IPv4Address("8.8.8.8")
    assert repr(g) == "<DNSFlow dns.google A -> NOERROR>"
    empty = DNSFlow(tflow.tclient_conn(), tflow.tserver_conn())
    assert empty.request is None and empty.timestamp_start == empty.timestamp_created
    assert DNSFlow.from_state(empty.get_state()).get_state() == empty.get_state()


def test_constants_modules():
    assert gdns.types is types and gdns.Message is DNSMessage
    assert (types.A, types.AAAA, types.HTTPS, types.OPT) == (1, 28, 65, 41)
    assert types.to_str(65) == "HTTPS" and types.to_str(65280) == "TYPE65280"
    assert types.from_str("aaaa") == 28
    assert classes.to_str(classes.IN) == "IN" and classes.from_str("CH") == 3
    assert op_codes.to_str(op_codes.UPDATE) == "UPDATE" and op_codes.from_str("NOTIFY") == 4
    assert response_codes.to_str(3) == "NXDOMAIN" and response_codes.from_str("REFUSED") == 5
    for module in (types, classes, op_codes, response_codes):
        with pytest.raises(ValueError):
            module.from_str("NO-SUCH-THING")


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_valueerror(data):
    try:
        m = DNSMessage.unpack(data)
    except ValueError:
        return
    assert DNSMessage.unpack(m.packed).get_state() | {"timestamp": 0} == m.get_state() | {"timestamp": 0}


@given(
    # unique names: dnspython merges records of one name and type into an RRset
    st.lists(st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}", fullmatch=True), min_size=1, max_size=5,
             unique=True),  # fmt: skip
    st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=5),
)
def test_packed_answers_agree_with_dnspython(names, ttls):
    q = DNSMessage.make_query(names[0])
    answers = [
        ResourceRecord.A(n, ipaddress.IPv4Address(i + 1), ttl=t) for i, (n, t) in enumerate(zip(names, ttls, strict=False))
    ]
    wire = q.succeed(answers).packed
    parsed = dns.message.from_wire(wire)
    got = [(str(rr.name).rstrip("."), rr.ttl, rd.address) for rr in parsed.answer for rd in rr]
    want = [(a.name, a.ttl, str(a.ipv4_address)) for a in answers]
    assert sorted(got) == sorted(want)
    assert DNSMessage.unpack(wire).answers == answers


def test_https_record_alpn_and_ech():
    rr = ResourceRecord.HTTPS("example.com", '1 . alpn="h2,h3" ech=AAT+DQAA', ttl=300)
    assert rr.type == types.HTTPS and rr.ttl == 300
    assert rr.https_alpn == (b"h2", b"h3")
    assert rr.https_ech == "AAT+DQAA"
    rr.https_ech = None  # strip ECH so the client's SNI stays readable
    assert rr.https_ech is None and str(rr) == '1 . alpn="h2,h3"'
    rr.https_alpn = [b"http/1.1"]
    assert rr.https_alpn == (b"http/1.1",)
    rr.https_alpn = None
    assert rr.https_alpn is None and str(rr) == "1 ."
    rr.https_ech = "AAT+DQAA"
    assert rr.https_ech == "AAT+DQAA"
    # a response carrying it survives the wire both ways, read back by dnspython
    q = DNSMessage.make_query("example.com", types.HTTPS)
    wire = q.succeed([rr]).packed
    assert dns.message.from_wire(wire).answer[0][0].to_text() == '1 . ech="AAT+DQAA"'
    with pytest.raises(AttributeError):
        _ = ResourceRecord.A("x", ipaddress.IPv4Address("1.1.1.1")).https_alpn
    with pytest.raises(ValueError):
        ResourceRecord.HTTPS("x", "not a record")


def test_dname_domain_name():
    rr = ResourceRecord("old.example", types.DNAME, classes.IN, 60, b"")
    rr.domain_name = "new.example"
    assert rr.domain_name == "new.example"
