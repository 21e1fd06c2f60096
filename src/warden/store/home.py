"""The Warden home and the :class:`Store` facade: database, master keys and blobs together.

Layout of ``WARDEN_HOME`` (default ``./.warden``)::

    HOME/               0700
      warden.db         0600  SQLite database (unless WARDEN_DATABASE_URL names another)
      warden.db-wal     0600  SQLite's write-ahead log (and -shm), while open
      master.key        0600  base64 master key (unless WARDEN_MASTER_KEY is set)
      master.key.next   0600  the new master key while a rotation is in progress
      blobs/            0700  encrypted blobs, blobs/<id[:2]>/<id>; blobs/.tmp/ for writes
      warden.toml             optional settings (database_url, policy)
"""

from __future__ import annotations

import logging
import os
import stat
from functools import partial
from pathlib import Path
from types import TracebackType

from sqlalchemy import select

from warden.config import Settings
from warden.errors import MasterKeyError, StoreError
from warden.store.blobs import BlobStore
from warden.store.db import Database, sqlite_url
from warden.store.keys import KEY_FILE, NEXT_KEY_FILE, Keyring, load_keyring
from warden.store.tables import Blob

__all__ = ["BLOBS_DIR", "DB_FILE", "Store", "init_home"]

log = logging.getLogger(__name__)

DB_FILE = "warden.db"
"""The SQLite database's file name inside the home."""
BLOBS_DIR = "blobs"
"""The blob directory's name inside the home."""


def _private_dir(path: Path, *, create: bool, tighten: bool) -> None:
    """Make sure ``path`` is a directory; create it 0700; ``tighten`` an existing loose one."""
    if not path.exists():
        if not create:
            raise StoreError(
                f"no Warden home at {path}: run `warden init` (or pass --home / WARDEN_HOME)"
            )
        path.mkdir(mode=0o700, parents=True)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
        return
    if not path.is_dir():
        raise StoreError(f"{path} exists but is not a directory")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        if tighten:
            os.chmod(path, 0o700)
        else:
            log.warning(
                "%s has mode %04o: other users can list it; run `chmod 700 %s`", path, mode, path
            )


class Store:
    """Warden's persistent state: ``db``, ``keyring`` and ``blobs`` under ``home``.

    Open with :meth:`open` (or :func:`init_home`); use as a context manager or call
    :meth:`close`.
    """

    def __init__(
        self, settings: Settings, home: Path, db: Database, keyring: Keyring, blobs: BlobStore
    ) -> None:
        self.settings = settings
        self.home = home
        self.db = db
        self.blobs = blobs
        blobs.keyring = keyring

    @property
    def keyring(self) -> Keyring:
        """The master keys (kept current with the key files by the blob store)."""
        return self.blobs.keyring

    def __repr__(self) -> str:
        return f"Store(home={str(self.home)!r}, db={self.db.display_url!r})"

    @classmethod
    def open(cls, settings: Settings, *, create: bool = True) -> Store:
        """Open the store ``settings`` describe; with ``create``, make what is missing (home,
        database schema, master key file); without it, refuse a missing home or key."""
        home = Path(settings.home)
        try:
            _private_dir(home, create=create, tighten=False)
            if settings.database_url is None:
                db_path = home / DB_FILE
                if not create and not db_path.exists():
                    raise StoreError(f"no database at {db_path}: run `warden init` first")
                db = Database(sqlite_url(db_path))
            else:
                db = Database(settings.database_url)
            try:
                db.ensure_schema()
                key_ids = _key_ids_in_use(db)
                keyring = load_keyring(home, settings.master_key, create=create and not key_ids)
                _check_keys(keyring, key_ids, home)
                blobs_dir = home / BLOBS_DIR
                _private_dir(blobs_dir, create=True, tighten=True)
            except BaseException:
                db.dispose()
                raise
        except OSError as exc:
            raise StoreError(f"cannot open the Warden home {home}: {exc}") from exc
        reload = None if keyring.from_env else partial(load_keyring, home, None, create=False)
        blobs = BlobStore(db, blobs_dir, keyring, reload_keyring=reload)
        return cls(settings, home, db, keyring, blobs)

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def key_source(self) -> str:
        """Where the master key comes from, for messages."""
        if self.keyring.from_env:
            return "WARDEN_MASTER_KEY"
        if (self.home / NEXT_KEY_FILE).exists():
            return f"{self.home / KEY_FILE} (rotation pending: {self.home / NEXT_KEY_FILE})"
        return str(self.home / KEY_FILE)


def _key_ids_in_use(db: Database) -> set[str]:
    from warden.store.keys import wrapped_key_ids

    with db.session() as session:
        ids = set(session.scalars(select(Blob.key_id).distinct()))
    return ids | wrapped_key_ids(db)


def _check_keys(keyring: Keyring, in_use: set[str], home: Path) -> None:
    """Refuse a keyring that cannot unwrap the store's data keys (before anything is written
    under a wrong key)."""
    missing = sorted(in_use - set(keyring.key_ids))
    if missing:
        raise MasterKeyError(
            f"the store's data keys are wrapped by master key {', '.join(missing)}, but the "
            f"loaded key is {keyring.current.key_id} (from {keyring.source}); provide the "
            "right key in WARDEN_MASTER_KEY or "
            f"{home / KEY_FILE}, or finish a pending `warden keys rotate`"
        )


def init_home(settings: Settings) -> Store:
    """Create (or open) the Warden home: directories 0700, database at the newest schema,
    master key 0600 unless one comes from the environment. Safe to run twice."""
    return Store.open(settings, create=True)
