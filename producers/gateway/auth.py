"""Who may publish: ``authorize(header) -> department``, the one call at a request's edge.

A token carries a role; ``department:<name>`` may publish that department's event types. Tokens
are stored hashed (sha256), never logged, never echoed. The store here is a stand-in until the
security module (issue 12) lands: a file ``<data_dir>/gateway/tokens`` (mode 0600) of lines
``<sha256 hex> <role>``. The gateway only calls :func:`authorize` with a :class:`TokenStore`,
so swapping in the security module's store changes this module only.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Protocol

from fupin.config import Settings
from fupin.topics import DEPARTMENTS

ROLE_PREFIX = "department:"


class AuthError(Exception):
    """A request the gateway refuses before reading it: ``status`` 401 (who?) or 403 (not allowed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class TokenStore(Protocol):
    def role_of(self, token: str) -> str | None:
        """The role of a presented token, or None when the token is unknown."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def tokens_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "gateway" / "tokens"


class FileTokenStore:
    """Hashed tokens in one file; re-read when the file changes, so a new token works at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._roles: dict[str, str] = {}

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._roles = None, {}
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        roles: dict[str, str] = {}
        for line in self.path.read_text().splitlines():
            digest, _, role = line.strip().partition(" ")
            if len(digest) == 64 and role:
                roles[digest] = role.strip()
        self._stamp, self._roles = stamp, roles

    def role_of(self, token: str) -> str | None:
        self._load()
        return self._roles.get(token_hash(token))

    def add(self, role: str) -> str:
        """A new random token with ``role``; only its hash is written. Returns the token (shown once)."""
        token = "fpg_" + secrets.token_urlsafe(32)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, f"{token_hash(token)} {role}\n".encode())
        finally:
            os.close(fd)
        return token


def check_role(role: str) -> str:
    """The department of a publishing role; ValueError for a role that is not ``department:<name>``."""
    if not role.startswith(ROLE_PREFIX) or role[len(ROLE_PREFIX):] not in DEPARTMENTS:
        raise ValueError(f"role {role!r} is not department:<name> with a name among {', '.join(DEPARTMENTS)}")
    return role[len(ROLE_PREFIX):]


def authorize(header: str | None, store: TokenStore) -> str:
    """The department the request may publish for, from its ``Authorization: Bearer <token>``.

    Raises :class:`AuthError` 401 without a known token, 403 for a role that may not publish.
    """
    if not header:
        raise AuthError(401, "missing Authorization header (Bearer token)")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(401, "Authorization must be 'Bearer <token>'")
    role = store.role_of(token)
    if role is None:
        raise AuthError(401, "unknown token")
    try:
        return check_role(role)
    except ValueError:
        raise AuthError(403, f"role {role!r} may not publish events (needs department:<name>)") from None
