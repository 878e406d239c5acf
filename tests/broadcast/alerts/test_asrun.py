"""The as-run log: a hash chain signed with Ed25519; verification names the first entry that was
altered, removed, reordered or re-signed."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broadcast.alerts.asrun import (
    AsRunEntry,
    export_lines,
    fingerprint,
    next_entry,
    public_key_hex,
    verify_lines,
)

KEY = Ed25519PrivateKey.generate()


def chain(n: int = 5) -> list[AsRunEntry]:
    entries: list[AsRunEntry] = []
    for i in range(1, n + 1):
        body = {"broadcast_id": i, "villages": ["hail-myeon-hangnim-ri"], "by": "alert:KMA-1",
                "title": f"태풍경보 {i}", "reached": {"speakers": 3, "of": 3}}  # fmt: skip
        entries.append(next_entry(entries[-1] if entries else None, body, KEY))
    return entries


def lines(entries: list[AsRunEntry]) -> list[str]:
    return list(export_lines(entries, KEY))


def test_an_untouched_export_verifies() -> None:
    verdict = verify_lines(lines(chain()))
    assert verdict.ok
    assert verdict.entries == 5
    assert verdict.public_key == public_key_hex(KEY)
    assert len(fingerprint(verdict.public_key)) == 19


def _edit(out: list[str], index: int, change: dict[str, object]) -> list[str]:
    raw = json.loads(out[index])
    raw["body"].update(change)
    out[index] = json.dumps(raw, ensure_ascii=False)
    return out


def test_an_altered_entry_is_named() -> None:
    out = _edit(
        lines(chain()), 3, {"reached": {"speakers": 0, "of": 3}}
    )  # entry 3 (line 0 is the header)
    verdict = verify_lines(out)
    assert not verdict.ok
    assert verdict.bad_seq == 3
    assert "altered" in verdict.reason
    assert verdict.entries == 2


def test_a_removed_entry_is_named() -> None:
    out = lines(chain())
    del out[2]  # entry 2
    verdict = verify_lines(out)
    assert not verdict.ok
    assert verdict.bad_seq == 2
    assert "missing" in verdict.reason


def test_a_re_chained_log_without_the_key_fails_on_signatures() -> None:
    forger = Ed25519PrivateKey.generate()
    entries = chain()
    forged: list[AsRunEntry] = []
    for e in entries:
        body = dict(e.body) | ({"title": "고친 제목"} if e.seq == 4 else {})
        forged.append(next_entry(forged[-1] if forged else None, body, forger))
    out = list(export_lines(forged, KEY))  # header still claims the county's key
    out[0] = json.dumps({"format": "villagecast-asrun/1", "public_key": public_key_hex(KEY)})
    verdict = verify_lines(out)
    assert not verdict.ok
    assert verdict.bad_seq == 1
    assert "signature" in verdict.reason
    # and against the published key, a header that swapped in the forger's key fails too
    swapped = list(export_lines(forged, forger))
    assert verify_lines(swapped).ok
    assert not verify_lines(swapped, public_key=public_key_hex(KEY)).ok


def test_a_range_export_starts_mid_chain() -> None:
    entries = chain(6)
    verdict = verify_lines(lines(entries[2:]))
    assert verdict.ok
    assert verdict.entries == 4


def test_garbage_is_not_an_export() -> None:
    assert not verify_lines([]).ok
    assert not verify_lines(["{}"]).ok
    out = [*lines(chain(2)), "not json"]
    verdict = verify_lines(out)
    assert not verdict.ok
    assert verdict.bad_seq == 3
