"""Sans-I/O protocol code: build requests, parse responses. Never awaits, never imports aiohttp."""
