"""Tokens and roles (fupin.auth): stored hashed, private files, revocation, the role checks."""

from __future__ import annotations

import pytest

from fupin import auth


def test_tokens_are_stored_hashed_in_a_private_file_and_revocable(settings):
    record, token = auth.create_token(settings, "analyst", "alice")
    assert token.startswith("fpn_") and len(token) > 40
    stored = auth.tokens_file(settings).read_text()
    assert token not in stored and auth.token_hash(token) in stored
    assert auth.tokens_file(settings).stat().st_mode & 0o777 == 0o600
    assert auth.identify(settings, token) == record
    assert auth.authorize(settings, f"Bearer {token}", (auth.ANALYST,)) == record
    with pytest.raises(auth.AuthError) as exc:
        auth.authorize(settings, f"Bearer {token}", (auth.OPERATOR,))
    assert exc.value.status == 403
    for header in (None, "", "Bearer ", f"Basic {token}", f"Bearer {token}x"):
        with pytest.raises(auth.AuthError) as exc:
            auth.authorize(settings, header)
        assert exc.value.status == 401
    assert [r.name for r in auth.list_tokens(settings)] == ["alice"]
    assert auth.revoke_token(settings, "alice") == [record]
    assert auth.identify(settings, token) is None


def test_roles():
    for role in ("operator", "analyst", "dashboard", "department:water"):
        assert auth.check_role(role) == role
    for role in ("admin", "department:", "department:police", "Operator"):
        with pytest.raises(ValueError, match="unknown role"):
            auth.check_role(role)
    assert auth.may_read("dashboard", "census") and not auth.may_read("dashboard", "stg_water")
    assert auth.may_read("analyst", "census") and auth.may_read("analyst", "stg_water")
    assert auth.may_read("analyst", "alerts") and not auth.may_read("dashboard", "alerts")
    for role in ("analyst", "dashboard", "department:water"):
        assert not auth.may_read(role, "events") and not auth.may_read(role, "dead_letters")
    assert auth.may_read("operator", "dead_letters")
    assert auth.may_publish("department:water", "water.water_assessed")
    assert not auth.may_publish("department:water", "housing.house_assessed")


def test_local_credential_is_private_rotated_and_reissued_when_revoked(settings):
    first = auth.local_token(settings)
    assert auth.local_token(settings) == first  # read back, not reissued
    assert auth.local_file(settings).stat().st_mode & 0o777 == 0o600
    assert auth.identify(settings, first).role == "operator"
    second = auth.issue_local_token(settings)  # what the service does at each start
    assert second != first and auth.identify(settings, first) is None
    auth.revoke_token(settings, auth.LOCAL_NAME)
    third = auth.local_token(settings)
    assert third not in (first, second) and auth.identify(settings, third) is not None
    assert [r.name for r in auth.list_tokens(settings)] == [auth.LOCAL_NAME]
