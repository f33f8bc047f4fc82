"""Reading user files (recipes, presets, reports), the field types their schemas share, and
turning schema errors into one line.

Every input file goes through pydantic models; a `ValidationError` lists every problem with
pydantic's own wording, which is long and multi-line. The CLI contract is one line naming the
file, the field and the fix, so `one_line` picks the first problem and words it for a user.
"""
from __future__ import annotations

import re
import typing
from pathlib import Path

import typing_extensions
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neurodeploy.errors import UserError

# Field types several schemas share (recipes, network metadata, energy reports).
MAX_TIMESTEPS = 4096        # steps per sample, wherever T is given: recipes, files, reports
Timesteps = typing.Annotated[int, Field(ge=1, le=MAX_TIMESTEPS)]
Levels = typing.Annotated[int, Field(ge=1, le=256)]     # thermometer channels per input
Section = dict[str, typing.Any]   # a file's section, built and described where it is computed
# A written file's models: strict types, no NaN or Infinity (not JSON), other keys pass through
# (`written` refuses undeclared sections; a reader takes an older file's extra keys).
OPEN = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)


class Generated(BaseModel):
    """When and with what a file was made (`report.summary.generated`); every record carries it."""
    model_config = ConfigDict(strict=True, extra="allow")
    date: str
    versions: dict[str, str | None]        # files.versions(): None where not installed


_TYPES = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
          "string_type": "a string", "list_type": "a list", "dict_type": "a mapping",
          "model_type": "a mapping", "finite_number": "a finite number",
          "int_from_float": "an integer"}
_BOUNDS = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
           "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}


def written(model: type[BaseModel], data: dict) -> dict:
    """`data` as the file `model` describes is written: validated by the model its reader uses
    (a writer's mistake fails here, not in a user's hands), every section one the model
    declares, and the keys given in their order, no defaults added (`exclude_unset`)."""
    built = model.model_validate(data)
    if built.model_extra:
        raise ValueError(f"{model.__name__}: sections {sorted(built.model_extra)} are not "
                         "declared; add them to the model")
    return _in_order(built.model_dump(exclude_unset=True), data)


def _in_order(dumped, given):
    """`dumped` with its mappings' keys in the order of `given` (a dump lists fields first)."""
    if isinstance(dumped, dict) and isinstance(given, dict):
        return {key: _in_order(dumped[key], given[key]) for key in given}
    if isinstance(dumped, list) and isinstance(given, (list, tuple)):
        return [_in_order(d, g) for d, g in zip(dumped, given)]
    return dumped


def read_text(path: Path, what: str) -> str:
    """A file's text as UTF-8; anything else is a UserError naming the file."""
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a {what}; give the file itself")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read this {what} ({e.strerror or e})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                        f"{e.start}); save the {what} as UTF-8") from None


