"""One module per resource; main.py includes each router."""
