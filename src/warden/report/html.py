"""Self-contained HTML report: one file, inline CSS, plots as inline SVG, no scripts.

The page loads nothing from anywhere (a Content-Security-Policy in the page says so too), so
it can be mailed, attached to a ticket or archived and still render the same. Plots are drawn
with matplotlib's object API (``matplotlib.figure.Figure``, no pyplot, no global backend
switch) and written as SVG with text kept as text. Every user-supplied string (model, dataset,
class and series names) is escaped by Jinja2's autoescaping or by matplotlib's SVG writer.

Malformed plot evidence does not abort the report: the plot is left out and a visible note
says which finding's evidence was wrong and why.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from warden.assess.finding import ATLAS, OWASP_ML_TOP10, Finding, Severity
from warden.assess.result import Assessment
from warden.errors import ReportError
from warden.report._io import write_text
from warden.report.json import SCHEMA_VERSION

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Curve", "Examples", "PerClass", "render_html", "write_html"]

logger = logging.getLogger(__name__)

_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B", "#000000")
"""Okabe-Ito colours (colour-blind safe), then two fallbacks."""
_CLEAN, _ADV = "#0072B2", "#D55E00"
_MAX_EXAMPLES = 8
_MAX_METRICS = 6

_RC: dict[Any, Any] = {  # keys are matplotlib rcParams names
    "svg.fonttype": "none",  # keep text as <text>, searchable and crisp
    "text.parse_math": False,  # a "$" in a user-supplied name is not TeX
    "font.family": "sans-serif",
    "font.size": 9.5,
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": "#1f2933",
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": "#52606d",
    "ytick.color": "#52606d",
    "legend.frameon": False,
}


# --------------------------------------------------------------------------- evidence shapes


def _numbers(value: Any, what: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ReportError(f"{what} must be a non-empty list of numbers")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ReportError(f"{what} must hold finite numbers, found {v!r}")
        out.append(float(v))
    return tuple(out)


def _labels(value: Any, n: int, what: str) -> tuple[str, ...]:
    if value is None:
        return ("?",) * n
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ReportError(f"{what} must be a list of {n} labels")
    return tuple(str(v) for v in value)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value else default


@dataclass(frozen=True)
class Curve:
    """A finding's ``evidence["curve"]``: y (robust accuracy) against x (epsilon)."""

    series: str
    """Legend label."""
    x: tuple[float, ...]
    """Attack budgets."""
    y: tuple[float, ...]
    """Measured value at each budget."""
    x_label: str
    """Axis label for x."""
    y_label: str
    """Axis label for y."""
    clean_accuracy: float | None
    """Accuracy without attack, drawn as a reference line when given."""

    @classmethod
    def from_evidence(cls, data: Any, default_series: str) -> Curve:
        """Validate ``evidence["curve"]``; :class:`ReportError` says what is wrong."""
        if not isinstance(data, Mapping):
            raise ReportError("evidence.curve must be an object with x and y lists")
        x, y = _numbers(data.get("x"), "curve.x"), _numbers(data.get("y"), "curve.y")
        if len(x) != len(y):
            raise ReportError(f"curve.x has {len(x)} points but curve.y has {len(y)}")
        return cls(
            series=_text(data.get("series"), default_series),
            x=x,
            y=y,
            x_label=_text(data.get("x_label"), "epsilon"),
            y_label=_text(data.get("y_label"), "robust accuracy"),
            clean_accuracy=_number(data.get("clean_accuracy")),
        )


