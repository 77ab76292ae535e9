"""The parts of the ``$filter`` compiler (``app.odata.filters`` is its entry, and
``app.odata.filter_cache`` its cache): the parser and its shortcuts for common forms,
parameter aliases, types and exact-decimal numbers, comparisons and functions."""
