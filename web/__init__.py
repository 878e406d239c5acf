"""The aiohttp app: API, console, resident page, auth, CLI, settings (the composition root)."""
