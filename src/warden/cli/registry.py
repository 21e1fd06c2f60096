"""``warden registry …``: models, versions, datasets, lineage, evidence and the gated lifecycle.

Thin over :class:`warden.registry.Registry`. Results go to stdout (``--format json`` where the
result is a record or a list), messages to stderr. Exit codes: 0 done; 1 a policy gate refused
(``approve``, ``gates``: each failing gate on its own line) or a scan found something at or
above ``--fail-on``; 2 a usage or input error (an unknown model or version, a move the
lifecycle does not allow, a bad file) as one ``error:`` line.

``--actor`` names who acts (default: ``$USER``, else ``cli``); every change records it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from warden.cli._common import (
    EXIT_FINDINGS,
    err,
    fail_on_option,
    out,
    parse_fail_on,
    user_errors,
)
from warden.cli._store import home_option, open_audit, open_store
from warden.errors import ConfigError, GateRefused

if TYPE_CHECKING:
    from warden.registry import Registry, TransitionInfo, VersionInfo
    from warden.registry.policy import Policy

__all__ = ["registry_app"]

registry_app = typer.Typer(
    help="Model registry: versions, datasets, lineage, evidence, approval gates, deployment.",
    no_args_is_help=True,
)
dataset_app = typer.Typer(help="Datasets: fingerprints, sources, licences.", no_args_is_help=True)
lineage_app = typer.Typer(
    help="Lineage: trained-on, evaluated-on, derived-from.", no_args_is_help=True
)
registry_app.add_typer(dataset_app, name="dataset")
registry_app.add_typer(lineage_app, name="lineage")


class Format(StrEnum):
    """What a command prints on stdout."""

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
ModelArg = Annotated[str, typer.Argument(help="Model name.", show_default=False)]
RefArg = Annotated[
    str, typer.Argument(help="Version: number, vN, latest, or an alias.", show_default=False)
]
PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        help="Policy file [default: $WARDEN_POLICY, else HOME/policy.toml, else the built-in "
        "default].",
        show_default=False,
    ),
]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (recorded).")]


def _actor(actor: str | None) -> str:
    return actor or os.environ.get("USER") or "cli"


@contextmanager
def _registry(home: Path | None, actor: str | None, *, create: bool = False) -> Iterator[Registry]:
    from warden.registry import Registry

    with open_store(home, create=create) as store, open_audit(store) as audit:
        yield Registry(store, actor=_actor(actor), audit=audit)


def _policy(path: Path | None) -> Policy | None:
    if path is None:
        return None
    from warden.registry.policy import load_policy

    return load_policy(path, required=True)


def _json(doc: Any) -> None:
    out.print_json(json.dumps(doc))


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*(escape("" if v is None else str(v)) for v in row))
    out.print(table)


def _say(text: str) -> None:
    out.print(text, highlight=False, markup=False)


def _transition_line(t: TransitionInfo) -> str:
    moved = f"{t.from_state or '-'} -> {t.to_state}"
    flag = " [OVERRIDE]" if t.override else ""
    why = f": {t.reason}" if t.reason else ""
    return f"{t.model} v{t.version}: {moved}{flag}{why}"


def _version_rows(versions: Sequence[VersionInfo]) -> list[list[object]]:
    return [
        [
            v.number,
            v.state,
            ", ".join(v.aliases),
            v.artifact_name,
            len(v.files),
            v.size,
            v.artifact_digest[:19] + "…",
            v.created_at.strftime("%Y-%m-%d"),
            v.created_by,
        ]
        for v in versions
    ]


_VERSION_COLUMNS = (
    "version",
    "state",
    "aliases",
    "artifact",
    "files",
    "bytes",
    "digest",
    "created",
    "by",
)


# --- models and versions ----------------------------------------------------------------------


@registry_app.command("models")
def models(home: Home = None, fmt: Fmt = Format.table) -> None:
    """List the registered models."""
    with user_errors(), _registry(home, None) as reg:
        found = reg.list_models()
    if fmt is Format.json:
        _json([m.to_dict() for m in found])
        return
    _table(
        "models",
        ("name", "versions", "aliases", "owner", "created", "by"),
        [
            [
                m.name,
                m.versions,
                ", ".join(f"{a}=v{n}" for a, n in m.aliases.items()),
                m.owner,
                m.created_at.strftime("%Y-%m-%d %H:%M"),
                m.created_by,
            ]
            for m in found
        ],
    )


@registry_app.command("create")
def create(
    name: ModelArg,
    description: Annotated[str, typer.Option(help="What the model does.")] = "",
    intended_use: Annotated[str, typer.Option(help="Intended use (model card).")] = "",
    limitations: Annotated[str, typer.Option(help="Known limitations (model card).")] = "",
    owner: Annotated[str, typer.Option(help="Who is responsible for it.")] = "",
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Create a model (a name that versions are registered under)."""
    with user_errors(), _registry(home, actor, create=True) as reg:
        m = reg.create_model(
            name,
            description=description,
            intended_use=intended_use,
            limitations=limitations,
            owner=owner,
        )
    _say(f"created model {m.name}")


