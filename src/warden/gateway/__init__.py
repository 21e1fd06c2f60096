"""The secure inference gateway: cross-cutting ASGI middleware, rate limits, input validation,
guards and metrics, composed by the app factory into ``warden serve``."""
