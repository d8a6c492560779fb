"""Tokens and roles: who may open which door of the platform.

Roles (the README's "Security" section):

- ``department:<name>``: publish its own department's event types only (:func:`may_publish`,
  for an HTTP gateway);
- ``analyst``: read the marts, the staging models and the alert episodes (``alerts``: what the
  stream workers' views showed them live);
- ``dashboard``: read the marts only;
- ``operator``: run the jobs (build, rebuild, migrate, check, load-reference) and read every
  table of the platform's database (the CLI's status, household and indicator commands).

Tokens are stored hashed (SHA-256 of a 256-bit random secret: a fast hash is enough for a
secret that cannot be guessed) in ``<data_dir>/tokens.json``, mode 0600. A file rather than a
warehouse table because the stream workers' web views check tokens too and hold no warehouse
connection, and because a token must work before the warehouse exists (``migrate``).

The CLI needs no token typed: the owner of the data directory gets a local operator credential,
``<data_dir>/operator.token`` (0600), like a cookie file, which the warehouse service rotates at
each start and the CLI sends with every request.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from fupin import PROJECT_ROOT
from fupin.config import Settings
from fupin.topics import DEPARTMENTS

OPERATOR = "operator"
ANALYST = "analyst"
DASHBOARD = "dashboard"
DEPARTMENT_PREFIX = "department:"
#: Name of the local operator credential the service issues for the CLI.
LOCAL_NAME = "local-operator"
TOKEN_PREFIX = "fpn_"


class AuthError(Exception):
    """A request without a valid token (401) or with a role that may not do this (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    name: str
    role: str
    created_at: str
    hash: str


def check_role(role: str) -> str:
    """The role, if it is one the platform knows; else ValueError naming the known ones."""
    if role in (OPERATOR, ANALYST, DASHBOARD):
        return role
    if role.startswith(DEPARTMENT_PREFIX) and role[len(DEPARTMENT_PREFIX) :] in DEPARTMENTS:
        return role
    raise ValueError(
        f"unknown role {role!r}: one of operator, analyst, dashboard, department:<name> "
        f"(name one of {', '.join(DEPARTMENTS)})"
    )


def may_publish(role: str, event_type: str) -> bool:
    """Whether a token of ``role`` may publish an event of ``event_type`` (its own department's only)."""
    if not role.startswith(DEPARTMENT_PREFIX):
        return False
    department = role[len(DEPARTMENT_PREFIX) :]
    return department in DEPARTMENTS and event_type.startswith(department + ".")


#: Platform tables an analyst reads besides the models: the alert episodes (``fupin alerts``),
#: household-level like the live views the analyst role opens.
ANALYST_TABLES = frozenset({"alerts"})


@cache
def _models(layer: str) -> frozenset[str]:
    """Names of the dbt models of one layer (the folders of dbt_project/models are the layers)."""
    return frozenset(p.stem for p in (PROJECT_ROOT / "dbt_project" / "models" / layer).glob("*.sql"))


def may_read(role: str, table: str) -> bool:
    """Whether ``role`` may read ``table`` (a name in the platform's database)."""
    if role == OPERATOR:
        return True
    if role == ANALYST:
        return table in _models("marts") or table in _models("staging") or table in ANALYST_TABLES
    if role == DASHBOARD:
        return table in _models("marts")
    return False


# -- the token store ---------------------------------------------------------------------------


def tokens_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "tokens.json"


def local_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "operator.token"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    path = tokens_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read, atomically (never readable by others, not even briefly)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _load(settings: Settings) -> list[TokenRecord]:
    try:
        doc = json.loads(tokens_file(settings).read_text())
    except FileNotFoundError:
        return []
    return [TokenRecord(**r) for r in doc.get("tokens", [])]


def _save(settings: Settings, records: list[TokenRecord]) -> None:
    write_private(tokens_file(settings), json.dumps({"tokens": [asdict(r) for r in records]}, indent=1))


def _new(role: str, name: str | None) -> tuple[TokenRecord, str]:
    check_role(role)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        id=secrets.token_hex(4),
        name=name or role,
        role=role,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        hash=token_hash(token),
    )
    return record, token


def create_token(settings: Settings, role: str, name: str | None = None) -> tuple[TokenRecord, str]:
    """A new token of ``role``: its record (stored hashed) and the secret, which is shown once."""
    record, token = _new(role, name)
    with _locked(settings):
        _save(settings, [*_load(settings), record])
    return record, token


def list_tokens(settings: Settings) -> list[TokenRecord]:
    return _load(settings)


def revoke_token(settings: Settings, key: str) -> list[TokenRecord]:
    """Remove the tokens whose id or name is ``key``; the removed records."""
    with _locked(settings):
        records = _load(settings)
        gone = [r for r in records if key in (r.id, r.name)]
        if gone:
            _save(settings, [r for r in records if r not in gone])
    return gone


def identify(settings: Settings, token: str | None) -> TokenRecord | None:
    """The record of a presented token, or None when it is missing, unknown or revoked."""
    if not token:
        return None
    digest = token_hash(token)
    for record in _load(settings):
        if hmac.compare_digest(record.hash, digest):
            return record
    return None


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def authorize(settings: Settings, header: str | None, roles: tuple[str, ...] | None = None) -> TokenRecord:
    """The caller's token record; AuthError 401 without a valid token, 403 when its role is not in ``roles``."""
    record = identify(settings, bearer(header))
    if record is None:
        raise AuthError(401, "a token is required: send 'Authorization: Bearer <token>' (fupin token create)")
    if roles is not None and record.role not in roles:
        raise AuthError(403, f"role {record.role} may not do this (needs {' or '.join(roles)})")
    return record


# -- the local operator credential (the CLI's cookie) ------------------------------------------


def issue_local_token(settings: Settings) -> str:
    """Replace the local operator credential: revoke the old one, store a new one in operator.token.

    One lock over the store and the file, so that a reader never finds a file whose token the
    store no longer holds while another process rotates it.
    """
    record, token = _new(OPERATOR, LOCAL_NAME)
    with _locked(settings):
        _save(settings, [*(r for r in _load(settings) if r.name != LOCAL_NAME), record])
        write_private(local_file(settings), token + "\n")
    return token


def local_token(settings: Settings) -> str:
    """The local operator credential, issued now when there is none (or it was revoked)."""
    with _locked(settings), contextlib.suppress(OSError):
        token = local_file(settings).read_text().strip()
        if identify(settings, token) is not None:
            return token
    return issue_local_token(settings)


def auth_headers(settings: Settings) -> dict[str, str]:
    """The header the CLI sends: ``FUPIN_TOKEN`` when set, else the local operator credential."""
    token = os.environ.get("FUPIN_TOKEN") or local_token(settings)
    return {"Authorization": f"Bearer {token}"}
