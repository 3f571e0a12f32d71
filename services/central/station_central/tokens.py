"""Station tokens: random secrets shown once, kept only as their SHA-256.

A token is 256 random bits, so a fast hash is enough (nobody can guess one to match a
leaked hash); a slow password hash would only slow down every batch.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "stn_"
TOKEN_BYTES = 32


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, so response times say nothing about the secret."""
    return hmac.compare_digest(given.encode(), expected.encode())
