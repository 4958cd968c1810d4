"""The workflow configuration: one JSON schema, shared by Snakemake and the CLI."""

from __future__ import annotations

import dataclasses
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from gdrepro import SCALES
from gdrepro.errors import GdreproError

SCHEMA_FILE = files("gdrepro") / "schemas" / "config.schema.yaml"


@cache
def schema() -> dict:
    """The config schema (``workflow/schemas/config.schema.yaml`` links to this file); the scales
    it accepts are :data:`gdrepro.layout.SCALES`."""
    loaded = yaml.safe_load(SCHEMA_FILE.read_text())
    loaded["properties"]["scale"]["enum"] = list(SCALES)
    return loaded


def default_seeds() -> list[int]:
    """The schema's default seeds, used when the CLI runs without Snakemake."""
    return list(schema()["properties"]["seeds"]["default"])


def _typed(value: Any) -> Any:
    """Snakemake's ``--config`` hands nested values over as strings ('20000', '1'): type them."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if isinstance(parsed, (int, float, bool)) else value
    return value


def validate_config(config: dict) -> dict:
    """Type, validate and complete ``config`` in place (defaults from the schema); return it.

    Raises GdreproError with one line that names the bad key and value.
    """
    import jsonschema

    config.update(_typed(dict(config)))

    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "config"
        raise GdreproError(f"invalid config: {where}: {error.message}")
    for key, spec in schema()["properties"].items():
        if "default" in spec:
            config.setdefault(key, spec["default"])
    return config


def check_scale(scale: str) -> str:
    """Return ``scale`` if it is one of :data:`gdrepro.SCALES`, else fail with one line."""
    if scale not in SCALES:
        raise GdreproError(f"unknown scale {scale!r} (choose from {', '.join(SCALES)})")
    return scale


def apply_overrides(settings: Any, overrides: dict[str, Any], paper: str) -> Any:
    """Replace fields of a frozen settings dataclass, checking names and types.

    Overrides change numbers, never code paths: only existing fields can be set, and a value
    must have the field's type (an int is accepted where a float is expected).
    """
    fields = {f.name: f for f in dataclasses.fields(settings)}
    clean = {}
    for key, value in overrides.items():
        if key not in fields:
            raise GdreproError(
                f"unknown setting {key!r} for paper {paper!r} (known: {', '.join(fields)})"
            )
        current = getattr(settings, key)
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        elif isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(current):
            raise GdreproError(
                f"setting {paper}.{key}={value!r} should be {type(current).__name__}"
            )
        clean[key] = value
    try:
        return dataclasses.replace(settings, **clean)
    except ValueError as error:  # the settings' own range checks
        raise GdreproError(f"invalid settings for {paper}: {error}") from None
