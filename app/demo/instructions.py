"""What the demo prints once its first synchronization has ended: where to look next."""

from __future__ import annotations

import shlex

from app.demo.connect import ODATA_USER, service_url
from app.demo.sandbox_thread import RunningSandbox
from app.settings import Settings

DEFAULT_DATA_DIR = ".salesbridge"


def availability_curl(settings: Settings, key: str) -> str:
    """A ready-to-paste request of the item availability the CRM reads (Basic auth)."""
    url = f"{service_url(settings)}/odata/v4/ItemAvailability?$select=ItemNo,Description,Inventory"
    return f"curl -s -u {shlex.quote(f'{ODATA_USER}:{key}')} {shlex.quote(url)}"


def _cli(settings: Settings, command: str) -> str:
    """The CLI command, with the data dir when it is not the default one."""
    if str(settings.data_dir) == DEFAULT_DATA_DIR:
        return f"salesbridge {command}"
    return f"SALESBRIDGE_DATA_DIR={shlex.quote(str(settings.data_dir))} salesbridge {command}"


def ready_text(settings: Settings, sandbox: RunningSandbox, key: str) -> str:
    base = service_url(settings)
    token = f"{base}/api/v1/auth/token"
    return f"""
Salesbridge demo is running.

  Web console          {base}/   (sign in as admin)
  Service (REST API)   {base}   API pages: {base}/docs
  OData v4 service     {base}/odata/v4/
  Sandbox CRM          {sandbox.api_url}   (client {sandbox.config.client_id})

Item availability as the CRM reads it (user '{ODATA_USER}', a new access key shown only now):

  {availability_curl(settings, key)}

The sync log:

  {_cli(settings, "sync status")}
  TOKEN=$(curl -s -X POST {token} -d username=admin \\
          -d 'password=<admin password>' | jq -r .access_token)
  curl -s -H "Authorization: Bearer $TOKEN" {base}/api/v1/sync-jobs

  or open {base}/sync-log in the web console,
  or open {base}/docs and try GET /api/v1/sync-jobs (Authorize with the admin user).
  Lost the admin password? `{_cli(settings, "user reset-password admin")}`.

Ctrl-C stops the service, the worker, the embedded Redis and the sandbox.
"""
