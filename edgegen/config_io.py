"""Load pydantic configs from YAML with errors that name the file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from edgegen.errors import ConfigError

T = TypeVar("T", bound=BaseModel)


def read_yaml(path: str | Path) -> tuple[dict, dict]:
    """Return (data, line_of_top_level_key) from a YAML mapping file."""
    import yaml

    p = Path(path)
    if not p.exists():
        raise ConfigError("no such file", path=p)
    if p.is_dir():
        raise ConfigError("is a folder, expected a YAML file", path=p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not a text file (expected YAML)", path=p) from None
    except OSError as e:
        raise ConfigError(f"cannot read ({e.strerror or type(e).__name__})", path=p) from None
    if "\x00" in text:
        raise ConfigError("not a text file (expected YAML)", path=p)
    try:
        node = yaml.compose(text.lstrip("\ufeff"))
        data = yaml.safe_load(text.lstrip("\ufeff"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(
            f"invalid YAML: {getattr(e, 'problem', e)}", path=p, line=None if mark is None else mark.line + 1
        ) from None
    except RecursionError:
        raise ConfigError(
            "YAML nested too deeply to be a config (lists or mappings thousands of levels deep)", path=p
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of field: value", path=p)
    lines = {}
    if node is not None and hasattr(node, "value") and isinstance(node.value, list):
        for k, _ in node.value:
            if hasattr(k, "value"):
                lines[str(k.value)] = k.start_mark.line + 1
    return data, lines


def validation_message(e: ValidationError) -> tuple[str, str]:
    first = e.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "(root)"
    msg = first["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    return loc, msg


def load_config(cls: type[T], path: str | Path | None, overrides: dict[str, Any] | None = None) -> T:
    data, lines = ({}, {}) if path is None else read_yaml(path)
    data = {**data, **(overrides or {})}
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        loc, msg = validation_message(e)
        top = loc.split(".")[0]
        where = "" if loc == "(root)" else f"{loc}: "
        if path is not None and top in lines and top not in (overrides or {}):
            raise ConfigError(f"{where}{msg}", path=path, line=lines[top]) from None
        raise ConfigError(f"{where}{msg}", path=path) from None
