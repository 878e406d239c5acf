"""The as-run log: every broadcast's entry, hash-chained and signed (Ed25519), checked offline.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and the entry's canonical JSON body;
``sig`` is the node's Ed25519 signature of that hash. Removing, reordering or altering an entry
breaks the chain at that entry; re-computing the chain without the private key breaks the
signatures. The export is JSON Lines, one entry a line, after a header line that carries the public
key (the auditor compares its fingerprint with the one the county published, or passes the key
explicitly).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "GENESIS",
    "AsRunEntry",
    "Verdict",
    "canonical",
    "export_lines",
    "fingerprint",
    "next_entry",
    "public_key_hex",
    "verify_lines",
]

GENESIS = "0" * 64
FORMAT = "villagecast-asrun/1"


def canonical(body: Mapping[str, Any]) -> bytes:
    """The one byte form of a body that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class AsRunEntry:
    """One signed link of the chain."""

    seq: int
    prev: str
    hash: str
    sig: str
    body: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The entry as written in the export."""
        return {"seq": self.seq, "prev": self.prev, "hash": self.hash, "sig": self.sig,
                "body": dict(self.body)}  # fmt: skip


def _link(prev: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev.encode() + b"\n" + canonical(body)).hexdigest()


def next_entry(
    last: AsRunEntry | None, body: Mapping[str, Any], key: Ed25519PrivateKey
) -> AsRunEntry:
    """The entry that follows ``last`` (the first one when None), signed with ``key``."""
    prev = last.hash if last else GENESIS
    seq = last.seq + 1 if last else 1
    digest = _link(prev, body)
    return AsRunEntry(seq, prev, digest, key.sign(bytes.fromhex(digest)).hex(), dict(body))


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key, hex."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes_raw().hex()


def fingerprint(public_hex: str) -> str:
    """A short form of a public key for people to compare: SHA-256, first 16 hex digits in fours."""
    h = hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]
    return ":".join(h[i : i + 4] for i in range(0, 16, 4))


def export_lines(entries: Iterable[AsRunEntry], key: Ed25519PrivateKey) -> Iterable[str]:
    """The JSON Lines export: a header with the public key, then the entries in order."""
    pub = public_key_hex(key)
    yield json.dumps({"format": FORMAT, "public_key": pub, "fingerprint": fingerprint(pub)})
    for entry in entries:
        yield json.dumps(entry.to_json(), ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``villagecast asrun verify`` says."""

    ok: bool
    entries: int
    public_key: str
    bad_seq: int | None = None  # the first entry that was altered, removed or re-signed
    reason: str = ""


def verify_lines(lines: Iterable[str], public_key: str | None = None) -> Verdict:
    """Check an export: the header, then each entry's link and signature, in order."""
    it = (line for line in lines if line.strip())
    try:
        header = json.loads(next(it))
    except (StopIteration, ValueError):
        return Verdict(False, 0, "", None, "no header line: not an as-run export")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return Verdict(False, 0, "", None, f"the header is not {FORMAT}")
    pub_hex = public_key or str(header.get("public_key", ""))
    try:
        pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(pub_hex))
    except ValueError:
        return Verdict(False, 0, pub_hex, None, "the public key is not an Ed25519 key")
    prev, seq, count = None, 0, 0
    for line in it:
        seq += 1
        try:
            raw = json.loads(line)
            entry = AsRunEntry(int(raw["seq"]), str(raw["prev"]), str(raw["hash"]),
                               str(raw["sig"]), raw["body"])  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return Verdict(False, count, pub_hex, seq, f"line {seq + 1} is not an as-run entry")
        if prev is None:
            seq = entry.seq  # an export may start mid-chain (from=…): trust its first link
            prev = entry.prev
        if entry.seq != seq:
            return Verdict(
                False, count, pub_hex, seq, f"entry {seq} is missing (found {entry.seq})"
            )
        if entry.prev != prev:
            return Verdict(
                False, count, pub_hex, seq, f"entry {seq} does not follow entry {seq - 1}"
            )
        if _link(entry.prev, entry.body) != entry.hash:
            return Verdict(False, count, pub_hex, seq, f"entry {seq} was altered (hash mismatch)")
        try:
            pub.verify(bytes.fromhex(entry.sig), bytes.fromhex(entry.hash))
        except (InvalidSignature, ValueError):
            return Verdict(False, count, pub_hex, seq, f"entry {seq}: the signature does not match")
        prev = entry.hash
        count += 1
    return Verdict(True, count, pub_hex)
