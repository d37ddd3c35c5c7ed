"""Storage backends: SQLite (embedded default) and PostgreSQL.

Only the store imports these modules; SQL and driver errors stay inside them.
"""
