"""Database engine, sessions and migrations (PostgreSQL via SQLAlchemy 2 async + asyncpg)."""
