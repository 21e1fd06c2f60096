"""``warden access …``: users, roles, MFA, API keys and per-model grants.

Thin over :class:`warden.access.Access`; run by an operator who holds the Warden home (the
first admin is made here). Secrets that are shown once (an API key, a TOTP secret, recovery
codes) go to stdout and nowhere else; messages go to stderr. Passwords are read from a hidden
prompt (twice) or from the environment variable ``--password-env`` names, never from the
command line. Exit codes: 0 done, 2 a usage or input error (one ``error:`` line).

``--actor`` names who acts (default: ``$USER``, else ``cli``); every change is audited.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.markup import escape
from rich.table import Table

from warden.cli._common import err, out, user_errors
from warden.cli._store import home_option, open_audit, open_store
from warden.errors import ConfigError

if TYPE_CHECKING:
    from warden.access import Access, KeyInfo, UserInfo

__all__ = ["access_app", "parse_duration"]

access_app = typer.Typer(
    help="Access control: users, roles, MFA, API keys, per-model grants.", no_args_is_help=True
)
user_app = typer.Typer(help="Users: create, list, roles, disable, passwords.", no_args_is_help=True)
mfa_app = typer.Typer(help="TOTP multi-factor authentication.", no_args_is_help=True)
key_app = typer.Typer(help="API keys for services.", no_args_is_help=True)
access_app.add_typer(user_app, name="user")
access_app.add_typer(mfa_app, name="mfa")
access_app.add_typer(key_app, name="key")


class Format(StrEnum):
    """What a listing prints on stdout."""

    table = "table"
    json = "json"


Home = Annotated[Path | None, home_option()]
Actor = Annotated[
    str | None,
    typer.Option(
        "--actor",
        help="Who is acting, recorded with every change [default: $USER].",
        show_default=False,
    ),
]
Fmt = Annotated[Format, typer.Option("--format", "-f", help="Output format on stdout.")]
UserArg = Annotated[str, typer.Argument(help="User name.", show_default=False)]
KeyArg = Annotated[str, typer.Argument(help="API key id (or the full key).", show_default=False)]
PasswordEnv = Annotated[
    str | None,
    typer.Option(
        "--password-env",
        help="Read the password from this environment variable instead of a prompt.",
        show_default=False,
    ),
]

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, *, allow_never: bool = False) -> timedelta | None:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` (or ``never`` when allowed)."""
    if allow_never and text.strip().lower() == "never":
        return None
    match = _DURATION.match(text)
    if not match:
        extra = " or 'never'" if allow_never else ""
        raise ConfigError(f"duration {text!r}: expected a number and a unit s/m/h/d/w{extra}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _actor(actor: str | None) -> str:
    return actor or os.environ.get("USER") or "cli"


@contextmanager
def _access(home: Path | None, *, create: bool = False) -> Iterator[Access]:
    from warden.access import Access

    with open_store(home, create=create) as store, open_audit(store) as audit:
        yield Access(store, audit=audit)


def _password(env: str | None, name: str) -> str:
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"--password-env {env}: the variable is not set or empty")
        return value
    value = click.prompt(
        f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True
    )
    return str(value)


def _say(text: str) -> None:
    out.print(text, highlight=False, markup=False, soft_wrap=True)


def _note(text: str) -> None:
    err.print(text, highlight=False, markup=False, soft_wrap=True)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*(escape("" if v is None else str(v)) for v in row))
    out.print(table)


def _json(doc: Any) -> None:
    out.print_json(json.dumps(doc))


def _user_line(u: UserInfo) -> str:
    state = "disabled" if u.disabled else "enabled"
    return f"{u.name}: roles {', '.join(u.roles)}; mfa {u.mfa}; {state}"


