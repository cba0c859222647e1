"""``closedloop bench``: a benchmark campaign as a command (mounted on the ``closedloop`` CLI as a plugin).

The command checks everything first (planners, problems, ``--out``, the scheduler), then runs every task on Dask,
showing tasks done, running and failed, and writes the dataset, the summary and the card into ``--out``. Bad input
is one line and exit 2, with nothing started; a campaign with failed tasks exits 1 (``--resume`` runs them again).
"""

from __future__ import annotations

import datetime as dt
import platform
import shlex
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True, highlight=False, soft_wrap=True)

PlannersOption = Annotated[
    str, typer.Option("--planners", help="comma-separated: names, name[key=value,...], module:Generator, xopt, ax")
]
ProblemsOption = Annotated[
    str, typer.Option("--problems", help="comma-separated: bundled names, module:attr, or session files")
]


bench_app = typer.Typer(
    add_completion=False,
    help="Run a benchmark campaign: planners x problems x seeds, each run a task on Dask; results as a dataset. "
    "'closedloop bench page OUT' renders a finished campaign's tables.",
)


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    planners: PlannersOption = "botorch,sobol",
    problems: ProblemsOption = "branin,hartmann6",
    seeds: Annotated[int, typer.Option(min=1, help="seeds 0 .. N-1")] = 5,
    experiments: Annotated[int, typer.Option(min=1, help="experiments per run, the initial design included")] = 40,
    initial: Annotated[int, typer.Option(min=1, help="initial Sobol points of every contender")] = 10,
    batch: Annotated[int, typer.Option(min=1, help="points per proposal")] = 1,
    out: Annotated[Path | None, typer.Option(help="campaign folder (default bench-<time>)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes of the local Dask cluster")] = 2,
    scheduler: Annotated[str | None, typer.Option(help="a running Dask scheduler's address instead")] = None,
    resume: Annotated[bool, typer.Option(help="finish the campaign in --out: run only what is missing")] = False,
) -> None:
    """Run a benchmark campaign: planners x problems x seeds, each run a task on Dask; results as a dataset."""
    if ctx.invoked_subcommand is not None:
        return
    from benchmarks.campaign.errors import CampaignError
    from benchmarks.campaign.problems import PROBLEM_SET  # torch and the planners load here, not at --help
    from benchmarks.campaign.spec import CampaignSpec, check, planner_specs

    try:
        spec = CampaignSpec(
            planners=[s.label for s in planner_specs(planners)],
            problems=[p.strip() for p in problems.split(",") if p.strip()],
            seeds=seeds,
            experiments=experiments,
            initial=initial,
            batch=batch,
            problem_set=PROBLEM_SET,
        )
        check(spec)
        code = _run(spec, out or Path(f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}"), workers, scheduler, resume)
    except CampaignError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def _run(spec: Any, out: Path, workers: int, scheduler: str | None, resume: bool) -> int:
    from benchmarks.campaign import dataset
    from benchmarks.campaign.runner import CampaignFolder, connect, execute
    from benchmarks.campaign.tasks import versions

    folder = CampaignFolder(out)
    started = time.perf_counter()
    with ExitStack() as stack:
        client = connect(stack, workers=workers, scheduler=scheduler)  # before anything is written
        folder.claim(spec, resume=resume)
        finished = folder.finished()
        missing = [t for t in spec.tasks() if t.key not in finished]
        total = len(spec.tasks())
        console.print(f"{total} tasks, {len(finished)} done before, {len(missing)} to run on {_where(client)}")
        progress = execute(client, folder, missing, _show, already=len(finished))
        where = _where(client)
    if console.is_terminal:
        console.print()
    for error in progress.errors:
        console.print(f"[red]failed:[/] {escape(error)}")
    done = folder.finished()  # read once: every task file, after the last one was written
    results = [done[t.key] for t in spec.tasks() if t.key in done]
    found = dataset.summaries(spec, results)
    dataset.write_tables(out, results)
    plots = dataset.plot(out, spec, results)
    command = shlex.join(["closedloop", "bench", *sys.argv[2:]]) if "bench" in sys.argv else "closedloop bench ..."
    context: dict[str, Any] = {
        "workers": where,
        "where": f"{platform.node()} ({platform.machine()})",
        "seconds": time.perf_counter() - started,
        "versions": versions(),
    }
    (out / "summary.md").write_text(dataset.summary_table(found) + "\n")
    (out / "CAMPAIGN.md").write_text(dataset.card(spec, command, found, plots, context))
    print(dataset.summary_table(found))
    console.print(f"wrote {escape(str(out))} ({progress.done} of {progress.total} tasks, {progress.failed} failed)")
    return 1 if progress.failed else 0


def _show(progress: Any) -> None:
    """Tasks done, running and failed: one line rewritten in place on a terminal, a line per change elsewhere."""
    line = f"tasks: {progress.done}/{progress.total} done, {progress.running} running, {progress.failed} failed"
    if console.is_terminal:
        console.print(f"\r{line}", end="")
    else:
        console.print(line)


def _where(client: Any) -> str:
    workers = client.scheduler_info().get("workers", {})
    return f"{len(workers)} worker(s) at {client.scheduler.address}"


@bench_app.command("page")
def page(
    campaigns: Annotated[list[Path], typer.Argument(help="finished campaign folders (a problem's rows: the last)")],
    table: Annotated[str, typer.Option(help="regret, multi-objective or constrained")] = "regret",
    into: Annotated[Path | None, typer.Option(help="a page whose marked section the table replaces")] = None,
    section: Annotated[str | None, typer.Option(help="the section's name in --into (default: --table)")] = None,
    ours: Annotated[str, typer.Option(help="the planner the others are compared with")] = "botorch",
) -> None:
    """Render campaigns' datasets as a benchmark page's Markdown table (printed, or filled into a page)."""
    from benchmarks.campaign.errors import CampaignError
    from benchmarks.campaign.pages import fill, load, markers, render

    try:
        text = render([load(path) for path in campaigns], table, ours)
        if into is None:
            print(text, end="")
            return
        if not into.is_file():
            raise CampaignError(f"--into: no page {into}")
        name = section or table
        into.write_text(fill(into.read_text(), name, text))
    except CampaignError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    console.print(f"wrote the table between {escape(' and '.join(markers(name)))} in {escape(str(into))}")


def register(app: typer.Typer) -> None:
    """Mount ``bench`` on the ``closedloop`` app (the ``closedloop.commands`` entry point)."""
    app.add_typer(bench_app, name="bench")
