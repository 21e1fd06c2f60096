"""A small document model rendered as Markdown or as a self-contained HTML page.

Model cards and compliance reports are built as a :class:`Document` of :class:`Section` s
(key/value rows, bullet lists, tables) and rendered here, so both formats say the same thing.

Every string that may come from a user (model names, intended use, dataset sources, notes) is
escaped: Jinja2's autoescaping in HTML, and ``&``, ``<``, ``>`` plus Markdown's structural
characters at line starts in Markdown, so a card viewed in a Markdown renderer cannot inject
markup or scripts. The HTML page loads nothing and runs no script (its Content-Security-Policy
says so).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

__all__ = ["Document", "Section", "join", "md_escape", "rows", "write_document"]


@dataclass(frozen=True)
class Section:
    """One titled part of a document."""

    title: str
    """Heading text."""
    rows: tuple[tuple[str, str], ...] = ()
    """Label/value pairs (a definition table)."""
    text: str = ""
    """A paragraph of free text (user-provided text goes here, escaped on output)."""
    bullets: tuple[str, ...] = ()
    """A bullet list."""
    table: tuple[tuple[str, ...], ...] = ()
    """A table: the first tuple is the header row."""
    status: str = ""
    """An optional status badge (``evidence``, ``partial``, ``gap`` …)."""
    subsections: tuple[Section, ...] = ()
    """Nested sections (rendered one heading level deeper)."""


@dataclass(frozen=True)
class Document:
    """A titled document made of sections."""

    title: str
    """The page title."""
    subtitle: str = ""
    """One line under the title."""
    sections: tuple[Section, ...] = field(default_factory=tuple)
    """The body."""

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown."""
        lines = [f"# {md_escape(self.title)}", ""]
        if self.subtitle:
            lines += [md_escape(self.subtitle), ""]
        for section in self.sections:
            lines += _md_section(section, 2)
        return "\n".join(lines).rstrip() + "\n"

    def to_html(self) -> str:
        """One self-contained HTML page (inline CSS, no scripts, nothing loaded)."""
        return _html_template().render(doc=self)


_MD_LINE_START = re.compile(r"^(\s*)([#>*+\-=|`~]|\d+[.)])", re.MULTILINE)


def md_escape(text: str) -> str:
    """``text`` safe inside Markdown: HTML metacharacters as entities, pipes and line-start
    markup escaped, so user text can neither inject HTML nor break a table or heading."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("|", "\\|").replace("`", "\\`")
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def _cell(text: str) -> str:
    return md_escape(" ".join(text.split())) or " "


def _md_section(section: Section, level: int) -> list[str]:
    heading = "#" * min(level, 6)
    title = md_escape(section.title)
    if section.status:
        title += f" — **{md_escape(section.status)}**"
    lines = [f"{heading} {title}", ""]
    if section.rows:
        lines += ["| | |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in section.rows]
        lines.append("")
    if section.text:
        lines += [md_escape(section.text), ""]
    if section.bullets:
        lines += [f"- {_cell(b)}" for b in section.bullets]
        lines.append("")
    if section.table:
        header, *body = section.table
        lines.append("| " + " | ".join(_cell(h) for h in header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in body]
        lines.append("")
    for sub in section.subsections:
        lines += _md_section(sub, level + 1)
    return lines


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ doc.title }}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em}.sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}
.badge{font-size:.8em;padding:.1em .5em;border-radius:.6em;margin-left:.5em;background:#ddd}
.badge.evidence,.badge.met,.badge.passed{background:#cfe9cf}.badge.partial{background:#f6e7b0}
.badge.gap,.badge.failed{background:#f4c7c3}p.text{white-space:pre-wrap}
</style></head><body>
<h1>{{ doc.title }}</h1>{% if doc.subtitle %}<p class="sub">{{ doc.subtitle }}</p>{% endif %}
{% macro section(s, level) -%}
<section><h{{ level }}>{{ s.title }}{% if s.status %} <span class="badge {{ s.status }}">
{{- s.status }}</span>{% endif %}</h{{ level }}>
{% if s.rows %}<table>{% for k, v in s.rows %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>
{% endfor %}</table>{% endif %}
{% if s.text %}<p class="text">{{ s.text }}</p>{% endif %}
{% if s.bullets %}<ul>{% for b in s.bullets %}<li>{{ b }}</li>{% endfor %}</ul>{% endif %}
{% if s.table %}<table><tr>{% for h in s.table[0] %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in s.table[1:] %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}
{% for sub in s.subsections %}{{ section(sub, level + 1 if level < 6 else 6) }}{% endfor %}
</section>
{%- endmacro %}
{% for s in doc.sections %}{{ section(s, 2) }}{% endfor %}
</body></html>
"""


def _html_template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_HTML)


def write_document(doc: Document, path: str | os.PathLike[str], *, fmt: str | None = None) -> Path:
    """Write ``doc`` as Markdown (``.md``) or HTML (``.html``/``.htm``), atomically."""
    from warden.errors import ConfigError
    from warden.report._io import write_text

    target = Path(path)
    kind = fmt or {".md": "markdown", ".html": "html", ".htm": "html"}.get(
        target.suffix.lower(), ""
    )
    if kind == "markdown":
        return write_text(target, doc.to_markdown())
    if kind == "html":
        return write_text(target, doc.to_html())
    raise ConfigError(f"{target}: expected a .md or .html file name (or give the format)")


def rows(*pairs: tuple[str, str | None]) -> tuple[tuple[str, str], ...]:
    """Label/value pairs without the empty ones."""
    return tuple((k, v) for k, v in pairs if v)


def join(items: Sequence[str], empty: str = "none") -> str:
    """``a, b, c`` or ``empty``."""
    return ", ".join(items) if items else empty
