"""Several processes writing blobs at once: nothing is lost, nothing is corrupted."""

from __future__ import annotations

import hashlib
import multiprocessing
from pathlib import Path
from typing import Any

from warden.config import Settings
from warden.store import Store

WORKERS = 3
ROUNDS = 6


def shared_content(r: int) -> bytes:
    return hashlib.sha256(f"shared {r}".encode()).digest() * (100 + r)


def own_content(worker: int, r: int) -> bytes:
    return hashlib.sha256(f"own {worker} {r}".encode()).digest() * (50 + r)


def big_content() -> bytes:
    return hashlib.sha256(b"big").digest() * (80_000 + 7)  # 2.5 MB: three 1 MiB chunks


def _worker(settings: Settings, worker: int, source: Path, start: Any) -> None:
    with Store.open(settings, create=False) as store:
        start.wait(60)
        for r in range(ROUNDS):
            store.blobs.put_bytes(shared_content(r))
            store.blobs.put_bytes(own_content(worker, r))
            if r == ROUNDS // 2:
                store.blobs.put_file(source)


def test_processes_putting_same_and_different_content(tmp_path: Path, database_url: str) -> None:
    url = database_url if database_url.startswith("postgresql") else None
    settings = Settings(home=tmp_path / "home", database_url=url)
    source = tmp_path / "big.bin"
    source.write_bytes(big_content())
    Store.open(settings).close()  # `warden init`
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(settings, w, source, start)) for w in range(WORKERS)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    expected = {shared_content(r) for r in range(ROUNDS)} | {big_content()}
    expected |= {own_content(w, r) for w in range(WORKERS) for r in range(ROUNDS)}
    with Store.open(settings, create=False) as store:
        ids = store.blobs.ids()
        assert ids == sorted(hashlib.sha256(c).hexdigest() for c in expected)
        for content in expected:
            assert store.blobs.read_bytes(hashlib.sha256(content).hexdigest()) == content
        assert store.blobs.verify_all() == []
        assert list((store.blobs.root / ".tmp").iterdir()) == []
