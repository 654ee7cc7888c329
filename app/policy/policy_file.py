"""Reading a policy file: YAML, then a pydantic model, with errors that name the file and the line.

The YAML is composed first (nodes keep their line), then validated; a pydantic error's location is walked
down the node tree so the message points at the line of the offending key, as a merchant editing the file
sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from app.domain import Percent

Model = TypeVar("Model", bound=BaseModel)


class PolicyFileError(Exception):
    """A policy, routing table or reply template that cannot be used; raised at start-up or on a draft."""

    def __init__(self, source: str, problem: str, *, line: int | None = None) -> None:
        where = f"{source}: line {line}" if line is not None else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.problem = problem
        self.line = line  # 1-based: the line of the first problem, when one is known


def _no_float(value: object) -> object:
    # YAML reads 20.10 as a float, which is already inexact (and "2026.10" as 2026.1): ask for a string.
    if isinstance(value, float):
        raise ValueError(f"write {value!r} as a quoted string (e.g. '20.00') so it stays an exact decimal")
    return value


ExactDecimal = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0)]
ExactPercent = Annotated[Percent, BeforeValidator(_no_float)]


def read_policy_file(path: Path | Traversable, model: type[Model]) -> Model:
    """The file at `path` validated as `model`, or `PolicyFileError` naming the file, line and problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(source, f"cannot be read ({exc})") from exc
    return parse_policy(text, model, source=source)


def parse_policy(text: str, model: type[Model], *, source: str) -> Model:
    """`text` (YAML) validated as `model`; `source` names it in errors (a path, or "draft")."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        line, problem = _yaml_problem(exc)
        raise PolicyFileError(source, f"is not valid YAML ({problem})", line=line) from exc
    if not isinstance(root, yaml.MappingNode):
        raise PolicyFileError(
            source, "must hold a mapping (key: value lines) at the top level", line=_line(root)
        )
    duplicate = _first_duplicate_key(root)
    if duplicate is not None:
        # PyYAML keeps the last of two equal keys without a word: a merchant would never see the first go.
        raise PolicyFileError(source, f"key {duplicate.value!r} appears twice", line=_line(duplicate))
    try:
        data = yaml.SafeLoader(text).get_single_data()
    except yaml.YAMLError as exc:  # a tag or value the safe loader refuses
        line, problem = _yaml_problem(exc)
        raise PolicyFileError(source, f"is not valid YAML ({problem})", line=line) from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        located = [(_line(_node_at(root, error["loc"])), error) for error in exc.errors()]
        problems = "; ".join(f"line {line}: {_path(error['loc'])}: {error['msg']}" for line, error in located)
        raise PolicyFileError(source, f"is not valid ({problems})", line=located[0][0]) from exc


def _yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return None, str(problem)
    return mark.line + 1, f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _line(node: yaml.Node | None) -> int | None:
    return None if node is None else node.start_mark.line + 1


def _node_at(root: yaml.Node, loc: Sequence[int | str]) -> yaml.Node:
    """The node `loc` points at: the key it names last (its line is where the merchant looks), an item
    of a list, or the mapping that lacks the key. Parts that are not keys or indexes (pydantic's names
    for union members and validators) are skipped.
    """
    node, at = root, root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next((pair for pair in node.value if pair[0].value == str(part)), None)
            if pair is not None:
                at, node = pair
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            at = node = node.value[part]
    return at


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _first_duplicate_key(node: yaml.Node) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            if key.value in seen:
                return key  # type: ignore[no-any-return]
            seen.add(key.value)
            found = _first_duplicate_key(value)
            if found is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = _first_duplicate_key(item)
            if found is not None:
                return found
    return None