@registry_app.command("update")
def update(
    name: ModelArg,
    description: Annotated[str | None, typer.Option(help="What the model does.")] = None,
    intended_use: Annotated[str | None, typer.Option(help="Intended use (model card).")] = None,
    limitations: Annotated[str | None, typer.Option(help="Known limitations (model card).")] = None,
    owner: Annotated[str | None, typer.Option(help="Who is responsible for it.")] = None,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Change a model's description, intended use, limitations or owner (the model card's text)."""
    with user_errors(), _registry(home, actor) as reg:
        if all(v is None for v in (description, intended_use, limitations, owner)):
            raise ConfigError(
                "nothing to update: give --description, --intended-use, --limitations or --owner"
            )
        m = reg.update_model(
            name,
            description=description,
            intended_use=intended_use,
            limitations=limitations,
            owner=owner,
        )
    _say(f"updated model {m.name}")


@registry_app.command("register")
def register(
    model: ModelArg,
    path: Annotated[
        Path, typer.Argument(help="Model file or directory to store.", show_default=False)
    ],
    framework: Annotated[str, typer.Option(help="Framework label (torch, sklearn, onnx …).")] = "",
    input_spec: Annotated[
        Path | None,
        typer.Option(help="JSON file describing the inputs (for the gateway's validation)."),
    ] = None,
    create_model: Annotated[
        bool, typer.Option("--create", help="Create the model if it does not exist.")
    ] = False,
    home: Home = None,
    actor: Actor = None,
    fmt: Fmt = Format.table,
) -> None:
    """Store a model file or directory (encrypted) as the model's next version."""
    with user_errors():
        spec = None
        if input_spec is not None:
            try:
                spec = json.loads(input_spec.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ConfigError(
                    f"--input-spec {input_spec}: not a readable JSON file: {exc}"
                ) from exc
            if not isinstance(spec, dict):
                raise ConfigError(f"--input-spec {input_spec}: expected a JSON object")
        with _registry(home, actor, create=True) as reg:
            v = reg.register_version(
                model, path, framework=framework, input_spec=spec, create_model=create_model
            )
    if fmt is Format.json:
        _json(v.to_dict())
        return
    _say(f"registered {v.label} ({len(v.files)} file(s), {v.size} bytes)")
    _say(f"  digest {v.artifact_digest}")


@registry_app.command("versions")
def versions(
    model: ModelArg,
    state: Annotated[str | None, typer.Option(help="Only versions in this state.")] = None,
    home: Home = None,
    fmt: Fmt = Format.table,
) -> None:
    """List a model's versions."""
    with user_errors(), _registry(home, None) as reg:
        found = reg.list_versions(model, state=state)
    if fmt is Format.json:
        _json([v.to_dict() for v in found])
        return
    _table(f"{model} versions", _VERSION_COLUMNS, _version_rows(found))


@registry_app.command("show")
def show(model: ModelArg, ref: RefArg, home: Home = None, fmt: Fmt = Format.table) -> None:
    """Show one version: files, state, aliases and its latest evidence."""
    with user_errors(), _registry(home, None) as reg:
        v = reg.get_version(model, ref)
        scan = reg.latest_scan(model, v.number)
        sig = reg.latest_signature(model, v.number)
        assessment = reg.latest_assessment(model, v.number)
        lineage = reg.lineage(model, v.number)
    if fmt is Format.json:
        _json(
            {
                **v.to_dict(),
                "latest_scan": None if scan is None else scan.to_dict(),
                "latest_signature": None if sig is None else sig.to_dict(),
                "latest_assessment": None if assessment is None else assessment.to_dict(),
                "lineage": [e.to_dict() for e in lineage],
            }
        )
        return
    rows: list[tuple[str, object]] = [
        ("state", v.state),
        ("aliases", ", ".join(v.aliases) or "-"),
        ("artifact", f"{v.artifact_name} ({v.artifact_kind}, {v.size} bytes)"),
        ("digest", v.artifact_digest),
        ("framework", v.framework or "-"),
        ("registered", f"{v.created_at.isoformat(timespec='seconds')} by {v.created_by}"),
        (
            "scan",
            "-"
            if scan is None
            else f"scan:{scan.id} {scan.finding_count} finding(s), worst "
            f"{scan.max_severity or 'none'} ({scan.created_at:%Y-%m-%d})",
        ),
        (
            "signature",
            "-"
            if sig is None
            else f"signature:{sig.id} key {sig.key_id[:16]}… ({sig.created_at:%Y-%m-%d})",
        ),
        (
            "assessment",
            "-"
            if assessment is None
            else f"assessment:{assessment.id} grade {assessment.grade} "
            f"({assessment.created_at:%Y-%m-%d})",
        ),
    ]
    rows += [(e.kind, e.target) for e in lineage]
    rows += [(f"file {f.path}", f"{f.size} bytes sha256 {f.blob_id}") for f in v.files]
    _table(v.label, ("field", "value"), rows)


@registry_app.command("export")
def export(
    model: ModelArg,
    ref: RefArg,
    dest: Annotated[
        Path, typer.Argument(help="New (or empty) directory to write into.", show_default=False)
    ],
    home: Home = None,
) -> None:
    """Write a version's files (decrypted, authenticated) into a directory."""
    with user_errors(), _registry(home, None) as reg:
        written = reg.export_version(model, ref, dest)
    _say(f"exported {model} {ref} -> {written}")


# --- datasets and lineage ---------------------------------------------------------------------


@dataset_app.command("add")
def dataset_add(
    name: Annotated[str, typer.Argument(help="Dataset name.", show_default=False)],
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="Data file (.npz, CSV) or image folder: its content fingerprint, rows and "
            "columns are computed (as `warden assess` reports them).",
        ),
    ] = None,
    fingerprint: Annotated[
        str | None, typer.Option(help="The fingerprint, sha256:<64 hex>, if not given --file.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Where the data came from.")] = None,
    license: Annotated[str, typer.Option("--license", help="Licence (SPDX id or text).")] = "",
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    rows: Annotated[int | None, typer.Option("--rows", help="Number of rows.")] = None,
    column: Annotated[
        list[str] | None, typer.Option("--column", help="A column name; repeatable.")
    ] = None,
    label_column: Annotated[str, typer.Option(help="CSV label column (with --file).")] = "label",
    home: Home = None,
    actor: Actor = None,
    fmt: Fmt = Format.table,
) -> None:
    """Register a dataset by content fingerprint."""
    with user_errors():
        if (file is None) == (fingerprint is None):
            raise ConfigError("give exactly one of --file and --fingerprint")
        attributes: dict[str, Any] = {"columns": list(column)} if column else {}
        with _registry(home, actor, create=True) as reg:
            if file is not None:
                if rows is not None:
                    raise ConfigError("--rows is computed from --file; do not give both")
                d = reg.register_dataset_from(
                    name,
                    file,
                    label_column=label_column,
                    source=source,
                    license=license,
                    description=description,
                    attributes=attributes,
                )
            else:
                assert fingerprint is not None
                d = reg.register_dataset(
                    name,
                    fingerprint=fingerprint,
                    source=source or "",
                    license=license,
                    description=description,
                    n_rows=rows,
                    attributes=attributes,
                )
    if fmt is Format.json:
        _json(d.to_dict())
        return
    _say(f"dataset {d.ref} ({d.n_rows if d.n_rows is not None else '?'} rows)")


