"""DNS flows and messages, with mitmproxy's names, on top of dnspython.

dnspython does the hard parts: name (de)compression and escaping, and the rdata formats
of every record type (``ResourceRecord.rdata``, ``str(record)``).  We keep our own light
message object instead of wrapping ``dns.message.Message`` because a proxy must forward
what it got: dnspython merges records into RRsets (reordering them and giving them one
TTL) and lifts the EDNS OPT record out of the additionals.  Here every record keeps its
position, TTL and bytes; ``to_dnspython()``/``from_dnspython()`` convert when a
dnspython ``Message`` is handier.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import itertools
import random
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dns.exception
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.svcbbase as svcbbase
import dns.wire

from gateway import flow
from gateway.coretypes.serializable import Serializable
from gateway.net.dns import classes, op_codes, response_codes, types

__all__ = [
    "Question", "ResourceRecord", "DNSMessage", "Message", "DNSFlow",
    "types", "classes", "op_codes", "response_codes",
]  # fmt: skip

_HEADER = struct.Struct("!HHHHHH")
_QUESTION = struct.Struct("!HH")
_RR = struct.Struct("!HHIH")


if "decompress" in dns.wire.Parser.get_name.__code__.co_varnames:

    def _get_owner_name(parser: dns.wire.Parser) -> dns.name.Name:
        return parser.get_name(decompress=True)

else:  # dnspython < 2.8 always decompresses

    def _get_owner_name(parser: dns.wire.Parser) -> dns.name.Name:
        return parser.get_name()


def _name_to_text(name: dns.name.Name) -> str:
    text = name.to_text(omit_final_dot=True)
    return "" if text == "." else text


def _name_from_text(name: str) -> dns.name.Name:
    try:
        return dns.name.from_text(name or ".")
    except dns.exception.DNSException as e:
        raise ValueError(f"invalid domain name {name!r}: {e}") from e


@dataclass(slots=True)
class Question(Serializable):
    """One entry of the question section: what is being asked."""

    name: str
    """The domain name, without the final dot (``""`` for the root)."""
    type: int
    class_: int

    def __str__(self) -> str:
        return self.name

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": types.to_str(self.type), "class": classes.to_str(self.class_)}

    def get_state(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "class_": self.class_}

    def set_state(self, state: dict[str, Any]) -> None:
        self.name, self.type, self.class_ = state["name"], state["type"], state["class_"]

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Question:
        return cls(state["name"], state["type"], state["class_"])


@dataclass(slots=True)
class ResourceRecord(Serializable):
    """One resource record.  ``data`` is the rdata in uncompressed wire form."""

    DEFAULT_TTL: ClassVar[int] = 60

    name: str
    type: int
    class_: int
    ttl: int
    data: bytes

    @property
    def rdata(self) -> dns.rdata.Rdata:
        """The data parsed by dnspython (e.g. ``.address``, ``.target``, ``.strings``).

        Raises ``ValueError`` if the bytes are not valid for the record type.
        """
        try:
            return dns.rdata.from_wire(self.class_, self.type, self.data, 0, len(self.data))
        except (dns.exception.DNSException, ValueError, struct.error) as e:
            raise ValueError(f"invalid {types.to_str(self.type)} record data: {e}") from e

    @rdata.setter
    def rdata(self, rdata: dns.rdata.Rdata) -> None:
        self.data = rdata.to_wire()

    def __str__(self) -> str:
        try:
            if self.type == types.TXT:
                return self.text
            return self.rdata.to_text()
        except ValueError:
            return f"0x{self.data.hex()} (invalid {types.to_str(self.type)} data)"

    @property
    def text(self) -> str:
        """A TXT record's strings, joined and decoded as UTF-8."""
        if self.type != types.TXT:
            raise AttributeError(f"{types.to_str(self.type)} records have no text")
        return b"".join(self.rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]

    @text.setter
    def text(self, value: str) -> None:
        raw = value.encode("utf-8")
        self.data = b"".join(bytes([len(c)]) + c for c in (raw[i : i + 255] for i in range(0, len(raw), 255)))
        if not raw:
            self.data = b"\x00"

    @property
    def ipv4_address(self) -> ipaddress.IPv4Address:
        if self.type != types.A:
            raise AttributeError(f"{types.to_str(self.type)} records have no IPv4 address")
        return ipaddress.IPv4Address(self.data)

    @ipv4_address.setter
    def ipv4_address(self, ip: ipaddress.IPv4Address) -> None:
        self.data = ip.packed

    @property
    def ipv6_address(self) -> ipaddress.IPv6Address:
        if self.type != types.AAAA:
            raise AttributeError(f"{types.to_str(self.type)} records have no IPv6 address")
        return ipaddress.IPv6Address(self.data)

    @ipv6_address.setter
    def ipv6_address(self, ip: ipaddress.IPv6Address) -> None:
        self.data = ip.packed

    @property
    def domain_name(self) -> str:
        """The target of a CNAME, NS or PTR record."""
        if self.type not in (types.CNAME, types.NS, types.PTR, types.DNAME):
            raise AttributeError(f"{types.to_str(self.type)} records have no domain name")
        return _name_to_text(self.rdata.target)  # type: ignore[attr-defined]

    @domain_name.setter
    def domain_name(self, name: str) -> None:
        self.data = _name_from_text(name).to_wire()

    def _svcb(self) -> Any:
        if self.type not in (types.HTTPS, types.SVCB):
            raise AttributeError(f"{types.to_str(self.type)} records have no service parameters")
        return self.rdata

    def _set_svcb_param(self, key: int, param: Any) -> None:
        rd = self._svcb()
        params = dict(rd.params)
        if param is None:
            params.pop(key, None)
        else:
            params[key] = param
        self.data = rd.replace(params=params).to_wire()

    @property
    def https_alpn(self) -> tuple[bytes, ...] | None:
        """The ``alpn`` parameter of an HTTPS/SVCB record, None if absent."""
        param = self._svcb().params.get(svcbbase.ParamKey.ALPN)
        return None if param is None else tuple(param.ids)

    @https_alpn.setter
    def https_alpn(self, alpn: Iterable[bytes] | None) -> None:
        self._set_svcb_param(
            svcbbase.ParamKey.ALPN, None if alpn is None else svcbbase.ALPNParam(tuple(alpn))
        )

    @property
    def https_ech(self) -> str | None:
        """The ``ech`` parameter (base64 ECHConfigList) of an HTTPS/SVCB record, None if absent.

        Setting it to None strips Encrypted Client Hello, so clients send a readable SNI.
        """
        param = self._svcb().params.get(svcbbase.ParamKey.ECH)
        return None if param is None else base64.b64encode(param.ech).decode()

    @https_ech.setter
    def https_ech(self, ech: str | None) -> None:
        self._set_svcb_param(
            svcbbase.ParamKey.ECH, None if ech is None else svcbbase.ECHParam(base64.b64decode(ech))
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": types.to_str(self.type),
            "class": classes.to_str(self.class_),
            "ttl": self.ttl,
            "data": str(self),
        }

    def get_state(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "class_": self.class_, "ttl": self.ttl, "data": self.data}

    def set_state(self, state: dict[str, Any]) -> None:
        self.name, self.type, self.class_ = state["name"], state["type"], state["class_"]
        self.ttl, self.data = state["ttl"], state["data"]

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ResourceRecord:
        return cls(state["name"], state["type"], state["class_"], state["ttl"], state["data"])

    @classmethod
    def A(cls, name: str, ip: ipaddress.IPv4Address, *, ttl: int = DEFAULT_TTL) -> ResourceRecord:
        return cls(name, types.A, classes.IN, ttl, ipaddress.IPv4Address(ip).packed)

    @classmethod
    def AAAA(cls, name: str, ip: ipaddress.IPv6Address, *, ttl: int = DEFAULT_TTL) -> ResourceRecord:
        return cls(name, types.AAAA, classes.IN, ttl, ipaddress.IPv6Address(ip).packed)

    @classmethod
    def CNAME(cls, alias: str, canonical: str, *, ttl: int = DEFAULT_TTL) -> ResourceRecord:
        return cls(alias, types.CNAME, classes.IN, ttl, _name_from_text(canonical).to_wire())

    @classmethod
    def PTR(cls, inaddr: str, ptr: str, *, ttl: int = DEFAULT_TTL) -> ResourceRecord:
        return cls(inaddr, types.PTR, classes.IN, ttl, _name_from_text(ptr).to_wire())

    @classmethod
    def HTTPS(cls, name: str, record: str, *, ttl: int = DEFAULT_TTL) -> ResourceRecord:
        """An HTTPS record from its presentation form, e.g. ``'1 . alpn="h2,h3"'``."""
        try:
            rdata = dns.rdata.from_text(classes.IN, types.HTTPS, record)
        except dns.exception.DNSException as e:
            raise ValueError(f"invalid HTTPS record {record!r}: {e}") from e
        return cls(name, types.HTTPS, classes.IN, ttl, rdata.to_wire())

    @classmethod
    def TXT(cls, name: str, text: str, *, ttl: int = DEFAULT_TTL) -> ResourceRecord:
        rr = cls(name, types.TXT, classes.IN, ttl, b"")
        rr.text = text
        return rr


