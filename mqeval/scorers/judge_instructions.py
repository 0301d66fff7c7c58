"""Judge instructions read from an official evaluation script, not copied into mqeval.

For a judged score to be comparable, the judge must see the official instruction text word for word. Where that
text has no licence that lets mqeval ship it, mqeval downloads the official script at run time (pinned to a commit
and checked by hash; see mqeval.downloads) and reads the instruction out of its syntax tree: string
literals and f-strings become a template whose `{placeholders}` are the f-string's fields
(`{prompt_data['Prompt']}` -> `{Prompt}`, `{description1}` -> `{description1}`). Nothing in the script runs.
"""
from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mqeval.errors import DataIntegrityError


@dataclass(frozen=True)
class InstructionTemplate:
    user: str  # str.format template
    system: Optional[str] = None
    version: str = ""  # identifies the source text; part of the judge cache key

    def render(self, **fields: str) -> str:
        return self.user.format(**fields)

    @property
    def fields(self) -> list[str]:
        import string

        return [name for _, name, _, _ in string.Formatter().parse(self.user) if name]


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _field_name(node: ast.expr, constants: dict[str, str], where: str) -> str:
    """Template text for one f-string field."""
    if isinstance(node, ast.Name):
        return _escape(constants[node.id]) if node.id in constants else "{" + node.id + "}"
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return "{" + node.slice.value + "}"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
        # e.g. {description1.strip()}: keep the field, the caller formats the value
        return "{" + node.func.value.id + "}"
    raise DataIntegrityError(f"{where}: unsupported f-string field {ast.dump(node)[:120]}")


def template_of(node: ast.expr, constants: dict[str, str], where: str) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _escape(node.value)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(_escape(value.value))
            elif isinstance(value, ast.FormattedValue) and value.conversion == -1 and value.format_spec is None:
                parts.append(_field_name(value.value, constants, where))
            else:
                raise DataIntegrityError(f"{where}: unsupported f-string part {ast.dump(value)[:120]}")
        return "".join(parts)
    raise DataIntegrityError(f"{where}: expected a string literal or f-string, found {type(node).__name__}")


def _function(source: str, name: str, where: str) -> ast.FunctionDef:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise DataIntegrityError(f"{where}: function {name}() not found")


def _string_constants(function: ast.FunctionDef) -> dict[str, str]:
    """Local names assigned a plain string literal (e.g. degree = 'generally')."""
    out: dict[str, str] = {}
    for node in ast.walk(function):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            out[node.targets[0].id] = node.value.value
    return out


def message_texts(source: str, function: str, where: str = "judge script") -> list[str]:
    """Templates of every `{"type": "text", "text": ...}` part in `function`, in source order."""
    fn = _function(source, function, where)
    constants = _string_constants(fn)
    texts = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "text" and value is not None:
                    texts.append((value.lineno, value.col_offset, template_of(value, constants, where)))
    return [text for _, _, text in sorted(texts)]


def assigned_template(source: str, function: str, variable: str, where: str = "judge script") -> str:
    """Template of the string assigned to `variable` inside `function`."""
    fn = _function(source, function, where)
    constants = _string_constants(fn)
    for node in ast.walk(fn):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == variable):
            return template_of(node.value, constants, where)
    raise DataIntegrityError(f"{where}: no assignment to {variable} in {function}()")


def source_version(path: str | Path, label: str) -> str:
    return f"{label}@{hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]}"
