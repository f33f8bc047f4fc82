"""MkDocs hook: the reference pages that must not drift from the code are generated at build.

`<!-- generated:cli -->` becomes the help of `neurodeploy` and of every verb, from the argument
parser itself (neurodeploy.cli.build_parser); `<!-- generated:schema:module.Model -->` becomes
the fields of that pydantic model, from its JSON Schema (type, default, constraints, description)."""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re

CLI = "<!-- generated:cli -->"
SCHEMA = re.compile(r"<!-- generated:schema:([\w.]+) -->")


def cli_reference() -> str:
    from neurodeploy.cli import build_parser
    parser = build_parser()
    parser.prog = "neurodeploy"
    out = ["## neurodeploy", "", "```text", parser.format_help().rstrip(), "```", ""]
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        out += [f"## neurodeploy {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def _type(spec: dict) -> str:
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in spec:
        return " or ".join(_type(s) for s in spec["anyOf"])
    if "allOf" in spec:
        return " and ".join(_type(s) for s in spec["allOf"])
    if "enum" in spec:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in spec["enum"])
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    kind = spec.get("type", "any")
    if kind == "array":
        items = spec.get("items") or spec.get("prefixItems")
        if isinstance(items, list):
            return "[" + ", ".join(_type(i) for i in items) + "]"
        return f"list of {_type(items)}" if items else "list"
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"map to {_type(spec['additionalProperties'])}"
    return kind


_LIMITS = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
           ("exclusiveMaximum", "<"), ("minLength", "length ≥"), ("maxLength", "length ≤"),
           ("minItems", "items ≥"), ("maxItems", "items ≤"))


def _limits(spec: dict) -> str:
    found = [f"{sign} {spec[key]}" for key, sign in _LIMITS if key in spec]
    for sub in spec.get("anyOf", []):
        found += [f"{sign} {sub[key]}" for key, sign in _LIMITS if key in sub]
    return ", ".join(found)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(title: str, schema: dict, level: str) -> list[str]:
    lines = [f"{level} {title}", ""]
    if schema.get("description"):
        lines += [schema["description"].strip(), ""]
    props = schema.get("properties", {})
    if not props:
        return lines
    required = set(schema.get("required", []))
    lines += ["| field | type | default | limits | description |", "|---|---|---|---|---|"]
    for name, spec in props.items():
        default = ("required" if name in required else
                   f"`{json.dumps(spec['default'])}`" if "default" in spec else "")
        lines.append(f"| `{name}` | {_cell(_type(spec))} | {_cell(default)} | "
                     f"{_cell(_limits(spec))} | {_cell(spec.get('description', ''))} |")
    extra = schema.get("additionalProperties")
    lines += ["", "Other fields: " + ("refused." if extra is False else "allowed."), ""]
    return lines


def _comments(model) -> dict[str, str]:
    """Field -> the comment after it in the class body (or in a base class of ours, for an
    inherited field), for fields with no description."""
    notes = {}
    for cls in reversed(getattr(model, "__mro__", (model,))):
        if not cls.__module__.startswith("neurodeploy"):
            continue
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        notes |= {m[1]: m[2].strip()
                  for m in re.finditer(r"^    (\w+): [^#\n]*#\s*(.+)$", source, re.M)}
    return notes


def _describe(schema: dict, model) -> None:
    """Fill missing descriptions from the source comments of the model and its sub-models."""
    models = {model.__name__: model}
    for field in getattr(model, "model_fields", {}).values():
        for sub in getattr(field.annotation, "__args__", ()) + (field.annotation,):
            if hasattr(sub, "model_fields"):
                models[sub.__name__] = sub
    for name, spec in [(model.__name__, schema), *schema.get("$defs", {}).items()]:
        notes = _comments(models[name]) if name in models else {}
        for field, prop in spec.get("properties", {}).items():
            if not prop.get("description") and field in notes:
                prop["description"] = notes[field]


def schema_reference(path: str) -> str:
    module, name = path.rsplit(".", 1)
    model = getattr(importlib.import_module(module), name)
    schema = model.model_json_schema()
    _describe(schema, model)
    lines = _table(f"{name} (`{path}`)", schema, "###")
    for sub, spec in schema.get("$defs", {}).items():
        if spec.get("type") == "object" or "properties" in spec:
            lines += _table(sub, spec, "####")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI in markdown:
        markdown = markdown.replace(CLI, cli_reference())
    return SCHEMA.sub(lambda m: schema_reference(m.group(1)), markdown)
