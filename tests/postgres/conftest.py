"""Session-scoped real servers: each kind is started once, seeded, and stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pg_servers import KINDS, SeededServer, seed_zep_layouts, seeded_server


@pytest.fixture(scope="session", params=KINDS, ids=[kind.id for kind in KINDS])
def pg(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SeededServer]:
    kind = request.param
    with seeded_server(kind, Path(tmp_path_factory.mktemp(kind.id))) as server:
        yield server


@pytest.fixture(scope="session")
def zep_layouts(pg: SeededServer) -> SeededServer:
    """The server with the two real Zep layouts seeded (once per server, on first use)."""
    if pg.kind.vector_version is None:
        pytest.skip("no pgvector in this PostgreSQL 17 build: Zep's layouts both need it")
    seed_zep_layouts(pg)
    return pg


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "pg" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
