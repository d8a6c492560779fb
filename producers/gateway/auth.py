"""Who may publish: ``authorize(settings, header) -> department``, the one call at a request's edge.

Tokens and roles are the platform's (:mod:`fupin.auth`: stored hashed, made with
``fupin token create --role department:<name>``, revoked with ``fupin token revoke``). Here only
the gateway's rule: the caller's role must be ``department:<name>``, and that department is the one
whose event types the request may publish (the judgement refuses another department's per event).
Tokens are never logged nor echoed.
"""

from __future__ import annotations

from fupin import auth
from fupin.auth import AuthError
from fupin.config import Settings

ROLE_PREFIX = "department:"

__all__ = ["AuthError", "authorize"]


def authorize(settings: Settings, header: str | None) -> str:
    """The department the request may publish for, from its ``Authorization: Bearer <token>``.

    Raises :class:`fupin.auth.AuthError` 401 without a known token, 403 for a role that may not
    publish.
    """
    record = auth.authorize(settings, header)
    if not record.role.startswith(ROLE_PREFIX):
        raise AuthError(403, f"role {record.role} may not publish events (needs department:<name>)")
    return record.role[len(ROLE_PREFIX) :]