@dataset_app.command("list")
def dataset_list(home: Home = None, fmt: Fmt = Format.table) -> None:
    """List the registered datasets."""
    with user_errors(), _registry(home, None) as reg:
        found = reg.list_datasets()
    if fmt is Format.json:
        _json([d.to_dict() for d in found])
        return
    _table(
        "datasets",
        ("name", "fingerprint", "rows", "licence", "source"),
        [[d.name, d.fingerprint, d.n_rows, d.license, d.source] for d in found],
    )


@lineage_app.command("add")
def lineage_add(
    model: ModelArg,
    ref: RefArg,
    trained_on: Annotated[str | None, typer.Option(help="Dataset it was trained on.")] = None,
    evaluated_on: Annotated[str | None, typer.Option(help="Dataset it was evaluated on.")] = None,
    derived_from: Annotated[
        str | None,
        typer.Option(help="Parent version (vN of the same model, or MODEL:vN)."),
    ] = None,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Record where a version came from (name a dataset as NAME or NAME@sha256:PREFIX)."""
    with user_errors():
        given = [
            (k, v)
            for k, v in (
                ("trained-on", trained_on),
                ("evaluated-on", evaluated_on),
                ("derived-from", derived_from),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise ConfigError("give exactly one of --trained-on, --evaluated-on, --derived-from")
        kind, target = given[0]
        with _registry(home, actor) as reg:
            if kind == "derived-from":
                edge = reg.add_lineage(model, ref, kind, parent=target)
            else:
                edge = reg.add_lineage(model, ref, kind, dataset=target)
    _say(f"{edge.model} v{edge.version} {edge.kind} {edge.target}")


@lineage_app.command("show")
def lineage_show(
    model: ModelArg,
    ref: RefArg,
    recursive: Annotated[
        bool, typer.Option("--recursive", help="Include the ancestors' lineage.")
    ] = False,
    home: Home = None,
    fmt: Fmt = Format.table,
) -> None:
    """Show a version's lineage."""
    with user_errors(), _registry(home, None) as reg:
        edges = reg.lineage(model, ref, recursive=recursive)
    if fmt is Format.json:
        _json([e.to_dict() for e in edges])
        return
    _table(
        f"{model} {ref} lineage",
        ("version", "relation", "target", "recorded", "by"),
        [
            [f"{e.model} v{e.version}", e.kind, e.target, f"{e.created_at:%Y-%m-%d}", e.created_by]
            for e in edges
        ],
    )


# --- evidence ---------------------------------------------------------------------------------


@registry_app.command("scan")
def scan(
    model: ModelArg,
    ref: RefArg,
    fail_on: Annotated[str, fail_on_option("a finding")] = "low",
    home: Home = None,
    actor: Actor = None,
    fmt: Fmt = Format.table,
) -> None:
    """Scan a version's files with the supply-chain scanner and record the result."""
    with user_errors():
        threshold = parse_fail_on(fail_on)
        with _registry(home, actor) as reg:
            s = reg.scan_version(model, ref)
    if fmt is Format.json:
        _json(s.to_dict(report=True))
    else:
        _say(
            f"scan:{s.id} {model} v{s.version}: {s.finding_count} finding(s), worst "
            f"{s.max_severity or 'none'}"
        )
        for entry in s.report.get("files", []):
            for f in entry.get("findings", []):
                _say(f"  {f.get('severity')}: {entry.get('path')}: {f.get('title')}")
    from warden.assess.finding import Severity

    worst = None if s.max_severity is None else Severity.parse(s.max_severity)
    if threshold is not None and worst is not None and worst >= threshold:
        raise typer.Exit(EXIT_FINDINGS)


@registry_app.command("sign")
def sign(
    model: ModelArg,
    ref: RefArg,
    key: Annotated[Path, typer.Option("--key", "-k", help="Private key PEM.")],
    password_env: Annotated[
        str | None, typer.Option(help="Read the key's password from this environment variable.")
    ] = None,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Sign a version's files (model_signing format) and record the signature."""
    from warden.cli.sign import read_password

    with user_errors(), _registry(home, actor) as reg:
        s = reg.sign_version(model, ref, key, password=read_password(password_env))
    _say(f"signature:{s.id} {model} v{s.version} signed by key {s.key_id}")


@registry_app.command("attach-signature")
def attach_signature(
    model: ModelArg,
    ref: RefArg,
    bundle: Annotated[
        Path, typer.Argument(help="Signature bundle (model.sig).", show_default=False)
    ],
    public_key: Annotated[Path, typer.Option("--public-key", help="The signer's public key PEM.")],
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Verify a model_signing bundle against a version's files and record it."""
    with user_errors():
        try:
            raw = bundle.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the signature {bundle}: {exc.strerror or exc}") from exc
        with _registry(home, actor) as reg:
            s = reg.attach_signature(model, ref, raw, public_key)
    _say(f"signature:{s.id} {model} v{s.version}: {s.detail}")


@registry_app.command("attach-assessment")
def attach_assessment(
    model: ModelArg,
    ref: RefArg,
    report: Annotated[
        Path, typer.Argument(help="`warden assess` JSON report.", show_default=False)
    ],
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Record an assessment report (its scorecard) for a version."""
    with user_errors():
        try:
            doc = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{report}: not a readable JSON report: {exc}") from exc
        with _registry(home, actor) as reg:
            a = reg.attach_assessment(model, ref, doc)
    _say(f"assessment:{a.id} {model} v{a.version}: grade {a.grade}")


@registry_app.command("note")
def note(
    model: ModelArg,
    words: Annotated[
        list[str], typer.Argument(help="[REF] TEXT: a version (optional) and the note.")
    ],
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Attach a note to a model, or to one version (`note MODEL v3 "text"`)."""
    with user_errors():
        if len(words) not in (1, 2):
            raise ConfigError("expected TEXT or REF TEXT (quote the text)")
        ref, text = (None, words[0]) if len(words) == 1 else (words[0], words[1])
        with _registry(home, actor) as reg:
            n = reg.add_note(model, text, ref=ref)
    _say(f"note {n.id} on {model}" + (f" v{n.version}" if n.version is not None else ""))


@registry_app.command("notes")
def notes(
    model: ModelArg,
    ref: Annotated[str | None, typer.Argument(help="Only this version's notes.")] = None,
    home: Home = None,
    fmt: Fmt = Format.table,
) -> None:
    """List a model's notes."""
    with user_errors(), _registry(home, None) as reg:
        found = reg.notes(model, ref)
    if fmt is Format.json:
        _json([n.to_dict() for n in found])
        return
    _table(
        f"{model} notes",
        ("version", "by", "when", "note"),
        [
            [
                "-" if n.version is None else f"v{n.version}",
                n.author,
                f"{n.created_at:%Y-%m-%d}",
                n.text,
            ]
            for n in found
        ],
    )


# --- gates and lifecycle ----------------------------------------------------------------------


@registry_app.command("gates")
def gates(
    model: ModelArg,
    ref: RefArg,
    policy: PolicyOpt = None,
    home: Home = None,
    fmt: Fmt = Format.table,
) -> None:
    """Evaluate the approval gates for a version now, changing nothing (exit 1 if any fails)."""
    with user_errors(), _registry(home, None) as reg:
        report = reg.gates(model, ref, policy=_policy(policy))
    if fmt is Format.json:
        _json(report.to_dict())
    else:
        _table(
            f"{report.version.label} gates (policy {report.policy.source})",
            ("gate", "result", "detail", "evidence"),
            [
                [r.name, "pass" if r.passed else "FAIL", r.detail, ", ".join(r.evidence)]
                for r in report.results
            ],
        )
    if not report.passed:
        raise typer.Exit(EXIT_FINDINGS)


@registry_app.command("approve")
def approve(
    model: ModelArg,
    ref: RefArg,
    policy: PolicyOpt = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded).")] = "",
    override_gates: Annotated[
        str | None,
        typer.Option(
            "--override-gates",
            metavar="REASON",
            help="Approve even though policy gates fail, for this reason (recorded as an "
            "override with the failures; logged as a warning).",
        ),
    ] = None,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Approve a registered version if every policy gate passes (exit 1 if one refuses)."""
    with user_errors(), _registry(home, actor) as reg:
        try:
            t = reg.approve(
                model, ref, reason=reason, policy=_policy(policy), override_reason=override_gates
            )
        except GateRefused as exc:
            err.print(
                f"refused: {model} {ref} cannot be approved; {len(exc.failures)} gate(s) failed:",
                highlight=False,
                markup=False,
            )
            for line in exc.failures:
                err.print(f"  {line}", highlight=False, markup=False)
            raise typer.Exit(EXIT_FINDINGS) from None
    _say(_transition_line(t))


@registry_app.command("deploy")
def deploy(
    model: ModelArg,
    ref: RefArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded).")] = "",
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Deploy an approved version (it becomes the champion; the old one, previous)."""
    with user_errors(), _registry(home, actor) as reg:
        t = reg.deploy(model, ref, reason=reason)
    _say(_transition_line(t))


Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Allow it for the champion even with no approved previous version to roll back "
        "to (the model is left with nothing deployed).",
    ),
]


@registry_app.command("quarantine")
def quarantine(
    model: ModelArg,
    ref: RefArg,
    reason: Reason,
    force: Force = False,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Quarantine a version (the champion is rolled back to previous first)."""
    with user_errors(), _registry(home, actor) as reg:
        t = reg.quarantine(model, ref, reason=reason, force=force)
    _say(_transition_line(t))


@registry_app.command("release")
def release(
    model: ModelArg, ref: RefArg, reason: Reason, home: Home = None, actor: Actor = None
) -> None:
    """Release a quarantined version back to registered (it must be approved again)."""
    with user_errors(), _registry(home, actor) as reg:
        t = reg.release(model, ref, reason=reason)
    _say(_transition_line(t))


@registry_app.command("retire")
def retire(
    model: ModelArg,
    ref: RefArg,
    reason: Reason,
    force: Force = False,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Retire a version for good (the champion is rolled back to previous first)."""
    with user_errors(), _registry(home, actor) as reg:
        t = reg.retire(model, ref, reason=reason, force=force)
    _say(_transition_line(t))


@registry_app.command("rollback")
def rollback(
    model: ModelArg,
    reason: Reason,
    quarantine_current: Annotated[
        bool, typer.Option("--quarantine", help="Quarantine the current champion.")
    ] = False,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Make the previous version the champion again."""
    with user_errors(), _registry(home, actor) as reg:
        t = reg.rollback(model, reason=reason, quarantine=quarantine_current)
    _say(f"rolled back: {_transition_line(t)}")


@registry_app.command("alias")
def alias(
    model: ModelArg,
    name: Annotated[str, typer.Argument(help="Alias name.", show_default=False)],
    ref: Annotated[str | None, typer.Argument(help="Version it points at.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    home: Home = None,
    actor: Actor = None,
) -> None:
    """Point an alias at a version (or remove it with --delete)."""
    with user_errors():
        if delete == (ref is not None):
            raise ConfigError("give a version to point the alias at, or --delete (not both)")
        with _registry(home, actor) as reg:
            if delete:
                reg.delete_alias(model, name)
                _say(f"removed alias {name} of {model}")
                return
            assert ref is not None
            a = reg.set_alias(model, name, ref)
    _say(f"{a.model} {a.name} -> v{a.version}")


@registry_app.command("history")
def history(
    model: ModelArg,
    ref: Annotated[str | None, typer.Argument(help="Only this version.")] = None,
    home: Home = None,
    fmt: Fmt = Format.table,
) -> None:
    """Show lifecycle transitions: who, when, why, override."""
    with user_errors(), _registry(home, None) as reg:
        found = reg.history(model, ref)
    if fmt is Format.json:
        _json([t.to_dict() for t in found])
        return
    _table(
        f"{model} history",
        ("when", "version", "from", "to", "by", "override", "reason"),
        [
            [
                t.at.isoformat(timespec="seconds"),
                f"v{t.version}",
                t.from_state or "-",
                t.to_state,
                t.actor,
                "OVERRIDE" if t.override else "",
                t.reason,
            ]
            for t in found
        ],
    )
