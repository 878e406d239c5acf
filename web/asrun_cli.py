"""``villagecast asrun verify FILE [--public-key HEX]``: check an as-run export offline.

Reads the JSON Lines export of ``GET /api/v1/asrun`` and checks the hash chain and every Ed25519
signature; exit 0 when intact, 1 naming the first entry that was altered, removed or re-signed.
No database and no server are needed: an auditor runs it on their own machine.
"""

from __future__ import annotations

import argparse
import sys

from broadcast.alerts.asrun import fingerprint, verify_lines

from .settings import Settings

__all__ = ["run"]


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Verify the file; print the verdict."""
    try:
        with open(args.file, encoding="utf-8") as fh:
            verdict = verify_lines(fh, public_key=args.public_key)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"villagecast: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    key = f"key {fingerprint(verdict.public_key)}" if verdict.public_key else "no key"
    if verdict.ok:
        print(f"ok: {verdict.entries} entries, chain and signatures intact ({key})")
        return 0
    print(f"FAILED at entry {verdict.bad_seq}: {verdict.reason} "
          f"({verdict.entries} entries before it are intact; {key})")  # fmt: skip
    return 1
