"""Collections: list, create, read and drop them, and who they are shared with."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from embedhub.accounts.roles import Level
from embedhub.errors import InvalidInputError
from embedhub.server.deps import (
    AUTH,
    Allowed,
    GuardDep,
    JobsDep,
    KnowledgeBaseDep,
    Manageable,
    PrincipalDep,
    ReadyHubDep,
    Viewable,
)
from embedhub.server.errors import ERRORS_DOC
from embedhub.server.schemas import (
    CollectionAccessInfo,
    CollectionCreate,
    CollectionDropped,
    CollectionInfo,
    CollectionList,
    ShareRequest,
)

router = APIRouter(prefix="/v1", dependencies=AUTH, tags=["knowledge base"], responses=ERRORS_DOC)


NETWORK_SCHEMES = ("http://", "https://", "tcp://", "grpc://")


def _info(guard, allowed: Allowed) -> dict:
    """A collection's info with its owner and the caller's access level."""
    access = guard.describe(allowed.principal, allowed.collection, allowed.level)
    return {**allowed.collection.info(), "owner": access["owner"], "you": allowed.level}


@router.get("/collections", response_model=CollectionList)
async def list_collections(guard: GuardDep, principal: PrincipalDep) -> dict:
    """The collections the caller may see (accounts off: all)."""
    visible = guard.visible(principal)
    return {"data": [_info(guard, Allowed(collection, level, principal)) for collection, level in visible]}


@router.post("/collections", status_code=201, response_model=CollectionInfo)
async def create_collection(
    body: CollectionCreate, kb: KnowledgeBaseDep, hub: ReadyHubDep, guard: GuardDep, principal: PrincipalDep
) -> dict:
    guard.check_create(principal)
    if body.store_uri is not None and not body.store_uri.startswith(NETWORK_SCHEMES):
        # a file URI would let a client write a Milvus Lite database anywhere on the server's disk
        raise InvalidInputError(
            f"store_uri must be a server address ({', '.join(NETWORK_SCHEMES)}); leave it out for a "
            "Milvus Lite file in the collection folder"
        )
    service = hub.get(body.model) if body.model else hub.services[hub.names()[0]]
    collection = await asyncio.to_thread(
        kb.create,
        body.name,
        service.encoder,
        model_reference=service.spec.name,
        dimensions=body.dimensions,
        instruction=body.instruction,
        lexical_language=body.lexical_language,
        store=body.store,
        store_uri=body.store_uri,
        chunk_tokens=body.chunk_tokens,
        chunk_overlap=body.chunk_overlap,
    )
    guard.created(principal, collection)
    return _info(guard, Allowed(collection, guard.level(principal, collection) or Level.ADMIN, principal))


@router.get("/collections/{name}", response_model=CollectionInfo)
async def get_collection(name: str, allowed: Viewable, guard: GuardDep) -> dict:
    return _info(guard, allowed)


@router.delete("/collections/{name}", response_model=CollectionDropped)
async def drop_collection(
    name: str, allowed: Manageable, kb: KnowledgeBaseDep, jobs: JobsDep, guard: GuardDep
) -> dict:
    """Cancel the collection's jobs (waiting for running ones to roll back), then drop it (its
    owner or an admin)."""
    await asyncio.to_thread(jobs.cancel_collection, name)
    await asyncio.to_thread(kb.drop, name)
    jobs.forget_collection(name)
    guard.dropped(allowed.principal, name)
    return {"dropped": name}


@router.get("/collections/{name}/access", response_model=CollectionAccessInfo)
async def get_access(name: str, allowed: Viewable, guard: GuardDep) -> dict:
    """Who owns the collection, whom it is shared with, and the caller's own level."""
    return guard.describe(allowed.principal, allowed.collection, allowed.level)


@router.put("/collections/{name}/access/shares", response_model=CollectionAccessInfo)
async def put_share(name: str, body: ShareRequest, allowed: Manageable, guard: GuardDep) -> dict:
    """Share the collection with a user or a group as viewer (read, search, ask) or editor (also
    upload and delete documents); sharing again changes the role. Its owner or an admin."""
    return guard.share(allowed.principal, name, body.kind, body.name, body.role)


@router.delete("/collections/{name}/access/shares/{kind}/{member}", response_model=CollectionAccessInfo)
async def delete_share(name: str, kind: str, member: str, allowed: Manageable, guard: GuardDep) -> dict:
    """Stop sharing the collection with a user or group. Its owner or an admin."""
    return guard.unshare(allowed.principal, name, kind, member)
