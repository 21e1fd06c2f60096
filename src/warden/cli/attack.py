"""``warden attack``: run one registered evasion attack and optionally save the examples."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from warden.cli._common import err, load_subject, out, user_errors
from warden.errors import ConfigError, DataError
from warden.evasion.registry import attack_info, attack_names, create_attack
from warden.models.base import predict_labels


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse (numbers, lists, true), else text."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        try:
            settings[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key.strip()] = raw
    return settings


def parse_immutable(text: str | None) -> tuple[int, ...]:
    """``"0,3,5-7"`` to feature indices."""
    if not text:
        return ()
    out_idx: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ConfigError(f"--immutable expects indices like 0,3,5-7; got {part!r}")
        out_idx.extend(range(int(lo), int(hi) + 1) if dash else [int(lo)])
    return tuple(out_idx)


def attack(
    name: Annotated[
        str, typer.Argument(help="Attack name (see `warden attack --list`).", show_default=False)
    ] = "",
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model spec, TorchScript or ONNX file.")
    ] = "",
    data: Annotated[
        str, typer.Option("--data", "-d", help="Bundled dataset name or a data file/folder.")
    ] = "",
    eps: Annotated[
        list[float] | None,
        typer.Option(
            "--eps",
            help="Budget(s) in input units; repeat for a sweep. Optional for minimal-norm attacks.",
        ),
    ] = None,
    max_samples: Annotated[
        int, typer.Option(help="Attack at most this many samples (seeded draw).")
    ] = 500,
    seed: Annotated[int, typer.Option(help="Seed for the draw and the attack.")] = 0,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="Attack setting key=value (e.g. steps=100); repeatable."),
    ] = None,
    immutable: Annotated[
        str | None, typer.Option(help="Feature indices never to change, e.g. 0,3,5-7.")
    ] = None,
    save: Annotated[
        Path | None, typer.Option(help="Write clean and adversarial inputs to this .npz.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    label_column: Annotated[str, typer.Option(help="Label column of a CSV dataset.")] = "label",
    unsafe_allow_pickle: Annotated[
        bool,
        typer.Option(
            "--unsafe-allow-pickle", help="Load pickle-based model files (runs their code!)."
        ),
    ] = False,
    list_attacks: Annotated[
        bool, typer.Option("--list", help="List the registered attacks and exit.")
    ] = False,
) -> None:
    """Run one evasion attack on a model and report robust accuracy per budget."""
    with user_errors():
        if list_attacks:
            table = Table(title="Registered evasion attacks")
            for col in ("name", "access", "norm", "minimal", "what"):
                table.add_column(col)
            for n in attack_names():
                info = attack_info(n)
                table.add_row(n, info.kind, info.norm, "yes" if info.minimal else "", info.summary)
            out.print(table)
            return
        if not name or not model or not data:
            raise ConfigError("give an attack name, --model and --data (or --list)")
        info = attack_info(name)
        budgets: list[float | None] = list(sorted(eps)) if eps else []
        if not budgets:
            if not info.minimal:
                raise ConfigError(f"{name} needs --eps (it is not a minimal-norm attack)")
            budgets = [None]
        if any(b is not None and not b >= 0 for b in budgets):
            raise ConfigError("--eps values must be numbers >= 0")
        extra = parse_settings(settings or [])
        frozen = parse_immutable(immutable)
        loaded, full = load_subject(
            model, data, label_column=label_column, unsafe_allow_pickle=unsafe_allow_pickle
        )
        dataset = full.sample(max_samples, seed=seed)
        x, y = np.asarray(dataset.x), np.asarray(dataset.y)
        clean = float((predict_labels(loaded, x) == y).mean())
        rows, advs = [], []
        for budget in budgets:
            built = create_attack(name, eps=budget, seed=seed, immutable=frozen, **extra)
            err.print(f"{name} eps={budget} on {len(x)} samples…", highlight=False)
            t0 = time.perf_counter()
            result = built.attack(loaded, x, y)
            seconds = time.perf_counter() - t0
            flipped = result.norms[result.success]
            rows.append(
                {
                    "eps": result.eps if budget is not None else None,
                    "robust_accuracy": result.robust_accuracy,
                    "success_rate": result.success_rate,
                    "median_norm": float(np.median(flipped)) if len(flipped) else 0.0,
                    "queries": result.queries,
                    "seconds": round(seconds, 3),
                    "budget_exhausted": result.budget_exhausted,
                }
            )
            advs.append(result)
        if save is not None:
            _save(save, x, y, advs)
            err.print(f"  adversarial examples: {save}", highlight=False)
        summary = {"attack": name, "norm": info.norm, "n_samples": len(x), "clean_accuracy": clean}
        if as_json:
            out.print_json(json.dumps({**summary, "results": rows}))
            return
        table = Table(title=f"{name} ({info.norm}) on {len(x)} samples, clean accuracy {clean:.1%}")
        for col in ("eps", "robust acc", "success", "median norm", "queries", "seconds"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(
                "unbounded" if r["eps"] is None else f"{r['eps']:.4g}",
                f"{r['robust_accuracy']:.1%}",
                f"{r['success_rate']:.1%}",
                f"{r['median_norm']:.4g}",
                str(r["queries"]),
                f"{r['seconds']:.2f}",
            )
        out.print(table)


def _save(path: Path, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], results: list[Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            x=x,
            y=y,
            eps=np.array([r.eps for r in results], np.float64),
            x_adv=np.stack([r.x_adv for r in results]),
            success=np.stack([r.success for r in results]),
            norms=np.stack([r.norms for r in results]),
        )
    except OSError as exc:
        raise DataError(f"{path}: cannot write adversarial examples: {exc}") from exc
