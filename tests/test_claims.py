"""The claims engine: verdicts, tolerances, applicability, and the files it writes."""

from __future__ import annotations

import json

import pytest
import yaml

from gdrepro import claims as C
from gdrepro import papers
from gdrepro.errors import GdreproError
from gdrepro.papers import claims_file


@pytest.mark.parametrize(
    ("x", "op", "value", "tol", "verdict"),
    [
        (0.0, "==", 0, 0, C.REPRODUCED),
        (1e-3, "==", 0, 0, C.FAILED),
        (1e-3, "==", 0, 0.01, C.WITHIN),
        (0.95, ">=", 0.92, 0.01, C.REPRODUCED),
        (0.915, ">=", 0.92, 0.01, C.WITHIN),
        (0.70, ">=", 0.92, 0.01, C.FAILED),
        (1.16, "<=", 1.15, 0.03, C.WITHIN),
        (1.30, "<=", 1.15, 0.03, C.FAILED),
        (0.0, ">", 0, 0, C.FAILED),
        (0.1, ">", 0, 0, C.REPRODUCED),
        (float("nan"), "<=", 1, 1, C.FAILED),
        (None, ">=", 0, 1, C.FAILED),
    ],
)
def test_check_outcome(x, op, value, tol, verdict):
    assert C.check_outcome(x, op, value, tol) == verdict


def _spec():
    return {
        "paper": "fake",
        "deviations": ["none"],
        "claims": [
            {"id": "A", "statement": "holds", "where": "Thm 1", "paper": "0.95", "scales": ["smoke"],
             "checks": [{"metric": "m", "op": ">=", "value": 0.9, "tolerance": 0.01}]},
            {"id": "B", "statement": "fails", "where": "Thm 2", "paper": "1.0", "scales": ["smoke"],
             "checks": [{"metric": "m", "op": ">=", "value": 0.9, "tolerance": 0.01},
                        {"metric": "k", "op": "<=", "value": 1.0, "tolerance": 0.0}]},
            {"id": "C", "statement": "paper scale only", "where": "Fig 3", "paper": "-", "scales": ["paper"],
             "checks": [{"metric": "k", "op": "<=", "value": 1.0, "tolerance": 0.0}]},
        ],
    }


def _metrics():
    return {"scale": "smoke", "seeds": [0, 1], "metrics": {"m": {"value": 0.95, "per_seed": [0.94, 0.96]},
                                          "k": {"value": 2.5, "per_seed": [2.0, 3.0]}}}


def test_a_failing_claim_is_reported_not_reproduced(tmp_path):
    (tmp_path / "claims.yaml").write_text(yaml.safe_dump(_spec()))
    (tmp_path / "metrics.json").write_text(json.dumps(_metrics()))
    judged = C.write("Fake paper", "fake", "smoke", tmp_path / "claims.yaml", tmp_path / "metrics.json", tmp_path)
    assert [c["verdict"] for c in judged] == [C.REPRODUCED, C.FAILED, C.NOT_APPLICABLE]
    md = (tmp_path / "claims.md").read_text()
    assert "| B | fails |" in md and "❌" in md and "2.5 ± 0.707" in md
    assert "Paper claims: 1 ✅, 0 ≈, 1 ❌ of 2 applicable." in md
    saved = json.loads((tmp_path / "claims.json").read_text())
    assert saved["claims"][1]["checks"][1]["outcome"] == C.FAILED
    assert (tmp_path / "tables" / "claims.csv").read_text().startswith("id,kind,claim")
    assert r"\begin{tabular}" in (tmp_path / "tables" / "claims.tex").read_text()


def test_missing_metric_and_bad_spec_are_one_line_errors(tmp_path):
    spec = _spec()
    spec["claims"][0]["checks"][0]["metric"] = "nope"
    with pytest.raises(GdreproError, match="metric 'nope' is not in metrics.json"):
        C.judge(spec, _metrics(), "smoke")
    spec["claims"][0]["checks"][0]["op"] = "~"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(GdreproError, match="claims/0/checks/0/op"):
        C.load_claims(tmp_path / "bad.yaml")


def test_stress_tests_are_counted_apart_from_the_papers_claims():
    spec = _spec()
    spec["claims"][1]["kind"] = "stress"
    judged = C.judge(spec, _metrics(), "smoke")
    assert C.tally(judged, "paper") == {C.REPRODUCED: 1, C.WITHIN: 0, C.FAILED: 0}
    assert C.tally(judged, "stress") == {C.REPRODUCED: 0, C.WITHIN: 0, C.FAILED: 1}


def test_metrics_of_another_scale_are_refused():
    with pytest.raises(GdreproError, match="made at scale 'smoke', not 'paper'"):
        C.judge(_spec(), _metrics(), "paper")


def test_a_diverged_metric_is_not_reproduced():
    metrics = _metrics()
    metrics["metrics"]["m"] = {"value": None, "per_seed": [None, 0.95]}
    judged = C.judge(_spec(), metrics, "smoke")
    assert judged[0]["verdict"] == C.FAILED and C.reproduced_text(judged[0]["checks"][0]) == "n/a"


def test_a_metric_made_only_at_another_scale_is_not_needed():
    metrics = _metrics()
    del metrics["metrics"]["k"]  # C (paper scale only) reads k; at smoke B still needs it
    spec = _spec()
    spec["claims"] = [spec["claims"][0], spec["claims"][2]]
    judged = C.judge(spec, metrics, "smoke")
    assert [c["verdict"] for c in judged] == [C.REPRODUCED, C.NOT_APPLICABLE]
    with pytest.raises(GdreproError, match="metric 'k' is not in metrics.json"):
        C.judge(_spec(), metrics, "smoke")


@pytest.mark.parametrize("paper", papers.SLUGS)
def test_every_claims_file_is_valid_lists_deviations_and_has_smoke_claims(paper):
    spec = C.load_claims(claims_file(paper))
    assert spec["paper"] == paper
    assert any("smoke" in c["scales"] for c in spec["claims"])
    assert spec["deviations"]
    ids = [c["id"] for c in spec["claims"]]
    assert len(ids) == len(set(ids)), "claim ids must be unique"
