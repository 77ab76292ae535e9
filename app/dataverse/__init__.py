"""Async client for the Dataverse Web API (Dynamics 365 Sales). See docs/dataverse-client.md.

16 modules, one concern each (addressing, auth flows, $batch and its results, paging,
retry and throttling, the sender, the address guard, usage reporting): the only code that
talks HTTP to the CRM, generic (it imports nothing of the service's domain).
"""

from app.dataverse.addressing import bind, bind_field, lookup_field, read_lookup
from app.dataverse.batch import (
    BatchOperation,
    ChangeSet,
    create_op,
    delete_op,
    get_op,
    reference,
    set_state_op,
    update_op,
    upsert_op,
)
from app.dataverse.batch_results import BatchOutcome, BatchResult
from app.dataverse.client import ClientCredentials, DataverseClient, WhoAmI
from app.dataverse.connection import client_from_connection
from app.dataverse.retry import RetryPolicy

__all__ = [
    "BatchOperation",
    "BatchOutcome",
    "BatchResult",
    "ChangeSet",
    "ClientCredentials",
    "DataverseClient",
    "RetryPolicy",
    "WhoAmI",
    "bind",
    "bind_field",
    "client_from_connection",
    "create_op",
    "delete_op",
    "get_op",
    "lookup_field",
    "read_lookup",
    "reference",
    "set_state_op",
    "update_op",
    "upsert_op",
]
