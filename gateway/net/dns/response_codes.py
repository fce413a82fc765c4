"""DNS response codes: ``response_codes.NXDOMAIN == 3``."""

import dns.rcode

NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
YXDOMAIN = 6
YXRRSET = 7
NXRRSET = 8
NOTAUTH = 9
NOTZONE = 10

# What an HTTP client sees when a DNS lookup fails this way (used in error pages).
HTTP_EQUIV = {
    NOERROR: 200,
    FORMERR: 400,
    SERVFAIL: 500,
    NXDOMAIN: 404,
    NOTIMP: 501,
    REFUSED: 403,
}


def to_str(response_code: int) -> str:
    try:
        return dns.rcode.to_text(response_code)
    except ValueError:
        return f"RCODE({response_code})"


def from_str(response_code: str) -> int:
    try:
        return int(dns.rcode.from_text(response_code))
    except dns.rcode.UnknownRcode as e:
        raise ValueError(f"unknown DNS response code: {response_code!r}") from e
