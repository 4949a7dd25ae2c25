"""PostgreSQL collector: ``collector`` (psycopg) and its catalog ``queries``; ``request`` is
what the CLI builds, and ``session`` the safeguards and TLS choice it can check, without
importing the driver."""
