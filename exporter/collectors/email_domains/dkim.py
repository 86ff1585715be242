"""DKIM key records (RFC 6376 3.6.1, RFC 8301, RFC 8463): present, usable, revoked, and how long.

A selector's record is read as a verifier would: one ``v=DKIM1`` key record,
a key that decodes, RSA at least 1024 bits.  The key length is read from the
DER itself, since the stdlib has no RSA key parser and the length is all we need.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from exporter.collectors.email_domains.taglist import parse_tag_list
from exporter.der import read_tlv

DKIM_KEY_TYPES = ("rsa", "ed25519")
# RFC 8301 3.2: verifiers must not accept RSA keys shorter than 1024 bits.
DKIM_MIN_RSA_BITS = 1024
_RSA_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1


@dataclass
class DkimResult:
    present: bool = False
    valid: bool = False
    revoked: bool = False
    key_type: str | None = None
    bits: int | None = None


def rsa_key_bits(der: bytes) -> int:
    """Modulus bit length of an RSA SubjectPublicKeyInfo, or of a bare PKCS#1 RSAPublicKey."""
    tag, seq, end = read_tlv(der)
    if tag != 0x30 or end != len(der):
        raise ValueError("not a DER SEQUENCE")
    tag, first, pos = read_tlv(seq)
    if tag == 0x30:  # SubjectPublicKeyInfo: AlgorithmIdentifier, BIT STRING
        oid_tag, oid, _ = read_tlv(first)
        if oid_tag != 0x06 or oid != _RSA_OID:
            raise ValueError("not an RSA key")
        tag, bits, _ = read_tlv(seq, pos)
        if tag != 0x03 or not bits or bits[0] != 0:
            raise ValueError("bad BIT STRING")
        return rsa_key_bits(bits[1:])
    if tag != 0x02:  # RSAPublicKey: INTEGER modulus, INTEGER exponent
        raise ValueError("not an RSA key")
    tag, exponent, _ = read_tlv(seq, pos)
    if tag != 0x02 or not exponent:
        raise ValueError("missing exponent")
    modulus = first.lstrip(b"\x00")
    if not modulus:
        raise ValueError("empty modulus")
    return int.from_bytes(modulus, "big").bit_length()


def check_dkim(records: Sequence[str]) -> DkimResult:
    """The verdict on the TXT records found at ``<selector>._domainkey.<domain>``."""
    result = DkimResult()
    keys = [parse_tag_list(r) for r in records]
    # A record that is not a tag list, or has p= or v=, was meant as a key: a broken
    # key record is "present, not valid", while unrelated TXT at the name is ignored.
    candidates = [r for r, tags in zip(records, keys, strict=True) if tags is None or "p" in tags or "v" in tags]
    if not candidates:
        return result
    result.present = True
    if len(candidates) != 1:
        return result  # several key records at one selector: verifiers pick unpredictably
    tags = parse_tag_list(candidates[0])
    if tags is None or "p" not in tags:
        return result
    if "v" in tags and (next(iter(tags)) != "v" or tags["v"] != "DKIM1"):
        return result
    key_type = tags.get("k", "rsa").lower()
    result.key_type = key_type if key_type in DKIM_KEY_TYPES else None
    p = re.sub(r"\s+", "", tags["p"])
    if not p:
        result.revoked = True
        return result
    bits = _key_bits(key_type, p)
    if bits is None:
        return result
    result.bits = bits
    result.valid = key_type != "rsa" or bits >= DKIM_MIN_RSA_BITS
    return result


def _key_bits(key_type: str, p: str) -> int | None:
    """Length of the base64 key in ``p=``; None when it does not decode as a key of its type."""
    try:
        key = base64.b64decode(p, validate=True)
    except (binascii.Error, ValueError):
        return None
    if key_type == "rsa":
        try:
            return rsa_key_bits(key)
        except ValueError:
            return None
    if key_type == "ed25519":
        return 256 if len(key) == 32 else None  # RFC 8463: the raw 32-byte public key
    return None
