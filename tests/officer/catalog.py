"""The handheld's message ids, as the code uses them: ``app.tr("...")`` in
the kv files and ``_("...")`` in the Python modules (read by AST, so
implicitly joined strings count as one id)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import officer_app

APP = Path(officer_app.__file__).parent
# app.tr( followed by one Python string literal (kv values are Python).
KV_MESSAGE = re.compile(r"""app\.tr\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")


def kv_messages() -> dict[str, list[str]]:
    """Message id -> the kv files using it."""
    found: dict[str, list[str]] = {}
    for path in sorted(APP.rglob("*.kv")):
        for literal in KV_MESSAGE.findall(path.read_text(encoding="utf-8")):
            found.setdefault(ast.literal_eval(literal), []).append(path.name)
    return found


def python_messages() -> dict[str, list[str]]:
    """Message id -> the modules marking it with ``_()``."""
    found: dict[str, list[str]] = {}
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_"
                    and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                found.setdefault(node.args[0].value, []).append(path.name)
    return found


def used_messages() -> dict[str, list[str]]:
    found = kv_messages()
    for message, where in python_messages().items():
        found.setdefault(message, []).extend(where)
    return found
