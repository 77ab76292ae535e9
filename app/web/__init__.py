"""The web console: the integration administrator's pages, served by the service at ``/``.

Server-rendered Jinja2 templates with htmx for partial updates; every asset is served by
the service itself. Pages are an edge like the REST routes: a view parses its form into
the REST API's own schema, calls the same function the REST route calls, and renders a
template (``docs/console.md`` lists the pages and the role each needs).
"""
