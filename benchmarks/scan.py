"""Warden's artifact scanner side by side with modelscan and picklescan, in one process.

Run ``make bench-scan`` (or ``.venv/bin/python benchmarks/scan.py``). Writes
``benchmarks/results/scan.md`` and prints the same tables.

1. Detection on the generated corpus (tests/supplychain/corpus: every malicious sample is a
   published bypass technique or a classic payload, each would create a marker file if run;
   benign samples are real checkpoints made with torch, joblib, numpy, safetensors, onnx).
   A tool *detects* a sample when its own verdict says so: modelscan reports at least one issue,
   picklescan counts an infected file, Warden has a finding at or above ``low``. Scan errors
   and "suspicious" warnings are counted separately (a tool that errors has not said the file
   is malicious, and a pipeline gating on its verdict lets the file through).
2. Throughput on the whole corpus: files/s and MB/s, best of R interleaved repeats.
3. Big PyTorch checkpoints (zip format, the ``torch.save`` default) of ~256 MB and ~1 GB with
   the same number of tensors: scan time should track the pickle, not the tensor bytes.

The marker file is checked after every tool: no tool may execute a payload.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.supplychain import corpus

from warden.assess.finding import Severity
from warden.supplychain.scan import scan_paths

RESULTS = Path(__file__).parent / "results" / "scan.md"


@dataclass
class Verdict:
    detected: bool
    """The tool's own verdict says malicious/unsafe."""
    noted: bool
    """An error, skip or warning that is not a verdict."""
    analysed: bool = True
    """The tool looked inside the sample (not skipped as an unsupported file)."""


def warden_tool(path: Path) -> Verdict:
    report = scan_paths([path], workers=1)
    return Verdict(report.fails(Severity.LOW), bool(report.findings))


def picklescan_tool(path: Path) -> Verdict:
    from picklescan.scanner import scan_directory_path, scan_file_path

    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        result = scan_directory_path(str(path)) if path.is_dir() else scan_file_path(str(path))
    return Verdict(
        result.infected_files > 0,
        bool(result.scan_err or result.suspicious_count),
        result.scanned_files > 0,
    )


def modelscan_tool(path: Path) -> Verdict:
    from modelscan.modelscan import ModelScan

    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        result = ModelScan().scan(path)
    issues = result.get("issues") or []
    summary = result.get("summary", {})
    noted = bool(result.get("errors")) or bool(summary.get("skipped", {}).get("skipped_files"))
    scanned = summary.get("scanned", {}).get("total_scanned", 0)
    return Verdict(len(issues) > 0, noted, scanned > 0)


TOOLS: dict[str, Callable[[Path], Verdict]] = {
    "Warden": warden_tool,
    "modelscan": modelscan_tool,
    "picklescan": picklescan_tool,
}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def detection(
    root: Path, marker: Path
) -> tuple[list[str], dict[str, dict[str, int]], list[str], list[Path]]:
    """Per-sample table rows, totals per tool, samples Warden missed, samples all analysed."""
    mal = corpus.malicious(str(marker))
    ben = corpus.benign()
    corpus.write(mal, root / "malicious")
    corpus.write(ben, root / "benign")
    rows: list[str] = []
    totals = {t: {"tp": 0, "fn": 0, "fp": 0, "tn": 0, "noted": 0} for t in TOOLS}
    warden_missed: list[str] = []
    common: list[Path] = []
    for kind, files in (("malicious", mal), ("benign", ben)):
        for sample in corpus.samples(files, root / kind):
            marks = []
            everyone = True
            for tool, fn in TOOLS.items():
                try:
                    v = fn(sample)
                except Exception:  # a peer crashing on a sample: no verdict, counted as noted
                    v = Verdict(False, True)
                if marker.exists():
                    raise SystemExit(f"{tool} executed a payload while scanning {sample.name}!")
                t = totals[tool]
                if kind == "malicious":
                    t["tp" if v.detected else "fn"] += 1
                    if tool == "Warden" and not v.detected:
                        warden_missed.append(sample.name)
                else:
                    t["fp" if v.detected else "tn"] += 1
                t["noted"] += int(v.noted and not v.detected)
                everyone = everyone and v.analysed
                marks.append("✔" if v.detected else ("err" if v.noted else "–"))
            rows.append(f"| {kind} | `{sample.name}` | " + " | ".join(marks) + " |")
            if everyone:
                common.append(sample)
    return rows, totals, warden_missed, common


