"""Commands that need no model start without torch: what ``import planners`` and the light planners load.

Each check runs in a fresh interpreter, since this test process has long imported torch.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "botorch", "gpytorch", "linear_operator"]

PROBLEM = (
    "from gest_api.vocs import VOCS\n"
    "vocs = VOCS(variables={'x': [0.0, 1.0], 'y': [-1.0, 1.0]}, objectives={'f': 'MAXIMIZE'})\n"
)


def heavy_after(code: str) -> list[str]:
    """The heavy top-level modules imported after running ``code`` in a new interpreter."""
    probe = (
        code
        + f"\nimport sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_planners_and_its_registry_imports_no_torch() -> None:
    assert heavy_after("import planners, planners.registry, planners.options, planners.points_file") == []


def test_the_light_planners_run_without_torch() -> None:
    code = PROBLEM + (
        "from planners.registry import load_planner, options_model, accepts_option\n"
        "for name, options in [('sobol', {}), ('random', {}), ('grid', {'points_per_dim': 3}),\n"
        "                      ('manual', {'points': [{'x': 0.5, 'y': 0.0}]})]:\n"
        "    planner = load_planner(name, vocs, default_seed=1, **options)\n"
        "    points = planner.suggest(1)\n"
        "    planner.ingest([{**points[0], 'f': 1.0}])\n"
        "    assert planner.best['f'] == 1.0\n"
        "assert options_model('botorch').__name__ == 'BoTorchOptions' and accepts_option('botorch', 'max_travel')\n"
        "from planners import read_points, SobolPlanner, KnowsPosition, Predicts\n"
    )
    assert heavy_after(code) == []


def test_building_a_model_based_planner_imports_torch() -> None:
    """The probe itself can tell: the first model-based planner loads torch and BoTorch."""
    heavy = heavy_after(PROBLEM + "from planners import load_planner\nload_planner('botorch', vocs, default_seed=1)\n")
    assert {"torch", "botorch", "gpytorch"} <= set(heavy)


def test_the_planners_command_imports_no_torch() -> None:
    code = (
        "import typer\n"
        "from typer.testing import CliRunner\n"
        "from agent.cli.planners import planners\n"
        "app = typer.Typer()\n"
        "app.command()(planners)\n"
        "for args in ([], ['botorch'], ['turbo', '--json']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, result.output\n"
    )
    assert heavy_after(code) == []
