"""The HTTP layer: FastAPI app factory, OpenAI-compatible schemas and routes, errors, auth."""
