"""Harvesting: sources, fetch, formats, normalise, identity and the pipeline that joins them."""