@dataclass(frozen=True)
class PerClass:
    """A finding's ``evidence["per_class"]``: clean and adversarial accuracy per class."""

    classes: tuple[str, ...]
    """Class names, in index order."""
    clean: tuple[float, ...]
    """Clean accuracy per class."""
    adversarial: tuple[float, ...]
    """Accuracy under attack per class."""
    epsilon: float | None
    """The attack budget the adversarial accuracies were measured at."""

    @classmethod
    def from_evidence(cls, data: Any) -> PerClass:
        """Validate ``evidence["per_class"]``; :class:`ReportError` says what is wrong."""
        if not isinstance(data, Mapping):
            raise ReportError("evidence.per_class must be an object")
        classes = data.get("classes")
        if not isinstance(classes, (list, tuple)) or not classes:
            raise ReportError("per_class.classes must be a non-empty list of names")
        clean = _numbers(data.get("clean"), "per_class.clean")
        adv = _numbers(data.get("adversarial"), "per_class.adversarial")
        if not len(classes) == len(clean) == len(adv):
            raise ReportError(
                f"per_class has {len(classes)} classes, {len(clean)} clean and "
                f"{len(adv)} adversarial accuracies; they must match"
            )
        return cls(tuple(str(c) for c in classes), clean, adv, _number(data.get("epsilon")))


@dataclass(frozen=True)
class Histogram:
    """A finding's ``evidence["histogram"]``: per-sample values (minimal perturbations)."""

    values: tuple[float, ...]
    """One value per sample (may be empty: nothing was flipped)."""
    x_label: str
    """What the values measure."""
    series: str
    """Legend label."""
    marker: float | None
    """A reference value drawn as a vertical line (the grading budget), when given."""

    @classmethod
    def from_evidence(cls, data: Any, default_series: str) -> Histogram:
        """Validate ``evidence["histogram"]``; :class:`ReportError` says what is wrong."""
        if not isinstance(data, Mapping):
            raise ReportError("evidence.histogram must be an object with a values list")
        values = data.get("values")
        if not isinstance(values, (list, tuple)):
            raise ReportError("histogram.values must be a list of numbers")
        return cls(
            values=_numbers(values, "histogram.values") if values else (),
            x_label=_text(data.get("x_label"), "value"),
            series=_text(data.get("series"), default_series),
            marker=_number(data.get("grade_epsilon")),
        )


@dataclass(frozen=True)
class Examples:
    """A finding's ``evidence["examples"]``: clean inputs and their adversarial versions."""

    shape: tuple[int, int, int]
    """Shape of one input, ``(channels, height, width)``."""
    clean: tuple[tuple[float, ...], ...]
    """Flattened clean inputs."""
    adversarial: tuple[tuple[float, ...], ...]
    """Flattened adversarial inputs, same order."""
    true: tuple[str, ...]
    """True label of each example."""
    clean_pred: tuple[str, ...]
    """Model's answer on the clean input."""
    adv_pred: tuple[str, ...]
    """Model's answer on the adversarial input."""
    epsilon: float | None
    """Attack budget."""

    @classmethod
    def from_evidence(cls, data: Any) -> Examples:
        """Validate ``evidence["examples"]``; :class:`ReportError` says what is wrong."""
        if not isinstance(data, Mapping):
            raise ReportError("evidence.examples must be an object")
        shape = data.get("shape")
        if (
            not isinstance(shape, (list, tuple))
            or len(shape) != 3
            or not all(isinstance(s, int) and s > 0 for s in shape)
        ):
            raise ReportError(f"examples.shape must be [channels, height, width], found {shape!r}")
        c, h, w = (int(s) for s in shape)
        clean_rows, adv_rows = data.get("clean"), data.get("adversarial")
        if not isinstance(clean_rows, (list, tuple)) or not isinstance(adv_rows, (list, tuple)):
            raise ReportError("examples.clean and examples.adversarial must be lists of inputs")
        if not clean_rows or len(clean_rows) != len(adv_rows):
            raise ReportError(
                f"examples has {len(clean_rows)} clean and {len(adv_rows)} adversarial inputs; "
                "they must match and not be empty"
            )
        n = min(len(clean_rows), _MAX_EXAMPLES)
        clean = tuple(_numbers(r, f"examples.clean[{i}]") for i, r in enumerate(clean_rows[:n]))
        adv = tuple(_numbers(r, f"examples.adversarial[{i}]") for i, r in enumerate(adv_rows[:n]))
        for i, row in enumerate(clean + adv):
            if len(row) != c * h * w:
                raise ReportError(
                    f"example {i % n} has {len(row)} values; shape {[c, h, w]} needs {c * h * w}"
                )

        def labels(key: str) -> tuple[str, ...]:
            value = data.get(key)
            if isinstance(value, (list, tuple)):
                value = value[:n]
            return _labels(value, n, f"examples.{key}")

        return cls(
            (c, h, w),
            clean,
            adv,
            labels("true"),
            labels("clean_pred"),
            labels("adv_pred"),
            _number(data.get("epsilon")),
        )


