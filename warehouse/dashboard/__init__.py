"""The provincial dashboard: a web server of named, parameterised data endpoints over the marts.

It lives under warehouse/ because it is a reader of the warehouse and nothing else: every figure
comes from the marts through :mod:`warehouse.readonly` (the service's API, or a read-only session
of its own when no service runs), with the ``dashboard`` role (``analyst`` for the household page).
"""
