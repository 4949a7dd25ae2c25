"""engram-audit: policy-as-code compliance for Zep's PostgreSQL + pgvector store on Azure."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("engram-audit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

TOOL_NAME = "engram-audit"
