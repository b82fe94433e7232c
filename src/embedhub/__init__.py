"""embedhub: an exact, offline-capable home for Qwen3-Embedding: server, knowledge base, evaluation."""

__version__ = "0.1.0"
