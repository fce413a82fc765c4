"""DNS record types (IANA): ``types.A == 1``; ``to_str``/``from_str`` for any type."""

import dns.rdatatype

A = 1
NS = 2
CNAME = 5
SOA = 6
PTR = 12
HINFO = 13
MX = 15
TXT = 16
AAAA = 28
SRV = 33
DNAME = 39
NAPTR = 35
DS = 43
RRSIG = 46
NSEC = 47
DNSKEY = 48
OPT = 41
SVCB = 64
HTTPS = 65
CAA = 257
ANY = 255


def to_str(type_: int) -> str:
    """``1`` -> ``"A"``; unknown types as ``"TYPE1234"`` (RFC 3597)."""
    return dns.rdatatype.to_text(type_)


def from_str(type_: str) -> int:
    """``"AAAA"`` -> ``28``; raises ``ValueError`` for unknown names."""
    try:
        return int(dns.rdatatype.from_text(type_))
    except dns.rdatatype.UnknownRdatatype as e:
        raise ValueError(f"unknown DNS type: {type_!r}") from e
