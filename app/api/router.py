"""All REST routers under /api/v1: the one place a new resource family is registered."""

from fastapi import APIRouter

from app.api import auth, connection, couplings, erp, jobs, mappings, sync, users

api_router = APIRouter(prefix="/api/v1")
for module in (auth, users, erp, connection, mappings, couplings, jobs, sync):
    api_router.include_router(module.router)
