"""How the app is served (rarely edited; the app imports nothing from here): server start, HTTP protocol,
logging. docs/operations.md says why each default, and when each upstream workaround can go."""
