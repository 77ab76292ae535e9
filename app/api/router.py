"""All REST routers under /api/v1: the one place a new resource family is registered."""

from fastapi import APIRouter

from app.api import (
    auth,
    connection,
    couplings,
    crm_notifications,
    customer_statistics,
    erp,
    jobs,
    mappings,
    option_mappings,
    sales_integration,
    sync,
    users,
)

api_router = APIRouter(prefix="/api/v1")
for module in (auth, users, erp, connection, mappings, option_mappings, couplings, jobs, sync,
               sales_integration, customer_statistics, crm_notifications):  # fmt: skip
    api_router.include_router(module.router)