_ids = itertools.count(random.randrange(1 << 16))


@dataclass(slots=True)
class DNSMessage(Serializable):
    """A DNS query or response: header fields and the four record sections."""

    id: int
    query: bool
    """True for a query, False for a response (the QR bit)."""
    op_code: int
    authoritative_answer: bool
    truncation: bool
    recursion_desired: bool
    recursion_available: bool
    reserved: int
    """The three Z bits (AD and CD for DNSSEC), kept as received."""
    response_code: int
    questions: list[Question]
    answers: list[ResourceRecord]
    authorities: list[ResourceRecord]
    additionals: list[ResourceRecord]
    timestamp: float | None = field(default=None)

    def __str__(self) -> str:
        return "\n".join(str(x) for x in (*self.questions, *self.answers, *self.authorities, *self.additionals))

    @property
    def question(self) -> Question | None:
        """The first (in practice the only) question, or None."""
        return self.questions[0] if self.questions else None

    @property
    def size(self) -> int:
        """The total number of questions and records."""
        return sum(map(len, (self.questions, self.answers, self.authorities, self.additionals)))

    @property
    def packed(self) -> bytes:
        """The message in wire format (names compressed, also inside RFC 1035 rdata)."""
        out = io.BytesIO()
        out.write(
            _HEADER.pack(
                self.id,
                (self.query is False) << 15
                | (self.op_code & 0xF) << 11
                | bool(self.authoritative_answer) << 10
                | bool(self.truncation) << 9
                | bool(self.recursion_desired) << 8
                | bool(self.recursion_available) << 7
                | (self.reserved & 0x7) << 4
                | (self.response_code & 0xF),
                len(self.questions),
                len(self.answers),
                len(self.authorities),
                len(self.additionals),
            )
        )
        compress: dict = {}
        for q in self.questions:
            _name_from_text(q.name).to_wire(out, compress, None)
            out.write(_QUESTION.pack(q.type, q.class_))
        for rr in itertools.chain(self.answers, self.authorities, self.additionals):
            _name_from_text(rr.name).to_wire(out, compress, None)
            if _may_compress(rr.type):
                try:
                    rdata = rr.rdata
                except ValueError:
                    rdata = None
                if rdata is not None:
                    header_at = out.tell()
                    out.write(_RR.pack(rr.type, rr.class_, rr.ttl, 0))
                    rdata.to_wire(out, compress, None)
                    end = out.tell()
                    out.seek(header_at)
                    out.write(_RR.pack(rr.type, rr.class_, rr.ttl, end - header_at - _RR.size))
                    out.seek(end)
                    continue
            out.write(_RR.pack(rr.type, rr.class_, rr.ttl, len(rr.data)))
            out.write(rr.data)
        return out.getvalue()

    content = packed

    def to_wire(self) -> bytes:
        return self.packed

    @classmethod
    def unpack(cls, buffer: bytes, timestamp: float | None = None) -> DNSMessage:
        """Parse a whole wire-format message; raises ``ValueError`` if malformed or if bytes follow."""
        size, msg = cls.unpack_from(buffer, 0, timestamp)
        if size != len(buffer):
            raise ValueError(f"unexpected {len(buffer) - size} bytes after the DNS message")
        return msg

    from_wire = unpack

    @classmethod
    def unpack_from(cls, buffer: bytes, offset: int = 0, timestamp: float | None = None) -> tuple[int, DNSMessage]:
        """Parse a message starting at ``offset``; returns ``(bytes consumed, message)``."""
        try:
            return cls._unpack_from(bytes(buffer), offset, timestamp)
        except (dns.exception.DNSException, struct.error, ValueError, IndexError) as e:
            raise ValueError(f"malformed DNS message: {e}") from e

    @classmethod
    def _unpack_from(cls, wire: bytes, offset: int, timestamp: float | None) -> tuple[int, DNSMessage]:
        parser = dns.wire.Parser(wire, offset)
        ident, flags, qd, an, ns, ar = parser.get_struct("!HHHHHH")
        questions = []
        for _ in range(qd):
            name = _name_to_text(_get_owner_name(parser))
            qtype, qclass = parser.get_struct("!HH")
            questions.append(Question(name, qtype, qclass))
        sections: list[list[ResourceRecord]] = []
        for count in (an, ns, ar):
            records = []
            for _ in range(count):
                name = _name_to_text(_get_owner_name(parser))
                rtype, rclass, ttl, rdlen = parser.get_struct("!HHIH")
                start = parser.current
                with parser.restrict_to(rdlen):
                    if rtype == types.OPT or rdlen == 0:
                        data = parser.get_bytes(rdlen)
                    else:
                        rd = dns.rdata.from_wire_parser(rclass, rtype, parser)
                        # Names inside rdata may be compressed pointers into this
                        # message; store the rdata self-contained.
                        data = rd.to_wire() if _may_compress(rtype) else wire[start : start + rdlen]
                records.append(ResourceRecord(name, rtype, rclass, ttl, data))
            sections.append(records)
        msg = cls(
            id=ident,
            query=not flags & 0x8000,
            op_code=(flags >> 11) & 0xF,
            authoritative_answer=bool(flags & 0x0400),
            truncation=bool(flags & 0x0200),
            recursion_desired=bool(flags & 0x0100),
            recursion_available=bool(flags & 0x0080),
            reserved=(flags >> 4) & 0x7,
            response_code=flags & 0xF,
            questions=questions,
            answers=sections[0],
            authorities=sections[1],
            additionals=sections[2],
            timestamp=time.time() if timestamp is None else timestamp,
        )
        return parser.current - offset, msg

    def to_dnspython(self) -> dns.message.Message:
        """This message as a ``dns.message.Message`` (records grouped into RRsets)."""
        return dns.message.from_wire(self.packed)

    @classmethod
    def from_dnspython(cls, message: dns.message.Message, timestamp: float | None = None) -> DNSMessage:
        return cls.unpack(message.to_wire(), timestamp)

    def fail(self, response_code: int) -> DNSMessage:
        """A response to this query that fails with ``response_code`` (e.g. NXDOMAIN)."""
        if response_code == response_codes.NOERROR:
            raise ValueError("response_code must be an error code")
        return DNSMessage(
            id=self.id,
            query=False,
            op_code=self.op_code,
            authoritative_answer=False,
            truncation=False,
            recursion_desired=self.recursion_desired,
            recursion_available=False,
            reserved=0,
            response_code=response_code,
            questions=[Question(q.name, q.type, q.class_) for q in self.questions],
            answers=[],
            authorities=[],
            additionals=[],
            timestamp=time.time(),
        )

    def succeed(self, answers: list[ResourceRecord]) -> DNSMessage:
        """A successful response to this query with ``answers``."""
        return DNSMessage(
            id=self.id,
            query=False,
            op_code=self.op_code,
            authoritative_answer=False,
            truncation=False,
            recursion_desired=self.recursion_desired,
            recursion_available=True,
            reserved=0,
            response_code=response_codes.NOERROR,
            questions=[Question(q.name, q.type, q.class_) for q in self.questions],
            answers=list(answers),
            authorities=[],
            additionals=[],
            timestamp=time.time(),
        )

    @classmethod
    def make_query(cls, name: str, type: int = types.A, class_: int = classes.IN) -> DNSMessage:
        """A recursive query for ``name`` with a fresh id."""
        return cls(
            id=next(_ids) & 0xFFFF, query=True, op_code=op_codes.QUERY, authoritative_answer=False,
            truncation=False, recursion_desired=True, recursion_available=False, reserved=0,
            response_code=response_codes.NOERROR, questions=[Question(name, type, class_)],
            answers=[], authorities=[], additionals=[], timestamp=time.time(),
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "query": self.query,
            "op_code": op_codes.to_str(self.op_code),
            "authoritative_answer": self.authoritative_answer,
            "truncation": self.truncation,
            "recursion_desired": self.recursion_desired,
            "recursion_available": self.recursion_available,
            "response_code": response_codes.to_str(self.response_code),
            "status_code": response_codes.HTTP_EQUIV.get(self.response_code, 200),
            "questions": [q.to_json() for q in self.questions],
            "answers": [rr.to_json() for rr in self.answers],
            "authorities": [rr.to_json() for rr in self.authorities],
            "additionals": [rr.to_json() for rr in self.additionals],
            "size": self.size,
            "timestamp": self.timestamp,
        }

    _HEADER_KEYS: ClassVar[tuple[str, ...]] = (
        "id", "query", "op_code", "authoritative_answer", "truncation", "recursion_desired",
        "recursion_available", "reserved", "response_code", "timestamp",
    )  # fmt: skip

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {k: getattr(self, k) for k in self._HEADER_KEYS}
        state["questions"] = [q.get_state() for q in self.questions]
        for section in ("answers", "authorities", "additionals"):
            state[section] = [rr.get_state() for rr in getattr(self, section)]
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        for k in self._HEADER_KEYS:
            setattr(self, k, state[k])
        self.questions = [Question.from_state(q) for q in state["questions"]]
        for section in ("answers", "authorities", "additionals"):
            setattr(self, section, [ResourceRecord.from_state(rr) for rr in state[section]])

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DNSMessage:
        msg = cls(0, True, 0, False, False, False, False, 0, 0, [], [], [], [])
        msg.set_state(state)
        return msg

    def copy(self) -> DNSMessage:
        return DNSMessage.from_state(self.get_state())


