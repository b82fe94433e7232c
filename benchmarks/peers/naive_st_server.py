"""The naive baseline: sentence-transformers behind a minimal FastAPI app.

This is what many people write first: one synchronous route that calls `model.encode` on each
request's inputs (FastAPI runs it on its thread pool, so concurrent requests run the model at the
same time on separate threads; nothing merges them into shared batches) and returns the vectors as
Python lists through FastAPI's default JSON response. Over-long inputs are cut at the model's
`max_seq_length` by sentence-transformers itself.

    python benchmarks/peers/naive_st_server.py --model-path /path/to/st-model --port 8001

It binds 127.0.0.1 only. GET /ready answers 200 once the model is loaded (it loads before the
server starts listening).
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer


class EmbeddingRequest(BaseModel):
    model: str
    input: str | list[str]


def build_app(model_path: str, name: str) -> FastAPI:
    model = SentenceTransformer(model_path, device="cpu")
    model.encode(["warm up"])
    app = FastAPI(title="naive sentence-transformers server")

    @app.get("/ready")
    def ready() -> dict:
        return {"status": "ready"}

    @app.post("/v1/embeddings")
    def embeddings(request: EmbeddingRequest) -> dict:
        texts = [request.input] if isinstance(request.input, str) else request.input
        vectors = model.encode(texts, normalize_embeddings=True)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": vector.tolist()}
                for index, vector in enumerate(vectors)
            ],
            "model": name,
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-path", required=True, help="A sentence-transformers model folder.")
    parser.add_argument("--name", default="all-MiniLM-L6-v2", help="Model name echoed in responses.")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build_app(args.model_path, args.name), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
