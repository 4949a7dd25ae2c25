"""A long PostgreSQL collection shows where it is on a terminal (steps done of the total, what
runs now, time spent, an estimate of the time left) and nothing at all when stderr is not a
terminal (CI logs, pipes)."""

from __future__ import annotations

import os
import pty
import re
import select

import pytest

from engram_audit.collectors.postgres.collector import PostgresRequest, collect_postgres
from engram_audit.policy.loader import load_policy
from engram_audit.policy.planning import plan_for
from tests.conftest import POLICIES
from tests.support.pg_servers import SeededServer

STEP = re.compile(r"PostgreSQL \S+: (\d+)/(\d+) steps, ([^,]+), [\d.]+ s(, ~\d+ s left)?")


def _read_all(fd: int) -> str:
    shown = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    return shown.decode("utf-8", "replace")


def test_progress_on_a_terminal_only(
    pg: SeededServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = plan_for(load_policy(POLICIES / "prod.yaml"))
    assert plan.retention, "the prod policy counts rows: the longest steps"
    request = PostgresRequest(dsn=pg.auditor_dsn())

    quiet = collect_postgres(request, plan, show_progress=True)
    assert capsys.readouterr().err == ""  # not a terminal: nothing
    assert quiet.section is not None

    monkeypatch.setattr("engram_audit.collectors.progress.REDRAW_INTERVAL", 0.0)
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        monkeypatch.setattr("sys.stderr", terminal)
        shown_collection = collect_postgres(request, plan, show_progress=True)
        shown = _read_all(leader)
    os.close(leader)

    steps = [m for line in shown.split("\r") if (m := STEP.search(line))]
    assert steps, shown
    totals = {int(m[2]) for m in steps}
    assert len(totals) == 1, totals  # one total for the whole collection
    done = [int(m[1]) for m in steps]
    assert done == list(range(len(done))) and done[-1] == totals.pop() - 1, done
    assert any(m[3].startswith("counting rows of ") for m in steps)
    assert all(m[4] for m in steps[1:]), "an estimate once a step has finished"
    assert shown.endswith("\r\n") or shown.endswith("\n")  # the line is closed at the end
    # Showing progress changes nothing collected (live counters such as sessions aside).
    assert shown_collection.issues == quiet.issues
    assert shown_collection.section is not None
    first, second = quiet.section.databases[0], shown_collection.section.databases[0]
    assert (first.retention, first.extensions) == (second.retention, second.extensions)
