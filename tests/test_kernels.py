"""Pinned kernels (gdrepro.kernels): the same bits on every x86-64 CPU, and a record of the choice."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gdrepro import kernels
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not kernels.is_x86_64(), reason="portable kernels are for x86-64")

FINGERPRINT = ROOT / "tests" / "regression" / "kernel_fingerprint.json"


def _fresh(code: str, mode: str | None, inherited: dict | None = None) -> str:
    """Run ``code`` in a new Python from a clean shell (nothing pinned), GDREPRO_KERNELS=mode."""
    env = {k: v for k, v in os.environ.items()
           if k not in (*kernels.PORTABLE_ENV, kernels.PINNED, "GDREPRO_KERNELS")}
    env.update({"GDREPRO_KERNELS": mode} if mode else {}, **(inherited or {}))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _effective(mode: str) -> dict:
    return json.loads(_fresh("import gdrepro, numpy, torch, json; from gdrepro import kernels; "
                             "print(json.dumps(kernels.effective()))", mode))


def test_importing_gdrepro_caps_every_library_before_it_loads():
    record = _effective("portable")
    assert record["mode"] == "portable"
    assert record["torch_cpu_capability"] == "AVX2"
    assert record["openblas_core"] == ["Haswell"]
    assert record["settings"]["MKL_CBWR"] == "COMPATIBLE"
    assert not any(t.startswith(("X86_V4", "AVX512")) for t in record["numpy_simd"]), record["numpy_simd"]


def test_native_mode_leaves_the_choice_to_the_libraries():
    record = _effective("native")
    assert record["mode"] == "native" and record["settings"] == {}


def test_without_a_mode_the_scale_decides_and_an_inherited_pin_is_undone():
    """Smoke jobs (and tests) run portable, default and paper jobs native, even when the parent
    process (Snakemake, which imports gdrepro) pinned portable before starting them."""
    inherited = {**kernels.PORTABLE_ENV, kernels.PINNED: "portable"}
    code = ("import sys, json; from gdrepro import kernels; kernels.pin(sys.argv[1]); import numpy, torch; "
            "print(json.dumps(kernels.effective()))")
    for scale, expected in (("smoke", "portable"), ("default", "native"), ("paper", "native")):
        record = json.loads(_fresh(code.replace("sys.argv[1]", repr(scale)), None, inherited))
        assert record["mode"] == expected, scale
        assert (record["settings"] != {}) == (expected == "portable"), scale
    user_set = json.loads(_fresh(code.replace("sys.argv[1]", "'default'"), "portable"))
    assert user_set["mode"] == "portable" and user_set["torch_cpu_capability"] == "AVX2"


def test_a_paper_that_names_a_scale_runs_portable_there_unless_the_user_says_native():
    """aacbr's default-scale training turns last bits into different seeds: its jobs run portable
    there (Paper.portable_kernels), the command line pins before the paper's code loads numpy."""
    from gdrepro import papers

    assert papers.get("aacbr").portable_kernels == ("default",)
    assert kernels.mode("default", ("default",)) in ("portable", os.environ.get("GDREPRO_KERNELS"))
    code = ("import json, sys; from gdrepro import cli, kernels; sys.argv = ['gdrepro', 'aacbr', 'settings', "
            "'--scale', 'SCALE']; cli.main(sys.argv[1:]); import torch; print(json.dumps(kernels.effective()))")
    for scale, mode, expected in (("default", None, "portable"), ("paper", None, "native"),
                                  ("default", "native", "native")):
        out = _fresh(code.replace("SCALE", scale), mode, {**kernels.PORTABLE_ENV, kernels.PINNED: "portable"})
        record = json.loads(out.strip().splitlines()[-1])
        assert record["mode"] == expected, (scale, mode)
        assert (record["settings"] != {}) == (expected == "portable"), (scale, mode)


def test_portable_mode_overrides_a_stray_setting_in_the_shell():
    out = _fresh("import os; os.environ['MKL_CBWR'] = 'AUTO'; import gdrepro; print(os.environ['MKL_CBWR'])",
                 "portable")
    assert out.strip() == "COMPATIBLE"


