"""REST routers, one module per resource family; ``app.api.router`` assembles them."""
