"""All REST routers under /api/v1: the one place a new resource family is registered."""

from fastapi import APIRouter

from app.api import auth, connection, couplings, erp, jobs, mappings, users

api_router = APIRouter(prefix="/api/v1")
for module in (auth, users, erp, connection, mappings, couplings, jobs):
    api_router.include_router(module.router)