def test_a_bad_mode_is_one_line_from_the_command_line():
    result = subprocess.run(["gdrepro", "list"], cwd=ROOT, env={**os.environ, "GDREPRO_KERNELS": "fastest"},
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "gdrepro: error: GDREPRO_KERNELS='fastest': expected one of portable, native"


def test_kernel_results_are_the_committed_bits_on_this_cpu():
    """The portable kernels' results are bit-identical to those committed from another CPU.

    tests/regression/kernel_fingerprint.json was made on an Intel AVX-512 machine. Under qemu's
    AMD EPYC-Rome (AVX2) model every digest matched (``torch.sqrt`` itself did not, which is why it
    is not used, see below); where this fails, the portability claim is false on this CPU, and the
    message names the operations.
    """
    committed = json.loads(FINGERPRINT.read_text())
    here = json.loads(_fresh("from tests.kernel_fingerprint import fingerprint; import json; "
                             "print(json.dumps(fingerprint()))", "portable"))
    if here["versions"] != committed["versions"]:
        pytest.skip(f"fingerprint made with {committed['versions']}, this is {here['versions']}")
    moved = {k: (v, here["digests"][k]) for k, v in committed["digests"].items() if here["digests"][k] != v}
    assert not moved, f"kernel results differ from the committed bits on this CPU: {moved}"


def test_native_kernels_on_this_cpu_are_what_the_fingerprint_would_notice():
    """The fingerprint can fail: where this CPU has AVX-512, native kernels change its bits."""
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    if "avx512f" not in flags:
        pytest.skip("no AVX-512 here: native and portable kernels may coincide")
    code = "from tests.kernel_fingerprint import fingerprint; import json; print(json.dumps(fingerprint()))"
    portable, native = (json.loads(_fresh(code, mode))["digests"] for mode in ("portable", "native"))
    assert portable != native


def _torch_sources() -> list:
    return [p for p in sorted((ROOT / "src" / "gdrepro").rglob("*.py")) if "import torch" in p.read_text()]


def _non_portable_calls(path) -> list[str]:
    """Calls in ``path`` that take torch's MKL square root or an unfused Adam/AdamW."""
    import ast

    found, lines = [], path.read_text().splitlines()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call | ast.BinOp):
            continue
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        if lines[node.lineno - 1].endswith("# not on the CPU"):  # the GPU branch of portable_sqrt
            continue
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant) and node.right.value == 0.5:
                found.append(f"{where} ** 0.5")
            continue
        f = node.func
        if not isinstance(f, ast.Attribute):
            continue
        receiver = f.value.id if isinstance(f.value, ast.Name) else None
        if f.attr in ("sqrt", "sqrt_") and receiver not in ("np", "math"):
            found.append(f"{where} .{f.attr}()")
        if f.attr == "pow" and any(isinstance(a, ast.Constant) and a.value == 0.5 for a in node.args):
            found.append(f"{where} .pow(0.5)")
        fused = any(k.arg == "fused" and isinstance(k.value, ast.Constant) and k.value.value for k in node.keywords)
        if f.attr in ("Adam", "AdamW") and not fused:
            found.append(f"{where} {f.attr} without fused=True")
    return found


def test_the_papers_torch_code_takes_no_cpu_dependent_square_root():
    """torch.sqrt (and ** 0.5, and the unfused Adam/AdamW that call it) go through MKL's vector
    maths, whose bits differed on an emulated AMD CPU even under the portable pin; paper code takes
    gdrepro.nn.portable_sqrt and fused optimisers. The scan itself is checked on a planted line."""
    sources = _torch_sources()
    assert len(sources) >= 10, [str(p) for p in sources]
    offenders = [hit for path in sources for hit in _non_portable_calls(path)]
    assert not offenders, offenders


def test_the_square_root_scan_finds_what_it_forbids(tmp_path):
    planted = ROOT / "tests" / "_planted_sqrt.py"  # under ROOT so relative_to works
    planted.write_text("import torch\nd = v.sqrt() + torch.sqrt(v) + v ** 0.5\nopt = torch.optim.Adam(ps, lr=1)\n"
                       "ok = np.sqrt(v) + math.sqrt(2) + torch.optim.AdamW(ps, fused=True)\n")
    try:
        assert len(_non_portable_calls(planted)) == 4
    finally:
        planted.unlink()


def test_portable_sqrt_is_a_square_root():
    import torch

    from gdrepro.nn import portable_sqrt

    x = torch.cat([torch.tensor([0.0, 1.0, 4.0, float("inf"), 2.0**-140]), torch.rand(10_000) * 1e6])
    root = portable_sqrt(x)
    exact = x.double().sqrt()
    ulp = torch.finfo(torch.float32).eps * exact.abs()
    assert torch.equal(root[:4], torch.tensor([0.0, 1.0, 2.0, float("inf")]))
    assert ((root.double() - exact).abs()[4:] <= 2 * ulp[4:]).all()
    assert torch.isnan(portable_sqrt(torch.tensor([-1.0]))).all()
    y = torch.tensor([0.25, 9.0], requires_grad=True)
    portable_sqrt(y).sum().backward()
    assert torch.allclose(y.grad, 0.5 / torch.tensor([0.5, 3.0]))


def test_portable_pow_routes_the_square_root_away_from_torch_sqrt():
    """A run-time exponent of 0.5 must not reach torch.sqrt (torch turns x ** 0.5 into it):
    portable_pow gives portable_sqrt's bits there, and torch's own power elsewhere."""
    import torch

    from gdrepro.nn import portable_pow, portable_sqrt

    x = torch.rand(10_000, generator=torch.Generator().manual_seed(0)) * 100
    assert torch.equal(portable_pow(x, 0.5), portable_sqrt(x))
    assert torch.equal(portable_pow(x, 0.3), x**0.3)
    np_exact = x.double() ** 0.3
    assert ((portable_pow(x, 0.3).double() - np_exact).abs() <= 4 * torch.finfo(torch.float32).eps * np_exact).all()
