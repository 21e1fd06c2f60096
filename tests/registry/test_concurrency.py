"""Processes registering versions of one model at once: no number lost, none duplicated."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from tests.registry._worker import npy_bytes, register_worker

from warden.config import Settings
from warden.registry import Registry
from warden.store import Store

WORKERS = 3
EACH = 5


def test_concurrent_registrations_number_without_gaps(tmp_path: Path, settings: Settings) -> None:
    Store.open(settings).close()  # `warden init`: the master key exists before the workers start
    source = tmp_path / "src"
    source.mkdir()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [
        ctx.Process(target=register_worker, args=(settings, source, w, EACH, start))
        for w in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(180)
        assert proc.exitcode == 0
    total = WORKERS * EACH
    with Store.open(settings, create=False) as store:
        reg = Registry(store, actor="checker")
        versions = reg.list_versions("m")
        assert [v.number for v in versions] == list(range(1, total + 1))
        assert sorted(v.created_by for v in versions) == sorted(
            f"worker-{w}" for w in range(WORKERS) for _ in range(EACH)
        )
        expected = {npy_bytes(seed=1000 * w + i) for w in range(WORKERS) for i in range(EACH)}
        found = {store.blobs.read_bytes(v.files[0].blob_id) for v in versions}
        assert found == expected, "every version's bytes are readable and none got mixed up"
        assert len(reg.history("m")) == total
        assert store.blobs.verify_all() == []
