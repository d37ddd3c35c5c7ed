"""Format evolution: catalogs, schema check and diff, migrations and backfill."""
