"""PostgreSQL collector: ``collector`` (psycopg) and its catalog ``queries``; ``request`` is
what the CLI builds without importing the driver."""
