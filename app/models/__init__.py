"""Every table module, imported so ``SQLModel.metadata`` is complete for Alembic."""

from app.models import erp, integration, security

__all__ = ["erp", "integration", "security"]
