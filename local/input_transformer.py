"""EventBridge's input transformer, as the local world's bridge applies it to a rule's target.

Written here because moto's copy substitutes a value's raw text wherever a placeholder stands
(docs/reference/tooling.md §3), so a JSON template with a placeholder in value position gives
invalid JSON, where EventBridge writes the value as JSON: a string quoted and escaped, an
object or array as itself (docs/reference/aws.md §H.45). Inside a JSON string EventBridge
inserts the text unescaped. A path the event does not have gives an empty string (H.45,
UNCONFIRMED by AWS). Only the dot-notation paths the template uses are supported; anything
else is refused, so a template change cannot silently test nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_PATH = re.compile(r"\$(\.[A-Za-z0-9_\-]+)+")
_MISSING = object()


def _extract(event: Mapping[str, Any], path: str) -> Any:
    if not _PATH.fullmatch(path):
        raise ValueError(f"unsupported input path {path!r}: dot notation only")
    value: Any = event
    for part in path[2:].split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def apply(transformer: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
    """What the target receives: the rendered ``InputTemplate``, parsed as JSON."""
    values = {
        name: _extract(event, path) for name, path in transformer.get("InputPathsMap", {}).items()
    }
    template: str = transformer["InputTemplate"]
    out: list[str] = []
    in_string = escaped = False
    index = 0
    while index < len(template):
        char = template[index]
        match = _PLACEHOLDER.match(template, index) if char == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if in_string:
                out.append("" if value is _MISSING else _text(value))
            else:
                out.append(json.dumps("" if value is _MISSING else value))
            index = match.end()
            continue
        out.append(char)
        if in_string and not escaped and char == '"':
            in_string = False
        elif not in_string and char == '"':
            in_string = True
        escaped = in_string and char == "\\" and not escaped
        index += 1
    return json.loads("".join(out))
