"""The few bytes of ASN.1 DER we read: DKIM public keys (email_domains) and certificates (http_probes).

Python's stdlib parses neither without the ``cryptography`` package, and we need
only lengths and one date, so a TLV reader is enough.
"""

from __future__ import annotations


def read_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """One DER TLV at ``pos``: (tag, content, position after it); ValueError when malformed."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos : pos + length], pos + length
