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


def test_report_counts_paper_claims_and_lists_deviations(tmp_path, monkeypatch):
    from gdrepro import claims as C

    judged = [
        {"id": "A", "kind": "paper", "statement": "s", "where": "w", "paper": "p", "applicable": True,
         "verdict": C.REPRODUCED, "checks": [{"metric": "m", "op": ">=", "value": 1, "tolerance": 0,
                                              "reproduced": 2.0, "sd": None}]},
        {"id": "B", "kind": "paper", "statement": "s", "where": "w", "paper": "p", "applicable": True,
         "verdict": C.FAILED, "checks": [{"metric": "m", "op": "<=", "value": 1, "tolerance": 0,
                                          "reproduced": 2.0, "sd": 0.1}]},
    ]
    (tmp_path / "quantile").mkdir()
    (tmp_path / "quantile" / "claims.json").write_text(json.dumps({"claims": judged}))
    text = report.write_report("smoke", tmp_path, ["quantile"]).read_text()
    assert "| quantile | Smoothed SGD" in text and "| 1/2 | 0 | 1 |" in text
    assert "### Deviations from the paper" in text and "Hall-Sheather" in text
    assert "![curves](quantile/figures/curves.png)" in text
