"""What a camera's frames cost on disk: documents with the frames inline against frames in HDF5 files.

Runs the same unattended session twice in one invocation on the simulated beamline with a square camera
(``camera: SIDE``, a float32 frame of SIDE x SIDE pixels in every event, its objective read with
``instruments.reducers:frame_sum``): first with ``arrays: {external_above: null}`` (every frame inline, as JSON),
then with the default threshold (frames to ``runs/*.h5``, referenced from the documents). It prints, per
experiment, the store's size, the run files' size, the HDF5 files' size and the wall time, the ratios between the
two, and whether both sessions measured the same objective values.

    python -m benchmarks.array_storage [--side 2048] [--experiments 2]
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from agent.session import Session


def session_file(side: int, experiments: int, arrays: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "array-storage",
        "seed": 0,
        "variables": {
            "pitch1": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m1"},
            "pitch2": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m2"},
        },
        "objectives": {"flux": {"field": "cam-image", "reducer": "instruments.reducers:frame_sum"}},
        "budget": {"experiments": experiments},
        "planner": {"name": "sobol"},
        "instrument": {"simulator": "beamline", "options": {"noise": 0.0, "camera": side}},
        "review": {"policy": "never"},
        "pipeline": False,
        "arrays": arrays,
    }


def size(paths: list[Path]) -> int:
    return sum(path.stat().st_size for path in paths if path.exists())


def run(root: Path, label: str, side: int, experiments: int, arrays: dict[str, Any]) -> dict[str, Any]:
    """One session; its sizes in bytes per experiment, seconds per experiment and objective values."""
    path = root / f"{label}.yaml"
    path.write_text(yaml.safe_dump(session_file(side, experiments, arrays), sort_keys=False))
    folder = root / label
    started = time.perf_counter()
    session = Session.create(path, folder)
    try:
        if session.advance() is not None:
            raise RuntimeError("the session stopped at a checkpoint")
        values = [o.values.get("flux", math.nan) for o in session.store.observations()]
    finally:
        session.close()
    seconds = time.perf_counter() - started
    store = [folder / f"store.sqlite{suffix}" for suffix in ("", "-wal", "-shm")]
    return {
        "store": size(store) / experiments,
        "run files": size(list((folder / "runs").glob("*.jsonl"))) / experiments,
        "hdf5 files": size(list((folder / "runs").glob("*.h5"))) / experiments,
        "seconds": seconds / experiments,
        "values": values,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=2048, help="the camera's frame side, pixels")
    parser.add_argument("--experiments", type=int, default=2)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="closedloop-arrays-"))
    try:
        inline = run(root, "inline", args.side, args.experiments, {"external_above": None})
        external = run(root, "external", args.side, args.experiments, {})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"camera {args.side} x {args.side} float32 ({args.side**2 * 4 / 1e6:.1f} MB a frame), "
          f"{args.experiments} experiments, one frame each")  # fmt: skip
    print(f"{'per experiment':<16}{'inline':>14}{'in HDF5':>14}{'ratio':>10}")
    for key in ("store", "run files", "hdf5 files"):
        a, b = inline[key], external[key]
        ratio = f"{a / b:.0f}x" if a and b else "-"
        print(f"{key:<16}{a / 1e6:>11.3f} MB{b / 1e6:>11.3f} MB{ratio:>10}")
    print(f"{'seconds':<16}{inline['seconds']:>14.2f}{external['seconds']:>14.2f}"
          f"{inline['seconds'] / external['seconds']:>9.1f}x")  # fmt: skip
    same = all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(inline["values"], external["values"], strict=True))
    print(f"objective values equal in both sessions: {same}")


if __name__ == "__main__":
    main()
