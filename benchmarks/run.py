"""Run the benchmarks one after another (`make bench`), each in its own process, and keep
each one's JSON report under ``out/bench/NAME.json``.

    python -m benchmarks.run                      # every benchmarks/bench_*.py with its defaults
    python -m benchmarks.run bench_features bench_api

Benchmarks never run concurrently: on a small machine they would measure each other.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
OUT = Path("out/bench")


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("bench_*.py"))
    unknown = [n for n in names if not (HERE / f"{n}.py").is_file()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        started = time.monotonic()
        print(f"== {name}", file=sys.stderr, flush=True)
        with (OUT / f"{name}.json").open("w") as out:
            code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"], stdout=out)
        took = time.monotonic() - started
        print(f"   {'ok' if code == 0 else f'FAILED ({code})'} in {took:.0f} s -> {OUT / name}.json", file=sys.stderr)
        if code:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