# --- users -------------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    name: UserArg,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            "-r",
            help="Role (repeat for several): admin, ml-engineer, "
            "auditor, client [default: client].",
        ),
    ] = None,
    plan: Annotated[str, typer.Option(help="Rate plan name.")] = "default",
    password_env: PasswordEnv = None,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Create a user (the first admin too; an admin must enrol MFA before anything else)."""
    with user_errors():
        password = _password(password_env, name)
        with _access(home, create=True) as access:
            info = access.create_user(
                name, password, roles=role or ["client"], plan=plan, actor=_actor(actor)
            )
    _say(f"created user {_user_line(info)}")
    if "admin" in info.roles:
        _note(
            "the admin role requires MFA: log in through the gateway and enrol, or run "
            f"`warden access mfa enrol {info.name}`"
        )


@user_app.command("list")
def user_list(home: Home = None, fmt: Fmt = Format.table) -> None:
    """List users (no secrets)."""
    with user_errors(), _access(home) as access:
        users = access.list_users()
    if fmt is Format.json:
        _json([u.to_dict() for u in users])
        return
    _table(
        "users",
        ("name", "roles", "mfa", "state", "locked until", "models", "plan", "created", "by"),
        [
            [
                u.name,
                ", ".join(u.roles),
                u.mfa,
                "disabled" if u.disabled else "enabled",
                u.locked_until.strftime("%Y-%m-%d %H:%M:%S") if u.locked_until else "",
                ", ".join(u.models),
                u.plan,
                u.created_at.strftime("%Y-%m-%d"),
                u.created_by,
            ]
            for u in users
        ],
    )


@user_app.command("disable")
def user_disable(name: UserArg, home: Home = None, actor: Actor = None) -> None:
    """Disable a user: logins fail and their sessions are revoked."""
    with user_errors(), _access(home) as access:
        info = access.disable_user(name, actor=_actor(actor))
    _say(f"disabled {info.name}")


@user_app.command("enable")
def user_enable(name: UserArg, home: Home = None, actor: Actor = None) -> None:
    """Enable a disabled user."""
    with user_errors(), _access(home) as access:
        info = access.enable_user(name, actor=_actor(actor))
    _say(f"enabled {info.name}")


@user_app.command("unlock")
def user_unlock(name: UserArg, home: Home = None, actor: Actor = None) -> None:
    """Clear a lockout after failed logins."""
    with user_errors(), _access(home) as access:
        info = access.unlock_user(name, actor=_actor(actor))
    _say(f"unlocked {info.name}")


@user_app.command("roles")
def user_roles(
    name: UserArg,
    roles: Annotated[list[str], typer.Argument(help="The new roles (replacing the old).")],
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Replace a user's roles."""
    with user_errors(), _access(home) as access:
        info = access.set_roles(name, roles, actor=_actor(actor))
    _say(f"{info.name}: roles {', '.join(info.roles)}")


@user_app.command("password")
def user_password(
    name: UserArg, password_env: PasswordEnv = None, home: Home = None, actor: Actor = None
) -> None:
    """Set a user's password (their sessions are revoked)."""
    with user_errors():
        password = _password(password_env, name)
        with _access(home) as access:
            access.set_password(name, password, actor=_actor(actor))
    _say(f"password of {name} changed; their sessions were revoked")


@user_app.command("logout")
def user_logout(name: UserArg, home: Home = None, actor: Actor = None) -> None:
    """Revoke every session of a user."""
    with user_errors(), _access(home) as access:
        count = access.revoke_sessions(name, actor=_actor(actor))
    _say(f"revoked {count} session(s) of {name}")


# --- MFA ---------------------------------------------------------------------------------------


@mfa_app.command("enrol")
def mfa_enrol(name: UserArg, home: Home = None, actor: Actor = None) -> None:
    """Start TOTP enrolment: prints the secret and the otpauth:// URI (shown once)."""
    with user_errors(), _access(home) as access:
        enrolment = access.enrol_totp(name, actor=_actor(actor))
    _say(f"secret: {enrolment.secret}")
    _say(f"uri: {enrolment.uri}")
    _note(f"add it to an authenticator app, then run `warden access mfa confirm {name} CODE`")


