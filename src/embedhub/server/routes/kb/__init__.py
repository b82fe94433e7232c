"""Knowledge-base REST API, one module per resource: collections (and their sharing), files
(uploads), failures (kept until dismissed), folders (on the server), jobs (with Server-Sent
Events), documents (file, page images, chunks), search and answers. `router` holds them all, in that order."""

from __future__ import annotations

from fastapi import APIRouter

from embedhub.server.routes.kb import collections, documents, failures, files, folders, jobs, search

router = APIRouter()
for module in (collections, files, failures, folders, jobs, documents, search):
    router.include_router(module.router)