# --------------------------------------------------------------------------------- plotting


@contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    """A fresh matplotlib figure under Warden's plot style; no pyplot, no global state."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        yield Figure(figsize=(width, height), dpi=100, layout="constrained")


def _to_svg(fig: Figure, salt: str, label: str) -> Markup:
    """``fig`` as an inline ``<svg>`` element: no XML prolog, no DOCTYPE (its URL), no metadata."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"warden-{salt}"}):
        fig.savefig(
            buf,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    root_end = svg.index(">")
    root = f'{svg[:root_end]} class="plot" role="img" aria-label="{Markup.escape(label)}"'
    return Markup(root + svg[root_end:])


def _percent_axis(ax: Axes, values: Sequence[float]) -> None:
    if values and min(values) >= 0.0 and max(values) <= 1.0:
        from matplotlib.ticker import PercentFormatter

        ax.set_ylim(-0.02, 1.04)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def _curves_svg(
    curves: Sequence[Curve],
    salt: str,
    title: str,
    size: tuple[float, float] = (8.4, 3.6),
    first_colour: int = 0,
) -> Markup:
    with _figure(*size) as fig:
        ax = fig.add_subplot()
        all_y: list[float] = []
        cleans = {c.clean_accuracy for c in curves if c.clean_accuracy is not None}
        for i, c in enumerate(curves):
            colour = _PALETTE[(first_colour + i) % len(_PALETTE)]
            ax.plot(c.x, c.y, marker="o", markersize=4, linewidth=1.8, color=colour, label=c.series)
            all_y.extend(c.y)
            if c.clean_accuracy is not None and len(cleans) > 1:
                ax.axhline(c.clean_accuracy, color=colour, linewidth=0.9, linestyle=":")
        if len(cleans) == 1:
            (clean,) = cleans
            ax.axhline(
                clean, color="#7b8794", linewidth=1.0, linestyle="--", label="clean accuracy"
            )
            all_y.append(clean)
        ax.set_xlabel(curves[0].x_label)
        ax.set_ylabel(curves[0].y_label)
        ax.grid(True, color="#e4e7eb", linewidth=0.8)
        ax.set_axisbelow(True)
        _percent_axis(ax, all_y)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=3, fontsize=8.5)
        return _to_svg(fig, salt, title)


def _per_class_svg(pc: PerClass, salt: str, title: str) -> Markup:
    import numpy as np

    n = len(pc.classes)
    with _figure(max(6.0, min(12.0, 0.5 * n + 3.0)), 3.4) as fig:
        ax = fig.add_subplot()
        pos = np.arange(n)
        width = 0.4
        ax.bar(pos - width / 2, pc.clean, width, color=_CLEAN, label="clean")
        adv_label = "adversarial" if pc.epsilon is None else f"adversarial (ε = {pc.epsilon:.3g})"
        ax.bar(pos + width / 2, pc.adversarial, width, color=_ADV, label=adv_label)
        ax.set_xticks(
            pos, pc.classes, rotation=45 if n > 12 else 0, ha="right" if n > 12 else "center"
        )
        ax.set_xlabel("class")
        ax.set_ylabel("accuracy")
        ax.grid(True, axis="y", color="#e4e7eb", linewidth=0.8)
        ax.set_axisbelow(True)
        _percent_axis(ax, pc.clean + pc.adversarial)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, fontsize=8.5)
        return _to_svg(fig, salt, title)


