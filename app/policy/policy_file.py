"""Reading a policy file: YAML, then a pydantic model, with errors that name the file and the line.

The YAML is composed first (nodes keep their line) by ruamel.yaml's safe, pure-Python loader, within
bounds a hostile draft cannot stretch: its size, its nesting, and what its aliases expand to, counted
before anything is expanded. The nodes are then constructed (a key given twice is refused) and validated;
a pydantic error's location is walked down the node tree so the message points at the line of the
offending key, as a merchant editing the file sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, ComposerError, MaxDepthExceededError
from ruamel.yaml.constructor import ConstructorError, DuplicateKeyError, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scanner import Scanner

from app.domain import Percent

Model = TypeVar("Model", bound=BaseModel)

# A policy is a few kilobytes with a handful of levels; these leave room for any honest file and none
# for a draft built to make the loader or the validator work without end.
MAX_CHARS = 65_536
MAX_DEPTH = 32
MAX_VALUES = 50_000  # scalars, lists and mappings, once every alias is expanded: what validation walks
MAX_DAYS = 3_660  # ten years: longer is a typo, and dates that far out leave the calendar


class PolicyFileError(Exception):
    """A policy, routing table or reply template that cannot be used; raised at start-up or on a draft."""

    def __init__(self, source: str, problem: str, *, line: int | None = None) -> None:
        where = f"{source}: line {line}" if line is not None else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.problem = problem
        self.line = line  # 1-based: the line of the first problem, when one is known

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword arguments do not survive pickling by default; a draft is read in a worker process.
        return _policy_file_error, (self.source, self.problem, self.line)


def _policy_file_error(source: str, problem: str, line: int | None) -> PolicyFileError:
    return PolicyFileError(source, problem, line=line)


def _no_float(value: object) -> object:
    # YAML reads 20.10 as a float, which is already inexact (and "2026.10" as 2026.1): ask for a string.
    if isinstance(value, float):
        raise ValueError(f"write {value!r} as a quoted string (e.g. '20.00') so it stays an exact decimal")
    return value


ExactDecimal = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0)]
ExactPercent = Annotated[Percent, BeforeValidator(_no_float)]
Days = Annotated[int, Field(gt=0, le=MAX_DAYS)]


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
    root, data = _load(text, source)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        located = [(_line(_node_at(root, error["loc"])), error) for error in exc.errors()]
        problems = "; ".join(f"line {line}: {_path(error['loc'])}: {error['msg']}" for line, error in located)
        raise PolicyFileError(source, f"is not valid ({problems})", line=located[0][0]) from exc


def read_yaml(text: str, *, source: str) -> Any:
    """The data in `text`, read as a policy file is (same bounds, same errors), before validation."""
    return _load(text, source)[1]


def _load(text: str, source: str) -> tuple[Node, Any]:
    if len(text) > MAX_CHARS:
        raise PolicyFileError(
            source, f"is {len(text):,} characters long; a policy holds at most {MAX_CHARS:,}"
        )
    yaml = YAML(typ="safe", pure=True)
    yaml.Scanner = _BoundedScanner
    yaml.Composer = _BoundedComposer
    yaml.Constructor = _PolicyConstructor
    yaml.max_depth = MAX_DEPTH
    try:
        root = yaml.compose(text)
        if not isinstance(root, MappingNode):
            raise PolicyFileError(
                source, "must hold a mapping (key: value lines) at the top level", line=_line(root)
            )
        data = yaml.constructor.construct_document(root)
    except DuplicateKeyError as exc:
        raise PolicyFileError(source, str(exc.problem), line=_mark_line(exc)) from exc
    except MaxDepthExceededError as exc:
        problem = f"nests deeper than {MAX_DEPTH} levels"
        raise PolicyFileError(source, problem, line=_mark_line(exc)) from exc
    except YAMLError as exc:
        line, problem = _yaml_problem(exc)
        raise PolicyFileError(source, f"is not valid YAML ({problem})", line=line) from exc
    return root, data


class _BoundedComposer(Composer):
    """Counts the values the document stands for with every alias expanded, as it composes (an alias
    costs the size of what it names, counted once per anchor), and refuses an alias to a collection
    that is still open: a document that contains itself has no end to validate.
    """

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._values = 0
        self._sizes: dict[int, int] = {}  # id of an anchored node -> its size, aliases expanded

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        node = super().compose_node(parent, index)
        self._values += self._size(node) if isinstance(event, AliasEvent) else 1
        if self._values > MAX_VALUES:
            raise ComposerError(
                None,
                None,
                f"stands for more than {MAX_VALUES:,} values once its aliases are expanded",
                event.start_mark,
            )
        return node

    def return_alias(self, node: Any) -> Any:
        if isinstance(node, (SequenceNode, MappingNode)) and node.end_mark is None:
            raise ComposerError(
                None, None, f"the alias *{node.anchor} is inside the value it names", node.start_mark
            )
        return node

    def _size(self, node: Node) -> int:
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, SequenceNode):
            size = 1 + sum(self._size(item) for item in node.value)
        elif isinstance(node, MappingNode):
            size = 1 + sum(self._size(key) + self._size(value) for key, value in node.value)
        else:
            size = 1
        self._sizes[id(node)] = size
        return size


class _BoundedScanner(Scanner):
    """Refuses flow collections (`[`, `{`) nested deeper than the bound as it meets them: the scanner
    reads ahead to the end of an open flow collection, which for 20,000 `[` is most of the file.
    """

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise MaxDepthExceededError(None, None, "too deep", self.reader.get_mark())
        super().fetch_flow_collection_start(TokenClass, to_push)


class _PolicyConstructor(SafeConstructor):
    """The safe constructor, with the refusals said the way a merchant reads them."""

    def check_mapping_key(self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any) -> bool:
        # The library refuses a second equal key too, but its message quotes both values in full.
        if key in mapping:
            raise DuplicateKeyError(None, None, f"key {key!r} appears twice", key_node.start_mark)
        return True

    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)
        except (ValueError, OverflowError) as exc:  # a 5,000-digit integer, a 13th month
            value = node.value if isinstance(node, ScalarNode) else ""
            shown = value if len(value) <= 24 else f"{value[:20]}... ({len(value):,} characters)"
            why = str(exc).split(";")[0]  # Python's advice on raising its own limits is not the merchant's
            raise ConstructorError(None, None, f"{shown!r} cannot be read: {why}", node.start_mark) from exc


def _mark_line(exc: MarkedYAMLError) -> int | None:
    mark = exc.problem_mark or exc.context_mark
    return None if mark is None else int(mark.line) + 1


def _yaml_problem(exc: YAMLError) -> tuple[int | None, str]:
    if not isinstance(exc, MarkedYAMLError) or exc.problem_mark is None:
        return None, str(getattr(exc, "problem", None) or exc)
    mark = exc.problem_mark
    return mark.line + 1, f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"


def _line(node: Node | None) -> int | None:
    return None if node is None else int(node.start_mark.line) + 1


def _node_at(root: Node, loc: Sequence[int | str]) -> Node:
    """The node `loc` points at: the key it names last (its line is where the merchant looks), an item
    of a list, or the mapping that lacks the key. Parts that are not keys or indexes (pydantic's names
    for union members and validators) are skipped.
    """
    node, at = root, root
    for part in loc:
        if isinstance(node, MappingNode):
            pair = next((pair for pair in node.value if pair[0].value == str(part)), None)
            if pair is not None:
                at, node = pair
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            at = node = node.value[part]
    return at


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"
