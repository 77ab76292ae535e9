"""REST routers under /api/v1, one module per resource family."""

from fastapi import APIRouter

api_router = APIRouter(prefix="/api/v1")
