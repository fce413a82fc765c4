"""DNS op codes: ``op_codes.QUERY == 0``."""

import dns.opcode

QUERY = 0
IQUERY = 1
STATUS = 2
NOTIFY = 4
UPDATE = 5
DSO = 6


def to_str(op_code: int) -> str:
    try:
        return dns.opcode.to_text(op_code)
    except ValueError:
        return f"OPCODE({op_code})"


def from_str(op_code: str) -> int:
    try:
        return int(dns.opcode.from_text(op_code))
    except dns.opcode.UnknownOpcode as e:
        raise ValueError(f"unknown DNS op code: {op_code!r}") from e
