"""The publisher: settings, the FastAPI app and its routers, content negotiation, dumps, CLI."""
