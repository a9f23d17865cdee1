"""The REST API, one module per route family; each has ``routes()`` relative to ``/api``."""
