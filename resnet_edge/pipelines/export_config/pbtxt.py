"""A tiny writer of protobuf text format (what Triton's ``config.pbtxt`` is).

Values: ``dict`` -> a message (``name { ... }``), ``list`` of dicts -> a repeated message
(``name [ {...}, {...} ]``), ``list`` of scalars -> a repeated scalar (``name: [ 1, 2 ]``), ``Enum``
-> a bare enum identifier, ``str`` -> a quoted string, ``bool``/``int``/``float`` as themselves.
A key starting with ``#`` is a comment line. The tests parse the result against Triton's own
``model_config.proto``, so any mistake here fails there.
"""

from __future__ import annotations

import json


class Enum(str):
    """An enum value: written bare (``TYPE_FP32``), not quoted."""


def _scalar(value) -> str:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # protobuf text strings accept JSON's escapes for what we write


def _lines(message: dict, indent: int) -> list[str]:
    pad = "  " * indent
    lines = []
    for key, value in message.items():
        if key.startswith("#"):
            lines += [f"{pad}# {text}" if text else f"{pad}#" for text in str(value).splitlines()]
        elif isinstance(value, dict):
            lines += [f"{pad}{key} {{", *_lines(value, indent + 1), f"{pad}}}"]
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            lines.append(f"{pad}{key} [")
            for position, item in enumerate(value):
                closing = "}," if position < len(value) - 1 else "}"
                lines += [f"{pad}  {{", *_lines(item, indent + 2), f"{pad}  {closing}"]
            lines.append(f"{pad}]")
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: [ {', '.join(_scalar(item) for item in value)} ]")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return lines


def dumps(message: dict) -> str:
    """``message`` as protobuf text, newline-terminated."""
    return "\n".join(_lines(message, 0)) + "\n"
