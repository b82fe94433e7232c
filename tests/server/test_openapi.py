"""The OpenAPI document is compared to a committed snapshot, so every API change is deliberate, and
the knowledge-base response models keep every field of the kb dataclasses they mirror (a field
missing from a response model would silently disappear from the API's JSON).

After a deliberate API change, rewrite the snapshot and review its diff before committing:

    python -m tests.server.test_openapi        # from the repository root
"""

from __future__ import annotations

import dataclasses
import difflib
import json

from embedhub.config import Settings
from embedhub.kb.ask import Answer, Citation, Evidence
from embedhub.kb.collection import CollectionConfig
from embedhub.kb.jobs import Job
from embedhub.kb.manifest import DocumentRecord, Manifest
from embedhub.kb.search import SearchResult
from embedhub.kb.uploads import store_upload
from embedhub.server import schemas
from tests.conftest import ROOT

SNAPSHOT = ROOT / "tests" / "snapshots" / "openapi.json"
REGENERATE = "python -m tests.server.test_openapi"


def openapi_text() -> str:
    """The app's OpenAPI document as stable text: sorted keys, the package version normalised."""
    from embedhub.server.app import create_app

    document = create_app(Settings(), encoders={}).openapi()
    document["info"]["version"] = "VERSION"
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_snapshot() -> None:
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text(openapi_text(), encoding="utf-8")


def test_openapi_matches_the_snapshot():
    current = openapi_text()
    expected = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
    if current != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), current.splitlines(), "snapshot", "app", lineterm="", n=2
        )
        shown = list(diff)
        more = f"\n... {len(shown) - 80} more diff lines" if len(shown) > 80 else ""
        raise AssertionError(
            f"the OpenAPI document differs from {SNAPSHOT.relative_to(ROOT)}. "
            f"If the API change is deliberate, run `{REGENERATE}` from the repository root, review "
            "the snapshot's diff and commit it; otherwise undo the change.\n" + "\n".join(shown[:80]) + more
        )


def test_openapi_describes_every_kb_response():
    document = json.loads(openapi_text())
    for path, operations in document["paths"].items():
        if not path.startswith(("/v1/collections", "/v1/jobs", "/v1/loaders")):
            continue
        for method, operation in operations.items():
            success = next(code for code in operation["responses"] if code.startswith("2"))
            content = operation["responses"][success]["content"]
            schema = next(iter(content.values()))["schema"]
            assert schema.get("$ref") or schema.get("format") == "binary" or "text/event-stream" in content, (
                f"{method.upper()} {path} does not describe its {success} response"
            )


def _fields(model) -> list[str]:
    return list(model.model_fields)


def _dataclass_fields(cls) -> list[str]:
    return [field.name for field in dataclasses.fields(cls)]


def test_kb_response_models_keep_every_field(tmp_path):
    assert _fields(schemas.JobInfo) == _dataclass_fields(Job)
    manifest = Manifest(tmp_path / "manifest.sqlite")
    totals = list(manifest.totals())
    manifest.close()
    assert _fields(schemas.CollectionInfo) == [
        *_dataclass_fields(CollectionConfig),
        *totals,
        "stored_chunks",
        "vector_index",
        "folder",
        "chunker_version",
        "outdated_chunking",
        "rechunk",
        "owner",  # accounts: added by the routes (server/routes/kb/collections.py `_info`)
        "you",
    ]
    outcome = list(store_upload(tmp_path / "uploads", "a.txt", b"text", "keep_both"))
    assert _fields(schemas.UploadedJob) == [*_dataclass_fields(Job), "filename", *outcome]
    assert _fields(schemas.DocumentInfo) == [*_dataclass_fields(DocumentRecord), "name", "relative_path"]
    assert _fields(schemas.DocumentDetail) == _fields(schemas.DocumentInfo)
    result = SearchResult(**dict.fromkeys(_dataclass_fields(SearchResult)))
    assert _fields(schemas.SearchHit) == [*result.to_dict(), "name", "relative_path"]
    evidence = Evidence(1, result, []).to_dict()
    assert sorted(_fields(schemas.EvidenceItem)) == sorted([*evidence, "name", "relative_path"])
    assert _fields(schemas.CitationInfo) == [*_dataclass_fields(Citation), "name", "relative_path"]
    answer = Answer("q", "a", [], [], "no_chat").to_dict()
    assert _fields(schemas.AskResponse) == list(answer)


if __name__ == "__main__":
    write_snapshot()
    print(f"wrote {SNAPSHOT}")
