"""Database connections around long waits on model_service."""
from django.db import connection


def release_connection() -> None:
    """Give this thread's database connection back before a request waits on the model (a streamed
    suggestion holds its request for seconds): to the pool on PostgreSQL, so that a few connections serve
    many waiting requests; the next query takes one again. Kept inside a transaction, and on SQLite,
    where reopening costs more than holding (a last connection's close checkpoints the WAL)."""
    if connection.vendor == "sqlite" or connection.in_atomic_block:
        return
    connection.close()
