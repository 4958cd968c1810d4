"""``gdrepro``: the command line the Snakemake rules call, usable without Snakemake.

    gdrepro <paper> <stage> --scale S --out DIR [--seed K] [--seeds K ...] [--set key=value ...]
    gdrepro <paper> settings [--scale S]
    gdrepro report --scale S --results DIR
    gdrepro data {build,verify} [--build-missing] [--out FILE]
    gdrepro tracking init
    gdrepro external {list,fetch NAME}
    gdrepro list

A stage whose upstream outputs are missing in DIR runs them first (``--no-deps`` turns that off),
so ``gdrepro quantile evaluate --scale default --out /tmp/q`` works on a fresh clone. Bad input
ends with one line ``gdrepro: error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from gdrepro import SCALES, __version__, gpu_slots, kernels, papers
from gdrepro.errors import GdreproError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise GdreproError(message)


def _stage_list() -> str:
    lines = []
    for slug in papers.SLUGS:
        lines.append(f"  {slug:<10} {' -> '.join(papers.get(slug).stage_names)}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gdrepro",
        description="Re-run the experiments of ten gradient-descent papers and judge their claims.",
        epilog="papers and their stages:\n" + _stage_list() + "\n\nother commands: "
        + ", ".join(COMMANDS) + f"\nscales: {', '.join(SCALES)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gdrepro {__version__}")
    parser.add_argument("command", metavar="PAPER|COMMAND", help="a paper slug or " + ", ".join(COMMANDS))
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="a paper's stage and options (`gdrepro <paper> --help`; its settings: "
                             "`gdrepro <paper> settings`), or the command's options")
    return parser


def _scale_arg(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--scale", required=required, help=" | ".join(SCALES))


def _stage_parser(slug: str, with_settings: bool = False) -> argparse.ArgumentParser:
    """The paper's stage options; ``with_settings`` (for --help) lists its settings, which loads its
    experiment module (a job's start-up does not pay for that)."""
    paper = papers.get(slug)
    description = paper.title + "."
    if with_settings:
        description += f"\n\nsettings (--set KEY=VALUE) at each scale:\n{settings_table(slug)}"
    parser = _Parser(prog=f"gdrepro {slug}", description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", help=" | ".join(paper.stage_names) + " (or `settings`: the table below)")
    _scale_arg(parser)
    parser.add_argument("--out", type=Path, required=True, help="the paper's results folder")
    parser.add_argument("--seed", type=_seed, help="only this seed (per-seed stages)")
    parser.add_argument("--seeds", type=_seed, nargs="+", help="all seeds (default: the config schema's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="replace a setting of the scale preset (repeatable)")
    parser.add_argument("--data", type=Path, default=Path("data"), help="the DVC-tracked data folder")
    parser.add_argument("--no-deps", action="store_true", help="do not run missing upstream stages")
    return parser


def _seed(text: str) -> int:
    """A seed is a non-negative integer (as in the config schema)."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, got {text!r}")
    return seed


def setting_meanings(cls: type) -> dict[str, str]:
    """``field -> meaning`` from the settings dataclass's source: the comment on the field's line,
    or a string right after it."""
    import ast
    import inspect
    import textwrap

    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    body = ast.parse(source).body[0].body
    meanings = {}
    for node, nxt in zip(body, [*body[1:], None], strict=True):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        line = lines[node.end_lineno - 1]
        comment = line[line.index("#") + 1:].strip() if "#" in line[node.end_col_offset:] else ""
        if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
            comment = comment or " ".join(nxt.value.value.split())
        meanings[node.target.id] = comment
    return meanings


def settings_table(slug: str, scale: str | None = None) -> str:
    """Every setting of the paper with its value at each scale (or one) and its meaning."""
    import dataclasses

    presets = papers.get(slug).settings
    scales = [scale] if scale else list(presets)
    first = presets[scales[0]]
    meanings = setting_meanings(type(first))
    rows = [["setting", *scales, "meaning"]]
    for field in dataclasses.fields(first):
        rows.append([field.name, *(repr(getattr(presets[s], field.name)) for s in scales), meanings.get(field.name, "")])
    clip = [min(max(len(r[i]) for r in rows), 28) for i in range(len(rows[0]) - 1)]
    cell = lambda text, width: text if len(text) <= width else text[: width - 1] + "…"  # noqa: E731
    return "\n".join("  " + "  ".join(cell(c, w).ljust(w) for c, w in zip(r, clip, strict=False)) + "  " + r[-1]
                     for r in rows)


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GdreproError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def run_paper(slug: str, argv: list[str]) -> None:
    from gdrepro import data, layout, stages
    from gdrepro.config import apply_overrides, check_scale, default_seeds
    from gdrepro.paper import StageContext
    from gdrepro.runtime import pin_threads, timed

    paper = papers.get(slug)
    if argv and argv[0] == "settings":
        parser = _Parser(prog=f"gdrepro {slug} settings", description="the settings of every scale")
        _scale_arg(parser, required=False)
        args = parser.parse_args(argv[1:])
        print(settings_table(slug, check_scale(args.scale) if args.scale else None))
        return
    args = _stage_parser(slug, with_settings=bool({"-h", "--help"} & set(argv))).parse_args(argv)
    if args.stage not in paper.stage_names:
        raise GdreproError(f"unknown stage {args.stage!r} for {slug} (stages: {', '.join(paper.stage_names)})")
    scale = check_scale(args.scale)
    overrides = _overrides(args.overrides)
    if args.stage == "claims" and (args.no_deps or (args.out / layout.METRICS).exists()):
        # claims read metrics.json only: the paper's code (numpy, torch) need not load
        stages.judge_claims(paper, scale, args.out)
        return
    settings = apply_overrides(paper.settings[scale], overrides, slug)
    seeds = tuple(args.seeds or default_seeds())
    if args.seed is not None and args.seed not in seeds:
        seeds = seeds + (args.seed,)
    pin_threads()

    def context(stage: str, seed: int | None = None) -> StageContext:
        return StageContext(slug, scale, settings, seeds, args.out, args.data, seed, stage, overrides)

    def run(stage: str, only_seed: int | None = None) -> None:
        if stage == "prepare":  # data.dvc sits beside data/
            dvc_file = args.data.parent / f"{args.data.name}.dvc"
            data.verify(args.data, dvc_file, papers.dataset_builders(), build_missing=not args.no_deps)
        if stage == paper.run_label:
            for seed in [only_seed] if only_seed is not None else seeds:
                with timed(f"{slug} {stage} seed {seed} ({scale})"):
                    stages.run_stage(paper, stage, context(stage, seed))
        else:
            with timed(f"{slug} {stage} ({scale})"):
                stages.run_stage(paper, stage, context(stage))

    ctx = context(args.stage)
    names = paper.stage_names
    upstream = [s for s in names[: names.index(args.stage)] if not (args.stage == "claims" and s == "figures")]
    # outputs made for another scale or other settings are stale: the whole chain reruns
    stale = bool(upstream) and ctx.prepared_path.exists() and not ctx.prepared_is_current()
    if stale and args.no_deps:
        raise GdreproError(
            f"{ctx.prepared_path} was made for another scale or other settings; rerun from prepare"
        )
    for stage in upstream:
        missing = [p for p in stages.outputs(paper, stage, ctx) if stale or not p.exists()]
        if missing and args.no_deps:
            raise GdreproError(f"missing {missing[0]} (run `gdrepro {slug} {stage}` first)")
        if missing:
            run(stage)
    run(args.stage, args.seed)


def run_report(argv: list[str]) -> None:
    from gdrepro.config import check_scale
    from gdrepro.report import write_report

    parser = _Parser(prog="gdrepro report", description="Write results/<scale>/REPORT.md")
    _scale_arg(parser)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--papers", nargs="+", default=list(papers.SLUGS))
    parser.add_argument("--invocation", type=Path, default=None,
                        help="the pipeline's recorded command and config (default: the last `snakemake` run's)")
    args = parser.parse_args(argv)
    for slug in args.papers:
        papers.get(slug)
    print(write_report(check_scale(args.scale), args.results, args.papers, args.invocation))


def run_data(argv: list[str]) -> None:
    from gdrepro import data
    from gdrepro.paper import write_json

    parser = _Parser(prog="gdrepro data", description="Build data/ or check it against data.dvc")
    parser.add_argument("action", choices=["build", "verify"])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--dvc-file", type=Path, default=Path("data.dvc"))
    parser.add_argument("--build-missing", action="store_true", help="verify: generate absent datasets first")
    parser.add_argument("--out", type=Path, help="verify: write the verified hashes here")
    args = parser.parse_args(argv)
    if args.action == "build":
        data.build(args.data, papers.dataset_builders())
        print(f"built {args.data}/; now `dvc add {args.data}` and commit {args.dvc_file}")
        return
    record = data.verify(args.data, args.dvc_file, papers.dataset_builders(), build_missing=args.build_missing)
    if args.out:
        write_json(args.out, record)
    print(f"data/ matches {args.dvc_file}: {record['md5']} ({record['nfiles']} files)")


def run_tracking(argv: list[str]) -> None:
    from gdrepro import tracking

    parser = _Parser(prog="gdrepro tracking", description="Prepare the MLflow store")
    parser.add_argument("action", choices=["init"])
    parser.parse_args(argv)
    tracking.init_store(papers.SLUGS)


def run_external(argv: list[str]) -> None:
    from gdrepro import external

    parser = _Parser(prog="gdrepro external", description="Download the paper scale's public datasets once")
    parser.add_argument("action", choices=["list", "fetch"])
    parser.add_argument("names", nargs="*", help="datasets to fetch (see `gdrepro external list`)")
    args = parser.parse_args(argv)
    if args.action == "list":
        for name, spec in external.CATALOG.items():
            state = "fetched" if external.marker(name).exists() else "missing"
            print(f"{name}\t{state}\t{spec.about}\t{spec.url}")
        return
    if not args.names:
        raise GdreproError("gdrepro external fetch: name at least one dataset")
    for name in args.names:
        print(f"{name}: {external.fetch(name)}")


def run_list(argv: list[str]) -> None:
    for slug in papers.SLUGS:
        paper = papers.get(slug)
        print(f"{slug}\t{' -> '.join(paper.stage_names)}\t{paper.title}")


COMMANDS = {"report": run_report, "data": run_data, "tracking": run_tracking, "external": run_external,
            "list": run_list}
"""The commands other than a paper's stages, by name."""


def _scale_of(argv: list[str]) -> str | None:
    """The ``--scale`` a command names, read before parsing (the kernels are pinned by scale)."""
    for i, arg in enumerate(argv):
        if arg == "--scale" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--scale="):
            return arg.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        argv = ["--help"]
    try:
        kernels.mode()  # a bad GDREPRO_KERNELS: one line here, not a traceback at import
        portable = papers.get(argv[0]).portable_kernels if argv[0] in papers.SLUGS else ()
        kernels.pin(_scale_of(argv), portable)  # before any paper loads numpy or torch
        gpu_slots.claim_for_job()  # a training job on a multi-GPU machine: before CUDA starts
        if argv and argv[0] in papers.SLUGS:  # the hot path (every job): import only this paper
            run_paper(argv[0], argv[1:])
        elif argv and argv[0] in COMMANDS:
            COMMANDS[argv[0]](argv[1:])
        else:  # --help, --version, or a name that is neither
            args = build_parser().parse_args(argv)
            raise GdreproError(
                f"unknown paper or command {args.command!r} "
                f"(papers: {', '.join(papers.SLUGS)}; commands: {', '.join(COMMANDS)})"
            )
    except GdreproError as error:
        print(f"gdrepro: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gdrepro: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