@mfa_app.command("confirm")
def mfa_confirm(
    name: UserArg,
    code: Annotated[str, typer.Argument(help="The app's current 6-digit code.")],
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Confirm TOTP enrolment with a code: prints the recovery codes (shown once)."""
    with user_errors(), _access(home) as access:
        codes = access.confirm_totp(name, code, actor=_actor(actor))
    for c in codes:
        _say(c)
    _note(f"MFA enrolled for {name}; keep these {len(codes)} recovery codes safe (each works once)")


@mfa_app.command("reset")
def mfa_reset(name: UserArg, home: Home = None, actor: Actor = None) -> None:
    """Remove a user's MFA (lost device); they enrol again at their next login."""
    with user_errors(), _access(home) as access:
        access.reset_mfa(name, actor=_actor(actor))
    _say(f"MFA of {name} reset; their sessions were revoked")


# --- API keys ----------------------------------------------------------------------------------


def _key_rows(keys: Sequence[KeyInfo]) -> list[list[object]]:
    from warden.store.tables import utcnow

    now = utcnow()
    return [
        [
            k.id,
            k.name,
            k.status(now),
            k.role,
            ", ".join(k.models),
            k.plan,
            k.expires_at.strftime("%Y-%m-%d %H:%M") if k.expires_at else "never",
            k.replaced_by or "",
            k.created_at.strftime("%Y-%m-%d"),
            k.created_by,
        ]
        for k in keys
    ]


@key_app.command("issue")
def key_issue(
    name: Annotated[str, typer.Option("--name", help="What the key is for (a service).")],
    model: Annotated[
        list[str], typer.Option("--model", "-m", help="Model it may use (repeat; '*' = all).")
    ],
    plan: Annotated[str, typer.Option("--plan", help="Rate plan name.")],
    role: Annotated[
        str, typer.Option("--role", help="client, ml-engineer or auditor (not admin).")
    ] = "client",
    expires: Annotated[
        str, typer.Option("--expires", help="Lifetime: 30d, 12h, 2w … or never.")
    ] = "90d",
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Issue an API key; prints it once on stdout (only its hash is stored)."""
    with user_errors():
        lifetime = parse_duration(expires, allow_never=True)
        with _access(home, create=True) as access:
            issued = access.issue_key(
                name,
                models=model,
                plan=plan,
                role=role,
                expires_in=lifetime,
                actor=_actor(actor),
            )
    _say(issued.token)
    when = issued.info.expires_at.isoformat() if issued.info.expires_at else "never"
    _note(
        f"issued key {issued.info.id} ({issued.info.name}) for {', '.join(issued.info.models)} "
        f"on plan {issued.info.plan}, expires {when}; it is shown only this once"
    )


@key_app.command("list")
def key_list(
    include_all: Annotated[
        bool, typer.Option("--all", help="Include expired, rotated-out and revoked keys.")
    ] = False,
    home: Home = None,
    fmt: Fmt = Format.table,
) -> None:
    """List API keys (never their secrets)."""
    from warden.store.tables import utcnow

    with user_errors(), _access(home) as access:
        keys = access.list_keys(include_inactive=include_all)
    if fmt is Format.json:
        now = utcnow()
        _json([k.to_dict(now) for k in keys])
        return
    _table(
        "API keys",
        (
            "id",
            "name",
            "status",
            "role",
            "models",
            "plan",
            "expires",
            "replaced by",
            "created",
            "by",
        ),
        _key_rows(keys),
    )


@key_app.command("rotate")
def key_rotate(
    key_id: KeyArg,
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old key keeps working (e.g. 24h, 0s).")
    ] = "24h",
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Issue a replacement key (printed once); the old one works for the grace period."""
    with user_errors():
        wait = parse_duration(grace)
        with _access(home) as access:
            issued = access.rotate_key(key_id, grace=wait, actor=_actor(actor))
            old = access.get_key(key_id)
    _say(issued.token)
    until = old.grace_until.isoformat() if old.grace_until else "now"
    _note(f"key {old.id} rotated to {issued.info.id}; the old key works until {until}")


@key_app.command("revoke")
def key_revoke(key_id: KeyArg, home: Home = None, actor: Actor = None) -> None:
    """Revoke an API key now."""
    with user_errors(), _access(home) as access:
        info = access.revoke_key(key_id, actor=_actor(actor))
    _say(f"revoked key {info.id} ({info.name})")


# --- grants ------------------------------------------------------------------------------------

Subject = Annotated[
    str, typer.Argument(help="A user name, or key:ID for an API key.", show_default=False)
]
ModelName = Annotated[str, typer.Argument(help="Model name ('*' = every model).")]


@access_app.command("grant")
def grant(subject: Subject, model: ModelName, home: Home = None, actor: Actor = None) -> None:
    """Allow a user or API key to use a model."""
    with user_errors(), _access(home) as access:
        info = access.grant(subject, model, actor=_actor(actor))
    _say(f"granted {info.subject} model {info.model}")


@access_app.command("revoke")
def revoke(subject: Subject, model: ModelName, home: Home = None, actor: Actor = None) -> None:
    """Remove a user's or API key's grant for a model."""
    with user_errors(), _access(home) as access:
        access.revoke_grant(subject, model, actor=_actor(actor))
    _say(f"revoked {subject}'s grant for model {model}")


@access_app.command("grants")
def grants(home: Home = None, fmt: Fmt = Format.table) -> None:
    """List every per-model grant."""
    with user_errors(), _access(home) as access:
        found = access.list_grants()
    if fmt is Format.json:
        _json(
            [
                {
                    "subject": g.subject,
                    "model": g.model,
                    "created_at": g.created_at.isoformat(),
                    "created_by": g.created_by,
                }
                for g in found
            ]
        )
        return
    _table(
        "grants",
        ("subject", "model", "granted", "by"),
        [[g.subject, g.model, g.created_at.strftime("%Y-%m-%d"), g.created_by] for g in found],
    )
