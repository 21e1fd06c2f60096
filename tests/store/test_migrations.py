"""Alembic migrations: an empty database upgrades to head and matches the declared schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from warden.store.db import Database
from warden.store.tables import Base


def test_upgrade_empty_database_to_head_matches_the_models(database_url: str) -> None:
    db = Database(database_url)
    assert db.revision() is None
    db.upgrade()
    assert db.revision() == db.head()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
    expected = {t.name for t in Base.metadata.sorted_tables}
    assert expected <= set(db.table_names())
    db.dispose()


def test_every_declared_constraint_exists_after_migration(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    inspector = inspect(db.engine)
    for table in Base.metadata.sorted_tables:
        uniques = {u["name"] for u in inspector.get_unique_constraints(table.name)}
        for constraint in table.constraints:
            if constraint.__class__.__name__ == "UniqueConstraint":
                assert constraint.name in uniques, (table.name, constraint.name)
        declared_fks = {(fk.parent.name, fk.column.table.name) for fk in table.foreign_keys}
        found_fks = {
            (fk["constrained_columns"][0], fk["referred_table"])
            for fk in inspector.get_foreign_keys(table.name)
        }
        assert declared_fks == found_fks, table.name
    db.dispose()


def test_upgrade_is_idempotent_and_ensure_schema_is_a_no_op_at_head(database_url: str) -> None:
    db = Database(database_url)
    db.ensure_schema()
    first = db.revision()
    db.ensure_schema()
    db.upgrade()
    assert db.revision() == first == db.head()
    db.dispose()


def test_downgrade_to_base_removes_every_table(database_url: str) -> None:
    from alembic import command

    from warden.store.db import _alembic_config

    db = Database(database_url)
    db.upgrade()
    with db.engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "base")
    assert set(db.table_names()) <= {"alembic_version"}
    assert db.revision() is None
    db.dispose()