class _UniqueKeys(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error: PyYAML keeps
    the last value silently, so `epochs: 40` further down would undo an edit above it."""


def _mapping(loader: _UniqueKeys, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":    # `<<: *base` then overriding a key
            continue                                      # of base repeats it on purpose
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.setdefault(key, key_node)
        except TypeError:                         # an unhashable key: PyYAML says so below
            continue
        if first is not key_node:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice in one mapping (line "
                f"{first.start_mark.line + 1} and line {key_node.start_mark.line + 1}); keep "
                "one", key_node.start_mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml(path: Path, what: str):
    try:
        return yaml.load(read_text(path, what), Loader=_UniqueKeys)   # noqa: S506 (safe)
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    except RecursionError:
        raise UserError(f"{path}: not a {what} (nested too deeply)") from None


def one_of(name: str, known: list[str], what: str) -> str:
    """`name` if it is in `known`, else the ValueError a pydantic validator turns into one line."""
    if name not in known:
        raise ValueError(f"unknown {what} {name!r}; available: {', '.join(known)}")
    return name


def dotted(loc: tuple) -> str:
    """('student', 'conv', 0, 'channels') -> 'student.conv[0].channels'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields(tp) -> dict:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {k: f.annotation for k, f in tp.model_fields.items()}
    if typing_extensions.is_typeddict(tp):
        return typing.get_type_hints(tp)
    return {}


def known_keys(model: type, loc: tuple) -> list[str]:
    """The keys allowed in the mapping at `loc` (models and TypedDicts, through lists)."""
    tp = model
    for part in loc:
        if not isinstance(part, int):
            tp = _fields(tp).get(part)
        while typing.get_origin(tp) in (list, typing.Annotated):
            tp = typing.get_args(tp)[0]
    return sorted(_fields(tp))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def yaml_number(value) -> str:
    """YAML 1.1 reads 1e3 as text; say so when a number was expected and such text came."""
    try:
        float(value) if isinstance(value, str) else None
    except ValueError:
        return ""
    return " (YAML reads 1e3 as text: write 1.0e+3)" if isinstance(value, str) else ""


def problem(err: dict, model: type, yaml: bool = True) -> tuple[str, str]:
    """(dotted path, what is wrong) for one pydantic error; `yaml`: the file is YAML."""
    loc, kind, ctx = tuple(err["loc"]), err["type"], err.get("ctx", {})
    got = f", got {_short(err['input'])}" if "input" in err else ""
    if kind == "extra_forbidden":
        return dotted(loc[:-1]), (f"unknown key {loc[-1]!r}; known: "
                                  f"{', '.join(known_keys(model, loc[:-1]))}")
    if kind == "invalid_key":
        return dotted(loc[:-1]), f"key {loc[-1]!r} is not a name; keys are words like `epochs`"
    if kind in ("value_error", "assertion_error"):
        return dotted(loc), err["msg"].split(", ", 1)[-1]
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        return dotted(loc), f"must be {op} {ctx.get(key)}{got}"
    if kind in _TYPES:
        hint = yaml_number(err.get("input")) if yaml else ""
        return dotted(loc), f"must be {_TYPES[kind]}{got}{hint}"
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        bound = ctx.get("min_length", ctx.get("max_length"))
        noun = "characters" if "string" in kind else "entries"
        return dotted(loc), (f"must have {'at least' if 'short' in kind else 'at most'} "
                             f"{bound} {noun}{got}")
    if kind == "string_pattern_mismatch":
        return dotted(loc), f"must match {ctx.get('pattern')}{got}"
    if kind == "literal_error":
        return dotted(loc), f"must be one of {ctx.get('expected')}{got}"
    message = err["msg"]
    return dotted(loc), f"{message[:1].lower()}{message[1:]}{got}"


def first_problem(error: ValidationError, model: type) -> tuple[str, str]:
    """(dotted path, what is wrong) of a JSON file's first validation problem: a missing field
    is just "missing" (the field path already names it)."""
    err = error.errors(include_url=False)[0]
    path, what = problem(err, model, yaml=False)
    return path, "missing" if err["type"] == "missing" else what


def one_line(error: ValidationError, where: str, model: type, hints: dict | None = None,
             last: tuple = ()) -> str:
    """`<where>: <field.path>: <what is wrong>[; <why/fix>]` for the first problem.

    Errors whose location is in `last` are reported only when nothing else is wrong, so a
    missing `name:` does not hide the real mistake further down a recipe."""
    errors = error.errors(include_url=False)
    first = next((e for e in errors if tuple(e["loc"]) not in last), errors[0])
    path, what = problem(first, model)
    bare = re.sub(r"\[\d+\]", "", path)
    hint = next((h for k, h in (hints or {}).items()
                 if bare == k or (k.startswith(".") and bare.endswith(k))), "")
    if first["type"] == "missing":
        what = "missing"
        hint = hint or "add it"
    text = f"{where}: {path}: {what}" if path else f"{where}: {what}"
    return " ".join(f"{text}; {hint}".split() if hint else text.split())
