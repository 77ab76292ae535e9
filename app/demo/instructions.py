"""What the demo prints once its first synchronization has ended: where to look next."""

from __future__ import annotations

import shlex

from app.command_lines import command_line
from app.demo.connect import ODATA_USER, service_url
from app.demo.sample_company import CUSTOMERS, SALESPEOPLE
from app.demo.sandbox_thread import RunningSandbox
from app.settings import Settings

DEMO_PHONE = "+44 121 555 0199"


def availability_curl(settings: Settings, key: str) -> str:
    """A ready-to-paste request of the item availability the CRM reads (Basic auth)."""
    url = f"{service_url(settings)}/odata/v4/ItemAvailability?$select=ItemNo,Description,Inventory"
    return f"curl -s -u {shlex.quote(f'{ODATA_USER}:{key}')} {shlex.quote(url)}"


def crm_edit_command() -> str:
    """A salesperson's change to the first sample customer's account, as the demo shows it."""
    customer, person = str(CUSTOMERS[0]["name"]), SALESPEOPLE[0]
    arguments = (
        f"crm-edit accounts {shlex.quote(customer)} "
        f"telephone1={shlex.quote(DEMO_PHONE)} --as {person.email}"
    )
    # The sandbox is on this machine: commands that reach it need the allowance too.
    return f"SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES=true {command_line(arguments)}"


def ready_text(settings: Settings, sandbox: RunningSandbox, key: str) -> str:
    base = service_url(settings)
    person = SALESPEOPLE[0]
    return f"""
Salesbridge demo is running.

  Web console          {base}/   (sign in as admin)
  Service (REST API)   {base}   API pages: {base}/docs
  OData v4 service     {base}/odata/v4/
  Sandbox CRM          {sandbox.api_url}   (client {sandbox.config.client_id})

Item availability as the CRM reads it (user '{ODATA_USER}', a new access key shown only now):

  {availability_curl(settings, key)}

The sync log:

  {command_line("sync status")}
  TOKEN=$({command_line("token admin")})
  curl -s -H "Authorization: Bearer $TOKEN" {base}/api/v1/sync-jobs

  or open {base}/sync-log in the web console,
  or open {base}/docs and try GET /api/v1/sync-jobs (Authorize with the admin user).
  Lost the admin password? `{command_line("user reset-password admin")}`.

The way back: a change a salesperson ({person.name}) makes in the CRM, which the CUSTOMER
mapping's next run brings to the ERP (the sync log shows it):

  {crm_edit_command()}

Ctrl-C stops the service, the worker, the embedded Redis and the sandbox.
"""
