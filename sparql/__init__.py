"""The store (embedded Oxigraph by default), named queries, and the public /sparql endpoint."""
