"""GGUF scanner: layout checks against llama.cpp's rules and the chat-template SSTI audit."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import pytest
from tests.supplychain.corpus import models
from tests.supplychain.corpus.models import (
    CHATML,
    GGUF_ARRAY,
    GGUF_F32,
    GGUF_STRING,
    GGUF_U32,
    gguf_file,
    gguf_model,
)

from warden.assess.finding import Severity
from warden.supplychain.formats.gguf import parse_gguf, template_issues
from warden.supplychain.scanner import scan_bytes

BENIGN_TEMPLATES = {
    "chatml": CHATML,
    "llama3": (
        "{% set loop_messages = messages %}{% for message in loop_messages %}"
        "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
        " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
        "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
        "{% endif %}"
    ),
    "mistral": (
        "{{ bos_token }}{% for message in messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
        "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
        "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
        "{% endif %}{% endfor %}"
    ),
    "tools": (
        "{%- set ns = namespace(found=false, last='') -%}"
        "{%- if tools %}{{- 'Today: ' + strftime_now('%d %b %Y') }}"
        "{%- for t in tools %}{{ t | tojson(indent=4) }}{% endfor %}{% endif %}"
        "{%- for m in messages %}"
        "{%- if m.content is string %}{{ m.content.strip() }}"
        "{%- else %}{% for c in m.content %}{% if c.type == 'text' %}{{ c.text }}{% endif %}"
        "{% endfor %}{% endif %}"
        "{%- if m.tool_calls %}{% for tc in m.tool_calls %}"
        "{{ tc.function.name.replace('-', '_') }}{{ tc.function.arguments | tojson }}"
        "{% endfor %}{% endif %}"
        "{%- set ns.found = true %}{% if loop.last %}{% break %}{% endif %}"
        "{% generation %}{{ m.content.split('</think>')[-1].lstrip('\\n') }}{% endgeneration %}"
        "{%- endfor %}"
        "{% macro render(x) %}{{ x | upper }}{% endmacro %}{{ render('a') }}"
        "{{ loop.cycle('odd', 'even') if loop is defined else '' }}"
        "{{ messages | selectattr('role', 'equalto', 'system') | map(attribute='content')"
        " | join('\\n') }}"
    ),
}

SSTI_TEMPLATES = {
    "subclasses": models.ssti_template("/tmp/x"),
    "lipsum-globals": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "cycler-init": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "self-init": "{{ self._TemplateReference__context.cycler.__init__.__globals__ }}",
    "item-dunder": "{{ ''['__class__']['__mro__'][1] }}",
    "attr-filter": "{{ ''|attr('__class__') }}",
    "concat": "{{ ''|attr('__cla' ~ 'ss__') }}",
    "add": "{% set a = '__' + 'class' + '__' %}{{ ''|attr(a) }}",
    "mul": "{% set a = '_' * 2 + 'class' + '_' * 2 %}{{ ''|attr(a) }}",
    "format-pieces": "{{ ''|attr('%sclass%s'|format('__', '__')) }}",
    "join": "{{ ''|attr(['__', 'class', '__']|join) }}",
    "mro-method": "{{ x.mro()[1] }}",
    "frame": "{{ gen.gi_frame.f_back.f_globals }}",
    "format-string": "{{ '{0.__class__}'.format(x) }}",
}

UNUSUAL_TEMPLATES = {
    "include": "{% include 'other.j2' %}",
    "import": "{% import 'macros.j2' as m %}",
    "from-import": "{% from 'macros.j2' import x %}",
    "extends": "{% extends 'base.j2' %}",
    "unknown-call": "{{ open('/etc/passwd') }}",
    "unknown-method": "{{ x.read() }}",
    "attr-filter": "{{ x|attr('items') }}",
    "computed-attr": "{{ x|attr(name) }}",
    "computed-call": "{{ x[0]() }}",
    "format-method": "{{ '{}'.format(x) }}",
    "jinja-global": "{{ joiner('|') }}",
}


@pytest.mark.parametrize("name", sorted(BENIGN_TEMPLATES))
def test_benign_templates_are_clean(name: str) -> None:
    assert template_issues(BENIGN_TEMPLATES[name]) == []


@pytest.mark.parametrize("name", sorted(SSTI_TEMPLATES))
def test_ssti_templates_are_critical(name: str) -> None:
    rules = {i.rule for i in template_issues(SSTI_TEMPLATES[name])}
    assert "gguf.template-ssti" in rules


@pytest.mark.parametrize("name", sorted(UNUSUAL_TEMPLATES))
def test_unusual_templates_are_medium_only(name: str) -> None:
    rules = {i.rule for i in template_issues(UNUSUAL_TEMPLATES[name])}
    assert rules == {"gguf.template-unusual"}


def test_unparseable_template_is_low() -> None:
    data = gguf_model("{% for %}")
    findings = scan_bytes(data).findings
    assert [(f.id, f.severity) for f in findings] == [("scan.gguf.template-syntax", Severity.LOW)]


def test_benign_gguf_has_no_findings() -> None:
    result = scan_bytes(gguf_model(CHATML))
    assert ("<bytes>", "gguf") in result.formats
    assert result.findings == ()


def test_ssti_gguf_is_critical_and_names_the_key(tmp_path: Path) -> None:
    data = models.malicious(str(tmp_path / "marker"))["gguf-ssti.gguf"]
    findings = {f.id: f for f in scan_bytes(data).findings}
    ssti = findings["scan.gguf.template-ssti"]
    assert ssti.severity is Severity.CRITICAL
    assert ssti.evidence["key"] == "tokenizer.chat_template"
    assert any("__subclasses__" in e["detail"] for e in ssti.evidence["examples"])


def test_named_templates_are_checked() -> None:
    kvs = [
        ("tokenizer.chat_template", GGUF_STRING, CHATML),
        ("tokenizer.chat_template.tool_use", GGUF_STRING, "{{ x.__class__ }}"),
    ]
    findings = scan_bytes(gguf_file(kvs, [])).findings
    assert [f.evidence["key"] for f in findings] == ["tokenizer.chat_template.tool_use"]


def test_parse_reads_header_and_templates() -> None:
    info = parse_gguf(io.BytesIO(gguf_model(CHATML)))
    assert info.version == 3
    assert info.n_tensors == 3
    assert info.templates == {"tokenizer.chat_template": CHATML}
    assert info.issues == {}


def _tensor(name: str, dims: list[int], ttype: int, data: bytes) -> tuple[Any, ...]:
    return (name, dims, ttype, data)


F32_4 = _tensor("t", [4], 0, bytes(16))


@pytest.mark.parametrize(
    ("kvs", "tensors", "rule"),
    [
        ([("a", GGUF_U32, 1), ("a", GGUF_U32, 2)], [F32_4], "duplicate-key"),
        ([], [F32_4, F32_4], "duplicate-tensor"),
        ([("general.alignment", GGUF_U32, 3)], [F32_4], "alignment"),
        ([("general.alignment", GGUF_STRING, "32")], [F32_4], "alignment"),
        ([], [_tensor("t", [1, 1, 1, 1, 4], 0, bytes(16))], "tensor-info"),
        ([], [_tensor("x" * 64, [4], 0, bytes(16))], "tensor-info"),
        ([], [_tensor("q", [33], 8, bytes(34))], "tensor-info"),
        ([], [_tensor("t", [4], 99, bytes(16))], "tensor-type"),
        ([], [_tensor("t", [4], 4, bytes(16))], "tensor-type"),
        ([("k", GGUF_STRING, b"\xff\xfe")], [F32_4], "invalid-utf8"),
        ([("k", GGUF_ARRAY, (GGUF_STRING, [b"ok", b"\xc3"]))], [F32_4], "invalid-utf8"),
    ],
)
def test_layout_rule_fires(kvs: list[Any], tensors: list[Any], rule: str) -> None:
    findings = scan_bytes(gguf_file(kvs, tensors)).findings
    assert f"scan.gguf.{rule}" in {f.id for f in findings}


def _patch_offset(data: bytes, tensor_name: bytes, offset: int) -> bytes:
    """Rewrite the data offset of a tensor info (the u64 right after its type id)."""
    at = data.index(struct.pack("<Q", len(tensor_name)) + tensor_name)
    n_dims = struct.unpack_from("<I", data, at + 8 + len(tensor_name))[0]
    pos = at + 8 + len(tensor_name) + 4 + 8 * n_dims + 4
    return data[:pos] + struct.pack("<Q", offset) + data[pos + 8 :]


def test_misaligned_and_out_of_place_offsets() -> None:
    data = gguf_file([], [_tensor("a", [4], 0, bytes(16)), _tensor("b", [4], 0, bytes(16))])
    assert "scan.gguf.tensor-offset" in {
        f.id for f in scan_bytes(_patch_offset(data, b"b", 4)).findings
    }
    overlapping = _patch_offset(data, b"b", 0)
    assert "scan.gguf.tensor-offset" in {f.id for f in scan_bytes(overlapping).findings}


def test_tensor_past_the_end_and_trailing_bytes() -> None:
    data = gguf_file([], [F32_4])
    past = scan_bytes(_patch_offset(data, b"t", 1 << 20)).findings
    assert {"scan.gguf.tensor-offset", "scan.gguf.malformed"} <= {f.id for f in past}
    trailing = scan_bytes(data + bytes(100)).findings
    assert [(f.id, f.severity) for f in trailing] == [("scan.gguf.trailing-bytes", Severity.LOW)]


@pytest.mark.parametrize(
    "data",
    [
        b"GGUF" + struct.pack("<I", 4) + bytes(16),  # unknown version
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1 << 40),  # absurd metadata count
        b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 0),  # absurd tensor count
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 20) + b"k",  # long key
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", 1)
        + b"k"
        + struct.pack("<I", 42)
        + bytes(8),  # unknown value type
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", 1)
        + b"k"
        + struct.pack("<IIQ", GGUF_ARRAY, GGUF_F32, 1 << 40),  # array longer than the file
        b"GGUF\x03\x00",  # truncated header
    ],
)
def test_malformed_files_are_medium(data: bytes) -> None:
    findings = scan_bytes(data).findings
    assert [(f.id, f.severity) for f in findings] == [("scan.gguf.malformed", Severity.MEDIUM)]


def test_nested_arrays_parse_in_order() -> None:
    nested = (GGUF_ARRAY, [(GGUF_U32, [1, 2]), (GGUF_STRING, ["a", "bc"])])
    data = gguf_file(
        [("n", GGUF_ARRAY, nested), ("tokenizer.chat_template", GGUF_STRING, CHATML)], [F32_4]
    )
    info = parse_gguf(io.BytesIO(data))
    assert info.issues == {}
    assert info.templates == {"tokenizer.chat_template": CHATML}


def test_version_2_parses() -> None:
    data = bytearray(gguf_model(CHATML))
    data[4:8] = struct.pack("<I", 2)
    assert scan_bytes(bytes(data)).findings == ()


def test_every_truncation_is_a_finding_not_a_crash() -> None:
    data = gguf_model(models.ssti_template("/tmp/x"))
    for cut in range(4, len(data), 7):
        findings = scan_bytes(data[:cut]).findings
        assert "scan.error" not in {f.id for f in findings}, cut
