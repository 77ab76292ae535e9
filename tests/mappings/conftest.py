"""The set-up tests' arrangements (an admin, a reader, a client on the sandbox as the CRM)."""

from tests.connection.conftest import admin, crm, reader  # noqa: F401 - fixtures reused, not copied
from tests.fixtures.live_api import live_admin, live_api, live_reader  # noqa: F401
from tests.jobs.conftest import arq_pool, tick_ctx, worker_settings  # noqa: F401 - fixtures
