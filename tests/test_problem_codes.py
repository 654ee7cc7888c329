"""The committed document's `ProblemCode` lists every code the service can answer."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import httpx

import app
from app.errors import ProblemError

OPENAPI = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def documented_codes() -> set[str]:
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return set(document["components"]["schemas"]["ProblemCode"]["enum"])


def error_classes() -> list[type[ProblemError]]:
    # Every module imported first: an error class defined anywhere in the service counts.
    for found in pkgutil.walk_packages(app.__path__, prefix="app."):
        if not found.name.endswith(".__main__"):  # runs the command line when imported
            importlib.import_module(found.name)
    classes: list[type[ProblemError]] = []
    pending: list[type[ProblemError]] = [ProblemError]
    while pending:
        kind = pending.pop()
        classes.append(kind)
        pending.extend(kind.__subclasses__())
    return classes


def test_every_error_class_code_is_documented() -> None:
    missing = {kind.code for kind in error_classes()} - documented_codes()

    assert not missing, f"run `python -m app openapi > openapi/openapi.json`: {sorted(missing)}"


async def test_the_codes_answered_outside_the_error_classes_are_documented(client: httpx.AsyncClient) -> None:
    unknown_path = await client.get("/v1/nowhere")
    wrong_method = await client.delete("/healthz")

    assert (unknown_path.status_code, wrong_method.status_code) == (404, 405)
    answered = {unknown_path.json()["code"], wrong_method.json()["code"]}
    assert answered == {"not_found", "method_not_allowed"}
    assert answered | {"internal_error", "migrations_pending"} <= documented_codes()