def throughput(samples: list[Path], repeats: int) -> dict[str, tuple[float, int, int]]:
    """Best wall time per tool over ``samples``, with file count and bytes."""
    n_files = sum(
        1 if p.is_file() else sum(1 for q in p.rglob("*") if q.is_file()) for p in samples
    )
    n_bytes = sum(_size(p) for p in samples)
    best = {t: float("inf") for t in TOOLS}
    for _ in range(repeats):
        for tool, fn in TOOLS.items():
            start = time.perf_counter()
            for p in samples:
                with contextlib.suppress(Exception):  # same crash as in the detection pass
                    fn(p)
            best[tool] = min(best[tool], time.perf_counter() - start)
    return {t: (best[t], n_files, n_bytes) for t in TOOLS}


def big_checkpoints(
    root: Path, sizes_mb: list[int], n_tensors: int, repeats: int
) -> tuple[list[str], list[dict[str, float]]]:
    """Scan time of torch.save checkpoints of growing size (same number of tensors)."""
    import torch

    rows = []
    timings: list[dict[str, float]] = []
    for mb in sizes_mb:
        per = mb * (1 << 20) // 4 // n_tensors
        state = {
            f"layer{i}.weight": torch.zeros(per, dtype=torch.float32) for i in range(n_tensors)
        }
        for i, t in enumerate(state.values()):
            t[::4096] = float(i)  # not all zeros; content does not matter to the scanners
        path = root / f"ckpt-{mb}MB.pt"
        torch.save(state, path)
        del state
        size = path.stat().st_size
        times = {}
        verdicts = {}
        for tool, fn in TOOLS.items():
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                v = fn(path)
                best = min(best, time.perf_counter() - start)
            times[tool] = best
            verdicts[tool] = v
        path.unlink()
        timings.append(times)
        w = times["Warden"]
        rows.append(
            f"| {size / 2**20:,.0f} MiB, {n_tensors} tensors | "
            + " | ".join(
                f"{times[t] * 1e3:,.1f} ms ({size / 2**20 / times[t]:,.0f} MiB/s)"
                + (" FLAGGED" if verdicts[t].detected else "")
                for t in TOOLS
            )
            + f" | {times['modelscan'] / w:.1f}× | {times['picklescan'] / w:.1f}× |"
        )
    return rows, timings


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def targets(
    totals: dict[str, dict[str, int]],
    speed: dict[str, tuple[float, int, int]],
    speed_common: dict[str, tuple[float, int, int]],
    big_times: list[dict[str, float]],
    sizes_mb: list[int],
) -> list[str]:
    """The issue's targets, each with the measured figure and met / missed."""
    w = totals["Warden"]
    n_mal = w["tp"] + w["fn"]
    lines = [
        f"- Every malicious sample flagged: {w['tp']} / {n_mal} — {_met(w['fn'] == 0)}.",
        f"- No benign sample flagged: {w['fp']} flagged — {_met(w['fp'] == 0)}.",
    ]
    for label, table in (("whole corpus", speed), ("like-for-like samples", speed_common)):
        ms = table["modelscan"][0] / table["Warden"][0]
        ps = table["picklescan"][0] / table["Warden"][0]
        lines.append(
            f"- Throughput on the {label}: {ms:.2f}× modelscan's (target ≥ 2: {_met(ms >= 2)}), "
            f"{ps:.2f}× picklescan's (target ≥ 1: {_met(ps >= 1)})."
        )
    for mb, t in zip(sizes_mb, big_times, strict=True):
        ms, ps = t["modelscan"] / t["Warden"], t["picklescan"] / t["Warden"]
        lines.append(
            f"- {mb} MiB checkpoint: {ms:.1f}× modelscan's throughput ({_met(ms >= 2)}), "
            f"{ps:.1f}× picklescan's ({_met(ps >= 1)})."
        )
    if len(big_times) >= 2:
        grow = big_times[-1]["Warden"] / big_times[0]["Warden"]
        size = sizes_mb[-1] / sizes_mb[0]
        lines.append(
            f"- Scan time grows with the pickle, not the tensor bytes: {size:.0f}× the bytes took "
            f"{grow:.2f}× the time — {_met(grow < size / 2)}."
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes-mb", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--tensors", type=int, default=64)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # modelscan logs every skipped file

    with tempfile.TemporaryDirectory(prefix="warden-bench-scan-") as tmp:
        root = Path(tmp)
        marker = root / "canary" / "PWNED"
        marker.parent.mkdir()
        rows, totals, missed, common = detection(root, marker)
        every = [p for kind in ("malicious", "benign") for p in sorted((root / kind).iterdir())]
        speed = throughput(every, args.repeats)
        speed_common = throughput(common, args.repeats)
        big, big_times = big_checkpoints(root, args.sizes_mb, args.tensors, args.repeats)
        assert not marker.exists()

    names = list(TOOLS)
    lines = [
        "# Scanner benchmark: Warden vs modelscan vs picklescan",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores (shared, noisy: compare ratios), Python "
        f"{platform.python_version()}; warden {_version('warden')}, modelscan "
        f"{_version('modelscan')}, picklescan {_version('picklescan')}. "
        "Command: `make bench-scan`.",
        "",
        "## Detection on the generated corpus",
        "",
        "| tool | malicious detected | missed | benign flagged (false positives) | "
        "errors/warnings without a verdict |",
        "|---|---|---|---|---|",
    ]
    for t in names:
        c = totals[t]
        lines.append(
            f"| {t} | {c['tp']} / {c['tp'] + c['fn']} | {c['fn']} | "
            f"{c['fp']} / {c['fp'] + c['tn']} | {c['noted']} |"
        )
    lines += ["", f"Warden missed: {', '.join(missed) or 'none'}.", ""]
    for title, table, note in (
        (
            "the whole corpus",
            speed,
            "Every sample; Warden analyses all of them, the peers skip "
            "formats they do not support (which is fast).",
        ),
        (
            "samples every tool analysed",
            speed_common,
            "Only the samples that modelscan and "
            "picklescan both report as scanned (not skipped): like for like.",
        ),
    ):
        lines += [
            f"## Throughput on {title} (best of {args.repeats})",
            "",
            note,
            "",
            "| tool | time | files/s | MB/s | peer time ÷ Warden time |",
            "|---|---|---|---|---|",
        ]
        w = table["Warden"][0]
        for t in names:
            secs, n_files, n_bytes = table[t]
            lines.append(
                f"| {t} | {secs:.3f} s | {n_files / secs:,.0f} | {n_bytes / 1e6 / secs:,.1f} | "
                f"{secs / w:.2f}× |"
            )
        lines.append("")
    lines += [
        "## Big PyTorch checkpoints (zip format, best of " + str(args.repeats) + ")",
        "",
        "Time per scan; the last two columns are peer time ÷ Warden time (above 1: Warden "
        "is faster).",
        "",
        "| checkpoint | " + " | ".join(names) + " | modelscan / Warden | picklescan / Warden |",
        "|---|" + "---|" * (len(names) + 2),
        *big,
        "",
        "## Targets",
        "",
        *targets(totals, speed, speed_common, big_times, args.sizes_mb),
        "",
        "## Per-sample verdicts (✔ detected, err = error/warning only, – passed)",
        "",
        "| kind | sample | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
        *rows,
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
