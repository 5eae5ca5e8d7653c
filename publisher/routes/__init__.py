"""The publisher's routers, one module per kind of page."""
