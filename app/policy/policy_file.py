"""Reading a policy file: YAML through `safe_load`, then a pydantic model, with errors that name the file."""

from __future__ import annotations

from decimal import Decimal
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from app.domain import Percent

Model = TypeVar("Model", bound=BaseModel)


class PolicyFileError(Exception):
    """A policy or reply template that cannot be used; raised at start-up, never while deciding."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


def _no_float(value: object) -> object:
    # YAML reads 20.10 as a float, which is already inexact (and "2026.10" as 2026.1): ask for a string.
    if isinstance(value, float):
        raise ValueError(f"write {value!r} as a quoted string (e.g. '20.00') so it stays an exact decimal")
    return value


ExactDecimal = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0)]
ExactPercent = Annotated[Percent, BeforeValidator(_no_float)]


def read_policy_file(path: Path | Traversable, model: type[Model]) -> Model:
    """The file at `path` validated as `model`, or `PolicyFileError` naming the file and the problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(source, f"cannot be read ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyFileError(source, f"is not valid YAML ({_yaml_problem(exc)})") from exc
    if not isinstance(data, dict):
        raise PolicyFileError(source, "must hold a mapping (key: value lines) at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise PolicyFileError(source, f"is not a valid policy ({problems})") from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
