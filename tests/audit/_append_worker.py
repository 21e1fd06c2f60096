"""A process that appends to the audit log: ``python _append_worker.py URL HOME THREADS N TAG``.

Each thread appends ``N`` durable records (``N`` = 0: until killed) and prints
``seq hash`` for every receipt, flushed, only after the append returned as durable.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from warden.audit import AuditEvent, AuditLog, load_audit_key, load_signing_key
from warden.store.db import Database


def main() -> None:
    url, home, threads, n, tag = sys.argv[1:6]
    db = Database(url)
    log = AuditLog(
        db,
        load_audit_key(Path(home), None, create=False),
        load_signing_key(Path(home), create=False),
        checkpoint_every=50,
    )
    lock = threading.Lock()

    def work(t: int) -> None:
        i = 0
        while int(n) == 0 or i < int(n):
            receipt = log.append(AuditEvent("test.append", f"{tag}-{t}", details={"i": i}))
            with lock:
                sys.stdout.write(f"{receipt.seq} {receipt.hash}\n")
                sys.stdout.flush()
            i += 1

    workers = [threading.Thread(target=work, args=(t,)) for t in range(int(threads))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.close()
    db.dispose()


if __name__ == "__main__":
    main()
