"""The set-up tests' arrangements (an admin, a reader, a client on the sandbox as the CRM)."""

from tests.connection.conftest import admin, crm, reader  # noqa: F401 - fixtures reused, not copied
