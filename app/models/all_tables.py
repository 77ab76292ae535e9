"""Every table module, imported so ``SQLModel.metadata`` is complete (Alembic, the app)."""

from app.models import availability, erp, integration, option_mapping, security

__all__ = ["availability", "erp", "integration", "option_mapping", "security"]