Message = DNSMessage


def _may_compress(rtype: int) -> bool:
    # RFC 3597 section 4: only the well-known types from RFC 1035 may carry compressed
    # names in their rdata; everything else can be copied verbatim.
    return rtype in (2, 3, 4, 5, 6, 7, 8, 9, 12, 14, 15)


class DNSFlow(flow.Flow):
    """A DNS query and its response, over UDP or TCP."""

    type: ClassVar[str] = "dns"

    request: DNSMessage
    response: DNSMessage | None

    def __init__(self, client_conn: Any, server_conn: Any, live: bool = False) -> None:
        super().__init__(client_conn, server_conn, live)
        self.request = None  # type: ignore[assignment]
        self.response = None

    def _init_empty(self) -> None:
        flow.Flow._init_empty(self)
        self.request = None
        self.response = None

    def __repr__(self) -> str:
        q = self.request.question if self.request is not None else None
        what = f"{q.name} {types.to_str(q.type)}" if q else "?"
        answer = f" -> {response_codes.to_str(self.response.response_code)}" if self.response else ""
        return f"<DNSFlow {what}{answer}>"

    @property
    def timestamp_start(self) -> float:
        if self.request is not None and self.request.timestamp is not None:
            return self.request.timestamp
        return self.timestamp_created

    def _base_state(self) -> dict[str, Any]:
        state = super()._base_state()
        state["request"] = self.request.get_state() if self.request is not None else None
        state["response"] = self.response.get_state() if self.response is not None else None
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.request = DNSMessage.from_state(state["request"]) if state["request"] is not None else None  # type: ignore
        self.response = DNSMessage.from_state(state["response"]) if state["response"] is not None else None
