"""DNS classes: ``classes.IN == 1``."""

import dns.rdataclass

IN = 1
CH = 3
HS = 4
NONE = 254
ANY = 255


def to_str(class_: int) -> str:
    return dns.rdataclass.to_text(class_)


def from_str(class_: str) -> int:
    try:
        return int(dns.rdataclass.from_text(class_))
    except dns.rdataclass.UnknownRdataclass as e:
        raise ValueError(f"unknown DNS class: {class_!r}") from e
