"""Random bearer tokens, stored only as hashes, and Argon2id passwords."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "hash_token", "new_token", "verify_password"]

_hasher = PasswordHasher()  # Argon2id with the library's recommended parameters

# Token kinds, visible in the token's prefix so that a leaked token can be recognised.
PREFIXES = {"speaker": "vcs_", "listener": "vcl_", "api": "vca_", "session": "vcx_"}


def new_token(kind: str) -> str:
    """A fresh random token (256 bits) with a kind prefix."""
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256 hex (tokens are random, so no salt or stretching)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


def hash_password(password: str) -> str:
    """An Argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether the password matches the stored Argon2id hash."""
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
