"""The database: `fnhost db copy` moves a SQLite data dir into PostgreSQL."""

from __future__ import annotations

import click

from ._common import DEFAULT_DATA_DIR, command, group

db = group("db", "The database.", example="fnhost db copy --data-dir .fnhost --to postgresql://fnhost@db/fnhost")


@command(db, "copy", example="fnhost db copy --data-dir .fnhost --to postgresql://fnhost@db/fnhost")
@click.option("--data-dir", default=DEFAULT_DATA_DIR, show_default=True, help="the source")
@click.option("--to", required=True, metavar="postgresql://USER@HOST:PORT/DB", help="the empty target")
def db_copy(data_dir: str, to: str) -> int:
    """Copy a SQLite data dir into an empty PostgreSQL, in one transaction."""
    from ..dbcopy import copy_data_dir

    report = copy_data_dir(data_dir, to)
    total = sum(report.rows.values())
    print(f"copied {total} rows from {len(report.rows)} tables and {report.binaries} binaries; "
          f"the audit chain verifies ({report.audit_entries} entries)")  # fmt: skip
    for table, count in sorted(report.rows.items()):
        print(f"  {table}: {count}")
    print("start every node with --database and this data dir's master key (FNHOST_MASTER_KEY)")
    return 0


COMMANDS = [db]
