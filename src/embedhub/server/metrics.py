"""Prometheus metrics, one registry per app (so tests and several apps never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("embedhub_requests", "HTTP requests", ["route", "status"], registry=r)
        self.errors = Counter("embedhub_errors", "Error responses by type", ["type"], registry=r)
        self.latency = Histogram(
            "embedhub_request_latency_seconds",
            "Request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "embedhub_queue_depth", "Inputs waiting for the model", ["model"], registry=r
        )
        self.batch_items = Histogram(
            "embedhub_batch_items",
            "Inputs per forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.batch_tokens = Histogram(
            "embedhub_batch_tokens",
            "Padded tokens per forward pass",
            buckets=(64, 256, 1024, 4096, 16384, 65536, 262144),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "embedhub_batch_seconds", "Forward pass time", buckets=LATENCY_BUCKETS, registry=r
        )
        self.tokens = Counter(
            "embedhub_tokens",
            "Prompt tokens embedded or reranked (rate() gives tokens/s)",
            ["model"],
            registry=r,
        )
        self.inputs = Counter("embedhub_inputs", "Inputs embedded (or pairs reranked)", ["model"], registry=r)
        self.rerank_pairs = Counter(
            "embedhub_rerank_pairs", "(query, document) pairs scored by a reranker", ["model"], registry=r
        )
        self.truncated_inputs = Counter(
            "embedhub_truncated_inputs",
            "Inputs cut to the model's token limit (server truncation policy or a request's truncate)",
            ["model"],
            registry=r,
        )
        self.cache_hits = Gauge("embedhub_cache_hits", "Embedding cache hits", ["model"], registry=r)
        self.cache_misses = Gauge("embedhub_cache_misses", "Embedding cache misses", ["model"], registry=r)
        self.cache_entries = Gauge("embedhub_cache_entries", "Embedding cache entries", ["model"], registry=r)
        self.model_backend = Gauge(
            "embedhub_model_backend",
            "1 for the backend that runs each served model (torch, torch-bf16, torch-int8, onnx-int8)",
            ["model", "backend"],
            registry=r,
        )
        self.cpu = Gauge(
            "embedhub_cpu_info",
            "1, labelled with this CPU's model, class and relevant flags (the class decides backends)",
            ["cpu", "cpu_class", "flags"],
            registry=r,
        )
        self.ready = Gauge("embedhub_ready", "1 when every model is loaded and warm", registry=r)

    def observe_batch(self, items: int, padded_tokens: int, seconds: float) -> None:
        self.batch_items.observe(items)
        self.batch_tokens.observe(padded_tokens)
        self.batch_seconds.observe(seconds)
