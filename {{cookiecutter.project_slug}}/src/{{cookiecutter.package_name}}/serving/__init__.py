"""How the app is served: server start, HTTP protocol, logging (docs/operations.md: why each default)."""
