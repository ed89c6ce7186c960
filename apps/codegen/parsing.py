"""What tree-sitter tells the completion app about source code: definitions, imports, chunks, errors."""
from __future__ import annotations

import re
from dataclasses import dataclass

import tree_sitter

from apps.codegen.languages import LANGUAGES, parser

MAX_DEFINITION_CHARS = 2_000
CHUNK_LINES = 20  # lines per retrieval chunk
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Definition:
    name: str
    kind: str  # "function", "class", "method", ...
    signature: str  # the header, without the body
    docstring: str
    start_line: int  # 1-based
    end_line: int
    text: str  # the whole definition, cut at MAX_DEFINITION_CHARS


@dataclass(frozen=True)
class Chunk:
    start_line: int
    end_line: int
    text: str


def parse(language: str, source: str) -> tree_sitter.Tree:
    return parser(language).parse(source.encode("utf-8"))


def _name(node: tree_sitter.Node) -> str | None:
    """The declared name: the `name` field, or for C/C++ the identifier inside the declarator."""
    name = node.child_by_field_name("name")
    if name is not None:
        return name.text.decode("utf-8", "replace")
    declarator = node.child_by_field_name("declarator")
    while declarator is not None:
        if declarator.type in ("identifier", "field_identifier", "qualified_identifier", "destructor_name",
                               "operator_name"):
            return declarator.text.decode("utf-8", "replace")
        declarator = declarator.child_by_field_name("declarator") or next(
            (c for c in declarator.named_children if c.type.endswith("identifier")), None)
    return None


def _signature(node: tree_sitter.Node, source: bytes) -> str:
    body = node.child_by_field_name("body")
    end = body.start_byte if body is not None else node.end_byte
    header = source[node.start_byte:end].decode("utf-8", "replace").strip()
    return header[:500]


def _docstring(node: tree_sitter.Node) -> str:
    body = node.child_by_field_name("body")
    if body is not None and body.named_child_count:  # Python: a string as the first statement
        first = body.named_children[0]
        if first.type == "expression_statement" and first.named_child_count and first.named_children[0].type == "string":
            return first.named_children[0].text.decode("utf-8", "replace").strip("\"' \n")[:500]
    comments = []
    sibling = node.prev_named_sibling
    while sibling is not None and "comment" in sibling.type and sibling.end_point[0] >= node.start_point[0] - len(comments) - 1:
        comments.insert(0, sibling.text.decode("utf-8", "replace"))
        sibling = sibling.prev_named_sibling
    return "\n".join(comments)[:500]


def definitions(language: str, source: str) -> list[Definition]:
    spec = LANGUAGES[language]
    data = source.encode("utf-8")
    found: list[Definition] = []

    def visit(node: tree_sitter.Node) -> None:
        kind = spec.definitions.get(node.type)
        if kind == "variable":  # only `const f = () => ...` style functions count
            value = node.child_by_field_name("value")
            kind = "function" if value is not None and value.type in ("arrow_function", "function_expression",
                                                                         "function") else None
        if kind:
            name = _name(node)
            if name:
                text = data[node.start_byte:node.end_byte].decode("utf-8", "replace")
                found.append(Definition(name, kind, _signature(node, data), _docstring(node),
                                        node.start_point[0] + 1, node.end_point[0] + 1, text[:MAX_DEFINITION_CHARS]))
        for child in node.named_children:
            visit(child)

    visit(parse(language, source).root_node)
    return found


def imports(language: str, source: str) -> list[str]:
    """The import statements as written."""
    spec = LANGUAGES[language]
    root = parse(language, source).root_node
    found = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in spec.imports:
            found.append(node.text.decode("utf-8", "replace").strip())
        elif language == "ruby" and _is_require(node):
            found.append(node.text.decode("utf-8", "replace").strip())
        else:
            stack.extend(reversed(node.named_children))
    return found


def _is_require(node: tree_sitter.Node) -> bool:
    method = node.child_by_field_name("method") if node.type == "call" else None
    return method is not None and method.text in (b"require", b"require_relative")


def chunks(source: str, lines_per_chunk: int = CHUNK_LINES) -> list[Chunk]:
    """Overlapping windows of lines (half a window apart) for snippet retrieval."""
    lines = source.splitlines()
    step = max(1, lines_per_chunk // 2)
    return [Chunk(start + 1, min(len(lines), start + lines_per_chunk), "\n".join(lines[start:start + lines_per_chunk]))
            for start in range(0, max(1, len(lines) - step), step) if "\n".join(lines[start:start + lines_per_chunk]).strip()]


def error_count(language: str, source: str) -> int:
    """ERROR and MISSING nodes in the parse: 0 for syntactically valid code."""
    count = 0
    stack = [parse(language, source).root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        if node.has_error:
            stack.extend(node.children)
    return count


def code_tokens(text: str) -> list[str]:
    """Identifiers, also split at underscores and camelCase humps: `parseConfig` → parseconfig, parse, config."""
    tokens = []
    for identifier in IDENTIFIER.findall(text):
        tokens.append(identifier.lower())
        parts = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", identifier.replace("_", " "))
        if len(parts) > 1:
            tokens.extend(part.lower() for part in parts)
    return tokens
