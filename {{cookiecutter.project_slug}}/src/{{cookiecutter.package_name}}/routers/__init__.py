"""One module per resource, each with its own router; main.py includes each (routing.include_flat)."""
