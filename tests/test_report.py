"""Tables and the roll-up report."""

from __future__ import annotations

import json

from gdrepro import report, tables


def test_latex_escapes_special_characters_and_symbols():
    assert tables.latex_escape("a_b & 50% ≈ ±") == r"a\_b \& 50\% $\approx$ $\pm$"
    table = tables.latex_table([{"id": "C1", "verdict": "✅"}], "x_y")
    assert r"\caption{x\_y}" in table and r"C1 & \checkmark \\" in table


def test_markdown_table_escapes_pipes():
    md = tables.markdown_table([{"claim": "P(|Z| > t)", "n": 1}])
    assert md.splitlines()[2] == r"| P(\|Z\| > t) | 1 |"


def test_wall_time_sums_benchmark_files(tmp_path):
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    header = "s\th:m:s\tmax_rss\n"
    (bench / "a.tsv").write_text(header + "1.5\t0:00:01\t10\n")
    (bench / "b.tsv").write_text(header + "2.25\t0:00:02\t10\n")
    assert report.wall_time(tmp_path) == 3.75
    assert report.wall_time(tmp_path / "missing") == 0.0


def test_report_separates_recipe_and_reduced_budget_and_records_the_command(tmp_path):
    from gdrepro import claims as C

    def claim(cid, kind, verdict, recipe, applicable=True):
        return {"id": cid, "kind": kind, "statement": "s", "where": "w", "paper": "p", "applicable": applicable,
                "verdict": verdict, "verdict_text": C.verdict_text(verdict, None), "checks": [],
                "budget_at_scale": None if not applicable else {"recipe": recipe, "fraction": 0.1, "what": "x"}}

    judged = [claim("A", "paper", C.REPRODUCED, True), claim("B", "paper", C.FAILED, False),
              claim("C", "paper", C.INCONCLUSIVE, False), claim("D", "paper", C.NOT_APPLICABLE, True, False),
              claim("E", "stress", C.FAILED, True), claim("F", "sanity", C.REPRODUCED, True)]
    (tmp_path / "quantile").mkdir()
    (tmp_path / "quantile" / "claims.json").write_text(json.dumps({"claims": judged}))
    (tmp_path / "invocation.json").write_text(json.dumps({"command": "snakemake --cores 2", "config": {"scale": "smoke"}}))
    text = report.write_report("smoke", tmp_path, ["quantile"], tmp_path / "invocation.json").read_text()
    assert 'by `snakemake --cores 2` with config `{"scale": "smoke"}`' in text
    header = next(line for line in text.splitlines() if line.startswith("| paper |"))
    row = next(line for line in text.splitlines() if line.startswith("| quantile |"))
    cells = dict(zip(header.split(" | "), row.split(" | ")))
    assert cells["recipe: ✅ reproduced"] == "1" and cells["reduced budget: ❌ not reproduced"] == "1"
    assert cells["reduced budget: ❔ inconclusive"] == "1" and cells["not run"] == "1"
    assert cells["stress (ours) passed"] == "0/1" and cells["implementation checks passed"] == "1/1"
    assert "### Deviations from the paper" in text and "Hall-Sheather" in text
    assert "![curves](quantile/figures/curves.png)" in text
    assert "<table>" in (tmp_path / "summary.html").read_text()
    assert "not recorded" in report.write_report("smoke", tmp_path, ["quantile"], tmp_path / "missing.json").read_text()


def test_report_shows_an_animation_a_figures_stage_added(tmp_path):
    (tmp_path / "quantile" / "figures").mkdir(parents=True)
    (tmp_path / "quantile" / "claims.json").write_text(json.dumps({"claims": []}))
    (tmp_path / "quantile" / "figures" / "rollout.gif").write_bytes(b"GIF89a")
    (tmp_path / "quantile" / "figures" / "notes.txt").write_text("not a figure")
    text = report.write_report("smoke", tmp_path, ["quantile"], tmp_path / "missing.json").read_text()
    assert "![rollout](quantile/figures/rollout.gif)" in text and "notes.txt" not in text
    assert "settings changed" not in text


def test_report_says_which_settings_a_run_changed_from_its_preset(tmp_path):
    (tmp_path / "amppo").mkdir()
    (tmp_path / "amppo" / "claims.json").write_text(json.dumps({"overrides": {"envs": ["Hopper-v4"]}, "claims": []}))
    text = report.write_report("paper", tmp_path, ["amppo"], tmp_path / "missing.json").read_text()
    assert '- This run\'s settings changed from the preset: envs = ["Hopper-v4"]' in text
