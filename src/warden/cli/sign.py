"""``warden sign``, ``warden verify`` and ``warden keys generate``: model signatures.

Thin over :mod:`warden.supplychain.signing`. ``verify`` exits 0 when the signature verifies and
every file matches, 1 when it does not (files modified, missing or added; a bad, altered or
foreign signature; a malformed bundle), and 2 on usage or input errors (a missing key, model or
signature file, an unreadable key).
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from warden.cli._common import EXIT_FINDINGS, err, out, user_errors
from warden.errors import ConfigError


class VerifyFormat(StrEnum):
    """What ``verify`` prints on stdout."""

    table = "table"
    json = "json"


class KeyKindOption(StrEnum):
    """The key kinds ``keys generate`` makes."""

    ed25519 = "ed25519"
    ecdsa_p256 = "ecdsa-p256"


def read_password(env_var: str | None) -> str | None:
    """The key password from the environment variable named by ``--password-env``."""
    if env_var is None:
        return None
    value = os.environ.get(env_var)
    if not value:
        raise ConfigError(f"--password-env {env_var}: the variable is not set or empty")
    return value


def sign(
    path: Annotated[
        Path, typer.Argument(help="Model directory or file to sign.", show_default=False)
    ],
    key: Annotated[
        Path, typer.Option("--key", "-k", help="Private key PEM (from `warden keys generate`).")
    ],
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Signature file to write (default: model.sig in the directory, <file>.sig).",
        ),
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option(help="Read the private key's password from this environment variable."),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="Path inside the model to leave unsigned; repeatable."),
    ] = None,
) -> None:
    """Sign a model: hash every file and write a model_signing-compatible bundle."""
    from warden.supplychain.keys import key_id, load_private_key
    from warden.supplychain.signing import sign as sign_model

    with user_errors():
        private = load_private_key(key, password=read_password(password_env))
        written = sign_model(path, private, out=out_path, ignore_paths=ignore or ())
        err.print(f"  key id: {key_id(private)}", highlight=False)
        out.print(f"signed {path} -> {written}", highlight=False)


def _table(path: Path, signature: Path, result_ok: bool, rows: list[tuple[str, str]]) -> Table:
    status = "[green]verified[/]" if result_ok else "[bold red]NOT verified[/]"
    table = Table(title=f"{path}: {status} (signature {signature})")
    table.add_column("check", no_wrap=True)
    table.add_column("result", overflow="fold")
    for check, value in rows:
        table.add_row(check, value)
    return table


def verify(
    path: Annotated[
        Path, typer.Argument(help="Model directory or file to verify.", show_default=False)
    ],
    key: Annotated[Path, typer.Option("--key", "-k", help="Public key PEM (the .pub file).")],
    signature: Annotated[
        Path | None,
        typer.Option(
            "--signature", "-s", help="Signature bundle (default: model.sig, or <file>.sig)."
        ),
    ] = None,
    fmt: Annotated[
        VerifyFormat, typer.Option("--format", "-f", help="Output format on stdout.")
    ] = VerifyFormat.table,
) -> None:
    """Verify a model against its signature; name every modified, missing or added file."""
    from warden.errors import SignatureError
    from warden.supplychain.signing import default_signature_path
    from warden.supplychain.signing import verify as verify_model

    with user_errors():
        sig_path = signature if signature is not None else default_signature_path(path)
        try:
            result = verify_model(path, key, signature=sig_path)
        except SignatureError as exc:
            message = " ".join(str(exc).split())
            if fmt is VerifyFormat.json:
                doc = {"verified": False, "signature": str(sig_path), "error": message}
                out.print_json(json.dumps(doc))
            else:
                out.print(_table(path, sig_path, False, [("signature", message)]))
            err.print(f"[bold red]signature does not verify:[/] {message}", highlight=False)
            raise typer.Exit(EXIT_FINDINGS) from None
        if fmt is VerifyFormat.json:
            out.print_json(json.dumps({**result.to_dict(), "signature": str(sig_path)}))
        else:
            rows = [
                ("signature", f"valid, key {result.key_id}"),
                ("model", f"{result.model_name}, {result.signed_files} signed files"),
                ("root digest", f"sha256:{result.root_digest}"),
            ]
            for label, names in (
                ("modified", result.modified),
                ("missing", result.missing),
                ("extra", result.extra),
            ):
                if names:
                    rows.append((label, "\n".join(names)))
            rows.append(("not compared", ", ".join(result.ignore_paths) or "-"))
            out.print(_table(path, sig_path, result.ok, rows))
        if not result.ok:
            err.print(
                f"{path}: {len(result.modified)} modified, {len(result.missing)} missing, "
                f"{len(result.extra)} extra files",
                highlight=False,
            )
            raise typer.Exit(EXIT_FINDINGS)


keys_app = typer.Typer(
    name="keys",
    help="Signing keys for `warden sign` (generate) and the store's master key (rotate).",
    no_args_is_help=True,
    add_completion=False,
)


@keys_app.command("generate")
def generate(
    out_prefix: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Write the private key to PREFIX and the public key to PREFIX.pub."
        ),
    ],
    kind: Annotated[
        KeyKindOption, typer.Option("--kind", help="Key algorithm.")
    ] = KeyKindOption.ecdsa_p256,
    password_env: Annotated[
        str | None,
        typer.Option(help="Encrypt the private key with the password in this variable."),
    ] = None,
) -> None:
    """Generate a key pair: PREFIX (private, PKCS#8 PEM, mode 0600) and PREFIX.pub."""
    from warden.supplychain.keys import generate_key

    with user_errors():
        public = out_prefix.with_name(out_prefix.name + ".pub")
        kid = generate_key(kind.value, out_prefix, public, password=read_password(password_env))
        err.print(f"  private key: {out_prefix} (mode 0600; keep it secret)", highlight=False)
        err.print(f"  public key:  {public}", highlight=False)
        out.print(f"{kind.value} key {kid}", highlight=False)
