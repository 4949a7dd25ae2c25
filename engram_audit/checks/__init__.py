"""The check catalogue: an explicit, closed registry. A duplicate id fails at import."""

from __future__ import annotations

from typing import Any

from engram_audit.checks import dsn
from engram_audit.checks.azure import backup as azure_backup
from engram_audit.checks.azure import defender as azure_defender
from engram_audit.checks.azure import diagnostics as azure_diagnostics
from engram_audit.checks.azure import monitor as azure_monitor
from engram_audit.checks.azure import param_value as azure_param_value
from engram_audit.checks.azure import params as azure_params
from engram_audit.checks.azure import pgaudit as azure_pgaudit
from engram_audit.checks.azure import private_access as azure_private_access
from engram_audit.checks.azure import security as azure_security
from engram_audit.checks.azure import server as azure_server
from engram_audit.checks.base import Check, CheckContext, Outcome, Params
from engram_audit.checks.postgres import connections as pg_connections
from engram_audit.checks.postgres import extensions as pg_extensions
from engram_audit.checks.postgres import indexes as pg_indexes
from engram_audit.checks.postgres import maintenance as pg_maintenance
from engram_audit.checks.postgres import retention as pg_retention
from engram_audit.checks.postgres import server as pg_server
from engram_audit.checks.postgres import storage as pg_storage

CATALOGUE: tuple[Check[Any], ...] = (
    azure_server.server_version,
    azure_server.sku_tier,
    azure_server.sku_size,
    azure_server.storage_size,
    azure_server.storage_auto_grow,
    azure_server.ha_mode,
    azure_backup.backup_retention,
    azure_backup.backup_geo_redundant,
    azure_backup.backup_recent,
    azure_params.require_secure_transport,
    azure_params.ssl_min_protocol_version,
    azure_params.extensions_allowlist,
    azure_params.shared_preload_libraries,
    azure_params.pgbouncer,
    azure_params.autovacuum_parameter,
    azure_param_value.parameter_value,
    azure_pgaudit.pgaudit_log,
    azure_security.firewall_open,
    azure_security.allow_azure_services,
    azure_security.public_access,
    azure_private_access.private_connectivity,
    azure_security.encryption_at_rest,
    azure_security.entra_auth,
    azure_defender.threat_protection,
    azure_monitor.monitor_alerts,
    azure_diagnostics.diagnostic_settings,
    pg_server.pg_server_version,
    pg_extensions.pg_extension_vector,
    pg_extensions.pg_extension_pg_stat_statements,
    pg_extensions.pg_extension_installed,
    pg_indexes.pg_vector_index,
    pg_indexes.pg_index_valid,
    pg_maintenance.pg_autovacuum_enabled,
    pg_maintenance.pg_autovacuum_recency,
    pg_server.pg_long_vacuum,
    pg_server.pg_tls_connection,
    pg_server.pg_tls_clients,
    pg_connections.pg_connections,
    pg_server.pg_slow_queries,
    pg_retention.pg_retention_sessions,
    pg_retention.pg_retention_soft_deleted,
    pg_retention.pg_retention_expired_facts,
    pg_storage.pg_storage_utilization,
    dsn.dsn_sslmode,
)


def _index(catalogue: tuple[Check[Any], ...]) -> dict[str, Check[Any]]:
    index: dict[str, Check[Any]] = {}
    for entry in catalogue:
        if entry.id in index:
            raise RuntimeError(f"duplicate check id in the catalogue: {entry.id}")
        index[entry.id] = entry
    return index


CHECKS_BY_ID: dict[str, Check[Any]] = _index(CATALOGUE)


def get_check(check_id: str) -> Check[Any] | None:
    return CHECKS_BY_ID.get(check_id)


__all__ = ["CATALOGUE", "CHECKS_BY_ID", "Check", "CheckContext", "Outcome", "Params", "get_check"]
