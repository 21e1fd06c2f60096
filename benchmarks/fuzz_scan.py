"""Coverage-guided fuzzing of the scanner's pickle and archive parsers with atheris (libFuzzer).

Run ``make fuzz`` (installs atheris, fuzzes each target for ``FUZZ_SECONDS``, default 600), or
``.venv/bin/python benchmarks/fuzz_scan.py --target pickle --seconds 600``.

The property: ``scan_bytes`` never raises, whatever the input; every failure inside a format
scanner must come back as a finding. Seeds are the generated test corpus (tests/supplychain/
corpus), so the fuzzer starts from real pickles, torch checkpoints, zips, tars, 7z and gzip
files and mutates from there. Crashing inputs are written by libFuzzer as ``crash-*`` files in
``--artifacts`` (default ``out/fuzz``); add each one to the regression tests.

The hypothesis-based fuzz tests in tests/supplychain run a few thousand cases on every
``make test``; this is the longer, coverage-guided run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGETS = {
    "pickle": ("pickle", "numpy"),
    "archive": ("zip", "tar", "compressed", "sevenzip"),
}


def _seeds(target: str, into: Path) -> None:
    from tests.supplychain import corpus

    files = {**corpus.malicious(str(into / "MARKER")), **corpus.benign()}
    prefixes = {"pickle": (b"\x80", b"c", b"(", b"\x93NUMPY"), "archive": (b"PK", b"\x1f\x8b")}
    for i, (_key, data) in enumerate(sorted(files.items())):
        if target == "archive" and not (
            data.startswith(prefixes["archive"]) or b"ustar" in data[:512]
        ):
            continue
        if target == "pickle" and not data.startswith(prefixes["pickle"]):
            continue
        if len(data) <= 1 << 20:
            (into / f"seed-{i:04d}").write_bytes(data)


def main() -> None:
    ap = argparse.ArgumentParser(description="Fuzz Warden's scanner parsers with atheris.")
    ap.add_argument("--target", choices=sorted(TARGETS), required=True)
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--artifacts", type=Path, default=Path("out/fuzz"))
    args = ap.parse_args()

    import atheris

    with atheris.instrument_imports(include=["warden.supplychain"]):
        from warden.supplychain.scanner import ScanLimits, format_names, scan_bytes

        format_names()  # the format modules load lazily: import them inside the block
        import warden.supplychain.formats.pickle  # noqa: F401 - the probe, too

    limits = ScanLimits(max_seconds=5.0, max_member_bytes=8 << 20, max_total_bytes=64 << 20)

    def one_input(data: bytes) -> None:
        scan_bytes(data, name="fuzz", limits=limits)

    args.artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"warden-fuzz-{args.target}-") as tmp:
        seeds = Path(tmp) / "seeds"
        seeds.mkdir()
        _seeds(args.target, seeds)
        argv = [
            sys.argv[0],
            str(seeds),
            f"-max_total_time={args.seconds}",
            f"-artifact_prefix={args.artifacts}/{args.target}-",
            "-rss_limit_mb=4096",
            "-timeout=30",
        ]
        atheris.Setup(argv, one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main()
