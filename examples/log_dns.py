"""Log every DNS query the clients make, with the answer when it comes.

    gateway up -s examples/log_dns.py

Useful with a phone on the WireGuard tunnel: it shows every name an app looks up.
"""

import logging

from gateway import dns

logger = logging.getLogger(__name__)


def _question(flow: dns.DNSFlow) -> str:
    q = flow.request.questions[0]
    return f"{q.name} {dns.types.to_str(q.type)}"


def dns_request(flow: dns.DNSFlow) -> None:
    logger.info(f"{flow.client_conn.peername[0]} asks {_question(flow)}")


def dns_response(flow: dns.DNSFlow) -> None:
    answers = ", ".join(str(a) for a in flow.response.answers) or "no answer"
    logger.info(f"{flow.client_conn.peername[0]} got {_question(flow)} -> {answers}")
