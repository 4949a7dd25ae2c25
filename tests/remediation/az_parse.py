"""Run inside a Python that has azure-cli: parse each command line read from stdin (a JSON list
of argument lists) with the CLI's own entry point, in one process; print a JSON list of
(exit code, stderr tail). Without a login, a well-formed command fails only at the login step."""

import contextlib
import io
import json
import sys

from azure.cli.core import get_default_cli  # type: ignore[import-untyped]

results = []
for args in json.load(sys.stdin):
    err = io.StringIO()
    cli = get_default_cli()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.invoke(args, out_file=io.StringIO())
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    results.append((code, err.getvalue()[-600:]))
json.dump(results, sys.stdout)
