"""MkDocs hook: the reference pages' tables, made from the code when the site is built, so they
are never written twice. A page holds a marker such as `<!-- reference: cli -->` where its table goes:

- `cli`: every command and option of the typer app, as `--help` shows them;
- `params`: every params.yaml key with its type, range and default (the pydantic models), the
  value params.yaml ships and the comment beside the key in the model's code;
- `spec`: the data set spec's keys, the same way;
- `environment`: the variables of tasks/infra/environment.py.
"""

import inspect
import re
import types
import typing
from pathlib import Path

import yaml

MARKER = re.compile(r"<!-- reference: (\w+) -->")
FIELD_LINE = re.compile(r"^\s+(\w+)\s*:[^#]*?(?:#\s*(.*))?$")
ROOT = Path(__file__).resolve().parents[2]


def on_page_markdown(markdown: str, page, config, files) -> str:
    return MARKER.sub(lambda m: GENERATORS[m[1]](), markdown)


def cli() -> str:
    import click
    import typer

    from flows.cli.app import app

    root = typer.main.get_command(app)
    out = []
    for path, command in _commands(root, ["mlpipe"]):
        context = click.Context(command, info_name=" ".join(path))
        out.append(f"## `{' '.join(path)}`\n\n```text\n{command.get_usage(context)}\n```\n")
        out.append(inspect.cleandoc(command.help or "") + "\n")
        rows = [record for param in command.get_params(context) if (record := param.get_help_record(context))]
        if rows:
            out.append("| option | what it does |\n|---|---|")
            out += [f"| `{_cell(opts)}` | {_cell(help_text)} |" for opts, help_text in rows]
            out.append("")
    return "\n".join(out)


def _commands(command, path):
    yield path, command
    for name in getattr(command, "list_commands", lambda _: [])(None):
        yield from _commands(command.commands[name], [*path, name])


def params() -> str:
    from tasks.infra.params import FamilyParams, NetworkParams, ProjectParams

    text = (ROOT / "params.yaml").read_text()
    rows = _rows(ProjectParams, "", yaml.safe_load(text), skip={"families"}, notes=_yaml_comments(text))
    head = "| key | type | range | default | in params.yaml | what it does |\n|---|---|---|---|---|---|"
    family_rows = _rows(NetworkParams, "families.<modality>.<family>.", None, skip=set())
    for name in ("baseline", "rocket"):
        family_rows += _rows(
            _model_of(FamilyParams.model_fields[name].annotation), f"families.<modality>.{name}.", None, skip=set()
        )
    family_head = "| key | type | range | default | what it does |\n|---|---|---|---|---|"
    return (
        f"{head}\n" + "\n".join(rows) + "\n\n## Families\n\n"
        "`<modality>` is `image`, `sequence`, `text` or `audio`; `<family>` is `cnn`, `rnn`, `transformer` "
        "or `pretrained`. What the shipped file sets for each is in it, below.\n\n"
        f"{family_head}\n" + "\n".join(family_rows) + "\n\n## The shipped file\n\n"
        f"```yaml\n{text.rstrip()}\n```\n"
    )


def spec() -> str:
    from tasks.data.spec import CardSpec, DatasetSpec

    head = "| key | type | range | default | what it does |\n|---|---|---|---|---|"
    rows = _rows(DatasetSpec, "", None, skip={"card"}) + _rows(CardSpec, "card.", None, skip=set())
    return head + "\n" + "\n".join(rows)


def environment() -> str:
    from tasks.infra.environment import VARIABLES

    rows = [f"| `{name}` | {owner} | {what} |" for name, (owner, what) in VARIABLES.items()]
    return "| variable | whose | what it does |\n|---|---|---|\n" + "\n".join(rows)


def _yaml_comments(text: str) -> dict[str, str]:
    """The comment beside each key of a YAML file, by its dotted path."""
    from ruamel.yaml import YAML

    def walk(mapping, prefix: str) -> dict[str, str]:
        found = {}
        for key, value in mapping.items():
            tokens = [t for t in mapping.ca.items.get(key) or [] if t is not None and not isinstance(t, list)]
            notes = [t.value.strip() for t in tokens if t.value.strip().startswith("#")]
            if notes:
                found[f"{prefix}{key}"] = notes[0].lstrip("#").strip().splitlines()[0]
            if hasattr(value, "items"):
                found |= walk(value, f"{prefix}{key}.")
        return found

    return walk(YAML().load(text), "")


def _rows(model, prefix: str, shipped, skip: set, notes: dict | None = None) -> list[str]:
    """One row per key of a pydantic model, a section's keys after the section. What a key does: the
    comment beside it in the model's code, else the one beside it in params.yaml (`notes`)."""
    notes = notes or {}
    from pydantic import BaseModel

    comments = _comments(model)
    rows = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        key, value = f"{prefix}{name}", shipped.get(name) if isinstance(shipped, dict) else None
        section = _model_of(field.annotation)
        if section is not None and issubclass(section, BaseModel):
            rows += _rows(section, f"{key}.", value, skip=set(), notes=notes)
            continue
        default = "required" if field.is_required() else f"`{_shown(field.get_default(call_default_factory=True))}`"
        shipped_cell = "" if shipped is None or name not in shipped else f"`{_shown(value)}`"
        what = field.description or comments.get(name) or notes.get(key, "")
        cells = [
            f"`{key}`",
            _type(field.annotation),
            _range([*field.metadata, *_nested_metadata(field.annotation)]),
            default,
        ]
        cells += [shipped_cell] if shipped is not None else []
        rows.append("| " + " | ".join(_cell(c) for c in [*cells, what]) + " |")
    return rows


def _model_of(annotation):
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
            return candidate
    return None


def _comments(model) -> dict[str, str]:
    """The comment on each field's line in the model's code (and its bases'), else the comment lines
    right above it."""
    found = {}
    for cls in reversed(model.__mro__):
        if not hasattr(cls, "model_fields") or cls.__module__.startswith("pydantic"):
            continue
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in source.splitlines():
            if line.strip().startswith("#"):
                above.append(line.strip().lstrip("#").strip())
                continue
            if (match := FIELD_LINE.match(line)) and (match[2] or above):
                found[match[1]] = match[2] or " ".join(above)
            above = []
    return found


def _nested_metadata(annotation) -> list:
    """Bounds inside an optional type (`Epochs | None`), which pydantic leaves in the annotation."""
    found = []
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Annotated:
            for item in typing.get_args(arg)[1:]:
                found += getattr(item, "metadata", [item])
    return found


def _type(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is typing.Literal:
        return " | ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type(a) for a in args)
    if origin in (list, tuple, dict):
        return f"{origin.__name__} of " + ", ".join(_type(a) for a in args if a is not Ellipsis)
    return getattr(annotation, "__name__", str(annotation))


def _range(metadata) -> str:
    bounds = []
    for item in metadata:
        for attribute, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "length ≥")):
            if getattr(item, attribute, None) is not None:
                bounds.append(f"{sign} {getattr(item, attribute)}")
        if getattr(item, "max_length", None) is not None:
            bounds.append(f"length ≤ {item.max_length}")
        if getattr(item, "pattern", None):
            bounds.append(f"matches `{item.pattern}`")
    return ", ".join(bounds)


def _shown(value) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...").strip()


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


GENERATORS = {"cli": cli, "params": params, "spec": spec, "environment": environment}
