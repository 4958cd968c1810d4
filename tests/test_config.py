"""The config schema (shared by Snakemake and the CLI) and scale-preset overrides."""

from __future__ import annotations

import pytest
import yaml

from gdrepro.config import apply_overrides, default_seeds, validate_config
from gdrepro.errors import GdreproError
from gdrepro.papers import get
from tests.conftest import ROOT


def test_shipped_config_is_valid_and_defaults_are_filled():
    config = validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    assert config["scale"] == "default" and config["seeds"] == default_seeds()
    assert validate_config({"scale": "smoke"})["overrides"] == {}


def test_workflow_schema_is_the_package_schema():
    assert (ROOT / "workflow" / "schemas" / "config.schema.yaml").resolve() == (
        ROOT / "src" / "gdrepro" / "schemas" / "config.schema.yaml"
    ).resolve()


def test_string_values_from_the_command_line_are_typed():
    config = validate_config({"scale": "smoke", "seeds": ["0", "1"], "overrides": {"quantile": {"n": "500", "a": "0.75"}}})
    assert config["seeds"] == [0, 1] and config["overrides"] == {"quantile": {"n": 500, "a": 0.75}}
    assert validate_config({"scale": "default"})["scale"] == "default"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"scale": "huge"}, "scale: 'huge' is not one of"),
        ({"scale": "smoke", "seeds": []}, "seeds: [] should be non-empty"),
        ({"scale": "smoke", "typo": 1}, "Additional properties are not allowed ('typo'"),
        ({"scale": "smoke", "overrides": {"quantile": 3}}, "overrides.quantile: 3 is not of type 'object'"),
    ],
)
def test_bad_config_names_the_bad_value(config, message):
    with pytest.raises(GdreproError, match="invalid config") as error:
        validate_config(config)
    assert message in str(error.value)


def test_overrides_change_numbers_and_reject_unknown_or_mistyped_settings():
    preset = get("quantile").settings["smoke"]
    changed = apply_overrides(preset, {"n": 123, "a": 2}, "quantile")
    assert (changed.n, changed.a, changed.reps) == (123, 2.0, preset.reps)
    with pytest.raises(GdreproError, match="unknown setting 'bandwidth'"):
        apply_overrides(preset, {"bandwidth": 1}, "quantile")
    with pytest.raises(GdreproError, match="should be int"):
        apply_overrides(preset, {"n": 1.5}, "quantile")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"a": 0.3}, "a=0.3 must exceed 1/2"), ({"levels": 100}, "levels=100 must lie in 2..91"),
     ({"beta": 1.2}, "need beta in (1/2, 1)"), ({"reps": 0}, "at least 1 replication")],
)
def test_out_of_range_settings_are_one_line_errors(overrides, message):
    with pytest.raises(GdreproError, match="invalid settings for quantile") as error:
        apply_overrides(get("quantile").settings["smoke"], overrides, "quantile")
    assert message in str(error.value)
