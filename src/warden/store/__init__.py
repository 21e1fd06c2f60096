"""Persistence: the database (SQLAlchemy 2 + Alembic) and the encrypted blob store.

:class:`Store` is the facade the rest of Warden uses: ``Store.open(settings)`` gives the
database (``store.db``), the master keys (``store.keyring``) and the blobs (``store.blobs``).
Importing this package opens nothing.
"""

from warden.store.blobs import BlobInfo, BlobStore
from warden.store.db import Database
from warden.store.home import Store, init_home
from warden.store.keys import Keyring, MasterKey, RotationResult, rotate_master_key

__all__ = [
    "BlobInfo",
    "BlobStore",
    "Database",
    "Keyring",
    "MasterKey",
    "RotationResult",
    "Store",
    "init_home",
    "rotate_master_key",
]