def _histogram_svg(h: Histogram, salt: str, title: str) -> Markup:
    with _figure(8.4, 3.2) as fig:
        ax = fig.add_subplot()
        if h.values:
            bins = min(40, max(5, int(len(h.values) ** 0.5) * 2))
            ax.hist(h.values, bins=bins, color=_ADV, alpha=0.85, label=h.series)
        if h.marker is not None:
            ax.axvline(h.marker, color="#7b8794", linestyle="--", linewidth=1.0, label="grading ε")
        ax.set_xlabel(h.x_label)
        ax.set_ylabel("samples")
        ax.grid(True, axis="y", color="#e4e7eb", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, fontsize=8.5)
        return _to_svg(fig, salt, title)


def _examples_svg(ex: Examples, salt: str, title: str) -> Markup:
    import numpy as np

    c, h, w = ex.shape
    clean = np.asarray(ex.clean, dtype=float).reshape(-1, c, h, w)
    adv = np.asarray(ex.adversarial, dtype=float).reshape(-1, c, h, w)
    lo, hi = float(min(clean.min(), adv.min())), float(max(clean.max(), adv.max()))
    span = hi - lo or 1.0
    n = clean.shape[0]

    def image(x: Any) -> Any:
        x = (x - lo) / span
        return np.transpose(x, (1, 2, 0)) if c == 3 else x.mean(axis=0)

    with _figure(max(3.0, 1.15 * n + 0.9), 3.0) as fig:
        axes = fig.subplots(2, n, squeeze=False)
        for j in range(n):
            for row, (batch, pred) in enumerate(((clean, ex.clean_pred), (adv, ex.adv_pred))):
                ax = axes[row][j]
                ax.imshow(image(batch[j]), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                wrong = pred[j] != ex.true[j]
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_color(_ADV if wrong else "#cbd2d9")
                    spine.set_linewidth(2.0 if wrong else 0.8)
                caption = f"true {ex.true[j]}\npred {pred[j]}" if row == 0 else f"pred {pred[j]}"
                ax.set_title(
                    caption, fontsize=8, color=_ADV if wrong else "#1f2933", fontweight="normal"
                )
        axes[0][0].set_ylabel("clean", fontsize=9)
        eps = "" if ex.epsilon is None else f" (ε = {ex.epsilon:.3g})"
        axes[1][0].set_ylabel(f"adversarial{eps}", fontsize=9)
        return _to_svg(fig, salt, title)


# ---------------------------------------------------------------------------- page context


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0.0:
            return "0"
        return f"{value:.3g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.4g}"
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= 160 else text[:159] + "…"


def _key_metrics(f: Finding) -> list[tuple[str, str]]:
    out = []
    for key, value in f.metrics.items():
        scalar = isinstance(value, (int, float)) or (isinstance(value, str) and len(value) <= 40)
        if scalar:
            out.append((key.replace("_", " "), _fmt(value)))
        if len(out) == _MAX_METRICS:
            break
    return out


def _description(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, value in d.items():
        lowered = key.lower()
        mono = any(s in lowered for s in ("fingerprint", "sha", "hash", "digest", "source", "path"))
        rows.append({"key": key.replace("_", " "), "value": _fmt(value), "mono": mono})
    return rows


def _name(d: Mapping[str, Any], *keys: str, default: str) -> str:
    for key in keys:
        value = d.get(key)
        if isinstance(value, str) and value:
            return value
    return default


def _context(a: Assessment) -> dict[str, Any]:
    notes: list[str] = []

    def parse(f: Finding, key: str, build: Any) -> Any:
        if key not in f.evidence:
            return None
        try:
            return build(f.evidence[key])
        except ReportError as exc:
            note = f"Finding {f.id}: evidence.{key} was not plotted: {exc}."
            logger.warning("%s", note)
            notes.append(note)
            return None

    curves: list[tuple[Finding, Curve]] = []
    per_class: list[tuple[Finding, PerClass]] = []
    examples: list[tuple[Finding, Examples]] = []
    histograms: list[tuple[Finding, Histogram]] = []
    for f in a.findings:
        hist = parse(f, "histogram", lambda d, f=f: Histogram.from_evidence(d, f.id))
        if hist is not None:
            histograms.append((f, hist))
        curve = parse(f, "curve", lambda d, f=f: Curve.from_evidence(d, f.id))
        if curve is not None:
            curves.append((f, curve))
        pc = parse(f, "per_class", PerClass.from_evidence)
        if pc is not None:
            per_class.append((f, pc))
        ex = parse(f, "examples", Examples.from_evidence)
        if ex is not None:
            examples.append((f, ex))

    # One combined plot per budget axis: L-inf and L2 budgets do not share a scale.
    axes: dict[str, list[Curve]] = {}
    for _, c in curves:
        axes.setdefault(c.x_label, []).append(c)
    groups = list(axes.values())
    robustness = None
    more_robustness = []
    if groups:
        robustness = _curves_svg(groups[0], "robustness", "Robust accuracy against attack budget")
        more_robustness = [
            _curves_svg(g, f"robustness-{i}", f"Robust accuracy against {g[0].x_label}")
            for i, g in enumerate(groups[1:], start=1)
        ]
    per_finding_curves = []
    if len(curves) > 1:
        per_finding_curves = [
            {
                "finding": f,
                "svg": _curves_svg([c], f"curve-{i}", f"{f.id}: {c.series}", (5.2, 2.9), i),
            }
            for i, (f, c) in enumerate(curves)
            if len(c.x) > 1  # a single budget is a number, already in the findings table
        ]
    per_class_plots = [
        {"finding": f, "svg": _per_class_svg(pc, f"per-class-{i}", f"Per-class accuracy: {f.id}")}
        for i, (f, pc) in enumerate(per_class)
    ]
    histogram_plots = [
        {"finding": f, "svg": _histogram_svg(h, f"hist-{i}", f"Minimal perturbations: {f.id}")}
        for i, (f, h) in enumerate(histograms)
    ]
    example_plots = [
        {"finding": f, "svg": _examples_svg(ex, f"examples-{i}", f"Examples: {f.id}")}
        for i, (f, ex) in enumerate(examples)
    ]

    order = sorted(range(len(a.findings)), key=lambda i: (-a.findings[i].severity, i))
    findings = [
        {
            "f": a.findings[i],
            "severity": str(a.findings[i].severity),
            "metrics": _key_metrics(a.findings[i]),
            "owasp": [(t, OWASP_ML_TOP10.get(t, "")) for t in a.findings[i].owasp],
            "atlas": [(t, ATLAS.get(t, "")) for t in a.findings[i].atlas],
        }
        for i in order
    ]
    sc = a.scorecard
    return {
        "a": a,
        "title": f"Warden report: {_name(a.model, 'name', 'source', 'kind', default='model')}",
        "model_name": _name(a.model, "name", "source", "kind", default="model"),
        "dataset_name": _name(a.dataset, "name", default="dataset"),
        "overall": sc.overall,
        "grade_class": "NA" if sc.overall == "N/A" else sc.overall,
        "threats": sc.threats,
        "counts": [(s, sc.counts.get(s, 0)) for s in (str(v) for v in reversed(Severity))],
        "model_rows": _description(a.model),
        "dataset_rows": _description(a.dataset),
        "robustness": robustness,
        "more_robustness": more_robustness,
        "per_finding_curves": per_finding_curves,
        "per_class_plots": per_class_plots,
        "example_plots": example_plots,
        "histogram_plots": histogram_plots,
        "findings": findings,
        "notes": notes,
        "duration": _fmt(float(a.duration_s)),
        "schema_version": SCHEMA_VERSION,
    }


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("warden.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(a: Assessment) -> str:
    """The HTML report for ``a`` as one self-contained document (no external resources)."""
    try:
        template = _environment().get_template("report.html.j2")
        return template.render(**_context(a))
    except jinja2.TemplateError as exc:
        raise ReportError(f"cannot render the HTML report: {exc}") from exc


def write_html(a: Assessment, path: str | os.PathLike[str]) -> Path:
    """Write the HTML report of ``a`` to ``path``; return the path."""
    return write_text(path, render_html(a))
