"""Deterministic synthetic data (1000 users, 500 bounties) and HMAC-signed bearer tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import time
import zlib
from typing import Any

import msgspec

N_USERS = 1000
N_BOUNTIES = 500

SIGN_IN_PASSWORD = "TestPassword123!"
LOGIN_PASSWORD = "loadtestpassword"
ADMIN_EMAIL = "admin@example.com"
ADMIN_USERNAME = "admin"
TOKEN_TTL_S = 24 * 3600

_FIRST = (
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Radia", "Guido",
    "Frances", "Edsger", "Katherine", "Donald", "Hedy", "Tim", "Sophie", "John", "Anita", "Niklaus",
)
_LAST = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson",
    "Perlman", "Rossum", "Allen", "Dijkstra", "Johnson", "Knuth", "Lamarr", "Berners-Lee",
    "Wilson", "Backus", "Borg", "Wirth",
)
BOUNTY_STATUSES = ("open", "in_progress", "completed", "cancelled")
_TOPICS = (
    "Fix flaky login test", "Speed up search index", "Add dark mode", "Write API docs",
    "Reduce p99 latency", "Migrate to HTTP/2", "Harden rate limiter", "Add CSV export",
    "Audit dependencies", "Improve onboarding flow",
)


def _make_user(i: int) -> dict[str, Any]:
    first = _FIRST[i % len(_FIRST)]
    last = _LAST[(i // len(_FIRST)) % len(_LAST)]
    return {
        "id": i,
        "name": f"{first} {last}",
        "email": f"user{i}@example.com",
        "role": "user",
        "created_at": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00Z",
    }


def _make_bounty(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "title": f"{_TOPICS[i % len(_TOPICS)]} #{i}",
        "status": BOUNTY_STATUSES[(i * 7) % len(BOUNTY_STATUSES)],
        "reward": 50 + (i * 37) % 950,
        "currency": "USD",
        "owner_id": 1 + (i * 13) % N_USERS,
        "created_at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T09:30:00Z",
    }


USERS: list[dict[str, Any]] = [_make_user(i) for i in range(1, N_USERS + 1)]
BOUNTIES: list[dict[str, Any]] = [_make_bounty(i) for i in range(1, N_BOUNTIES + 1)]
BOUNTIES_BY_STATUS: dict[str, list[dict[str, Any]]] = {
    s: [b for b in BOUNTIES if b["status"] == s] for s in BOUNTY_STATUSES
}
BOUNTIES_BY_OWNER: dict[int, list[dict[str, Any]]] = {}
for _b in BOUNTIES:
    BOUNTIES_BY_OWNER.setdefault(_b["owner_id"], []).append(_b)
del _b
# Pre-encoded bodies for the by-id endpoints: the hot paths of most example plans.
USER_JSON: list[bytes] = [msgspec.json.encode(u) for u in USERS]
BOUNTY_JSON: list[bytes] = [msgspec.json.encode(b) for b in BOUNTIES]


def parse_id(text: str, upper: int) -> int | None:
    """``"42"`` -> 42 when 1 <= id <= upper, else None (random strings, 0, overflow...)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 7:
        return None
    n = int(text)
    return n if 1 <= n <= upper else None


def get_user(user_id: int) -> dict[str, Any] | None:
    return USERS[user_id - 1] if 1 <= user_id <= N_USERS else None


def get_bounty(bounty_id: int) -> dict[str, Any] | None:
    return BOUNTIES[bounty_id - 1] if 1 <= bounty_id <= N_BOUNTIES else None


def query_int(value: str | None, default: int, lo: int, hi: int) -> int:
    """Lenient int query parameter, clamped to [lo, hi]."""
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        return default
    return max(lo, min(hi, n))


_USER_EMAIL = re.compile(r"^user(\d+)@example\.com$", re.IGNORECASE)


def user_for_email(email: str) -> dict[str, Any]:
    """The account a sign-in email maps to (any email works; ``admin@example.com`` is admin)."""
    email = email.strip()
    if email.lower() == ADMIN_EMAIL:
        return {"id": 0, "name": "Demo Admin", "email": ADMIN_EMAIL, "role": "admin"}
    m = _USER_EMAIL.match(email)
    if m and 1 <= int(m.group(1)) <= N_USERS:
        return get_user(int(m.group(1)))  # type: ignore[return-value]
    uid = 1 + zlib.crc32(email.lower().encode()) % N_USERS
    local = email.split("@", 1)[0] or "user"
    return {"id": uid, "name": local.replace(".", " ").title(), "email": email, "role": "user"}


def user_for_username(username: str) -> dict[str, Any]:
    username = username.strip()
    if username.lower() == ADMIN_USERNAME:
        return {"id": 0, "name": "Demo Admin", "email": ADMIN_EMAIL, "username": username, "role": "admin"}
    uid = 1 + zlib.crc32(username.lower().encode()) % N_USERS
    return {"id": uid, "name": username, "email": f"{username}@example.com", "username": username, "role": "user"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Stateless bearer tokens: ``<b64 payload>.<b64 HMAC-SHA256>``. No storage growth;
    a fresh random key per server process, so tokens do not survive a restart."""

    def __init__(self, key: bytes | None = None, ttl_s: int = TOKEN_TTL_S) -> None:
        self._key = key or os.urandom(32)
        self._ttl = ttl_s

    def _sig(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest()[:24])

    def issue(self, user: dict[str, Any], kind: str = "access") -> str:
        now = int(time.time())
        claims = {
            "sub": user["id"],
            "email": user["email"],
            "name": user.get("name", ""),
            "role": user.get("role", "user"),
            "typ": kind,
            "iat": now,
            "exp": now + self._ttl,
            "n": _b64(os.urandom(6)),
        }
        body = _b64(msgspec.json.encode(claims))
        return f"{body}.{self._sig(body.encode('ascii'))}"

    def verify(self, token: str) -> dict[str, Any] | None:
        body, dot, sig = token.partition(".")
        if not dot or not body or not sig:
            return None
        try:
            raw_body = body.encode("ascii")
        except UnicodeEncodeError:
            return None
        if not hmac.compare_digest(self._sig(raw_body), sig):
            return None
        try:
            claims = msgspec.json.decode(_unb64(body))
        except (binascii.Error, ValueError, msgspec.DecodeError):
            return None
        if not isinstance(claims, dict) or claims.get("exp", 0) < time.time():
            return None
        return claims

    def from_header(self, authorization: str | None) -> dict[str, Any] | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.verify(token.strip())
