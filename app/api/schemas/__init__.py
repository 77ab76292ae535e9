"""Request and response models of the REST API (pydantic, ``extra="forbid"`` on input)."""
