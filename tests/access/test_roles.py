"""authorize(): the full role × permission matrix, model grants, deny by default."""

from __future__ import annotations

import pytest

from warden.access import (
    ALL_PERMISSIONS,
    ROLES,
    PermissionDenied,
    Principal,
    authorize,
    permissions_of,
)

# The matrix written out by hand (docs/access.md has the same table): role -> allowed.
EXPECTED = {
    "admin": {
        "models:read",
        "models:predict",
        "registry:read",
        "registry:write",
        "registry:deploy",
        "users:admin",
        "keys:admin",
        "audit:read",
        "metrics:read",
    },
    "ml-engineer": {
        "models:read",
        "models:predict",
        "registry:read",
        "registry:write",
        "registry:deploy",
        "metrics:read",
    },
    "auditor": {"models:read", "registry:read", "audit:read", "metrics:read"},
    "client": {"models:read", "models:predict"},
}


def principal(*roles: str, models: frozenset[str] = frozenset({"*"}), **kw: object) -> Principal:
    return Principal(
        kind="user",
        id="1",
        name="p",
        roles=frozenset(roles),
        permissions=permissions_of(frozenset(roles)),
        models=models,
        plan="default",
        mfa="enrolled",
        **kw,  # type: ignore[arg-type]
    )


def test_the_permission_list_is_what_the_docs_say() -> None:
    assert set(EXPECTED["admin"]) == ALL_PERMISSIONS
    assert set(EXPECTED) == set(ROLES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("permission", sorted(ALL_PERMISSIONS))
def test_matrix(role: str, permission: str) -> None:
    p = principal(role)
    if permission in EXPECTED[role]:
        authorize(p, permission)
        authorize(p, permission, "fraud")
        assert p.can(permission)
    else:
        with pytest.raises(PermissionDenied, match=f"lacks permission {permission}"):
            authorize(p, permission)
        assert not p.can(permission)


@pytest.mark.parametrize("permission", ["models:delete", "", "MODELS:READ", "*", "users:*"])
def test_unknown_permissions_are_denied_even_to_admin(permission: str) -> None:
    with pytest.raises(PermissionDenied, match="unknown permission"):
        authorize(principal("admin"), permission)


def test_model_scoped_checks_need_a_grant() -> None:
    p = principal("client", models=frozenset({"fraud"}))
    authorize(p, "models:predict", "fraud")
    authorize(p, "models:predict")  # not model-scoped
    with pytest.raises(PermissionDenied, match="no grant for model 'churn'"):
        authorize(p, "models:predict", "churn")
    nothing = principal("client", models=frozenset())
    with pytest.raises(PermissionDenied, match="no grant"):
        authorize(nothing, "models:read", "fraud")


def test_no_roles_and_restricted_principals_get_nothing() -> None:
    for permission in ALL_PERMISSIONS:
        with pytest.raises(PermissionDenied, match="no role"):
            authorize(principal(), permission)
    restricted = Principal(
        kind="user",
        id="1",
        name="root",
        roles=frozenset({"admin"}),
        permissions=frozenset(),
        models=frozenset({"*"}),
        plan="default",
        mfa="none",
        restricted=True,
    )
    for permission in ALL_PERMISSIONS:
        with pytest.raises(PermissionDenied, match="enrol MFA"):
            authorize(restricted, permission)


def test_unknown_roles_grant_nothing() -> None:
    assert permissions_of(frozenset({"superuser"})) == frozenset()
