"""`./run mutation [MODULE...] [--json PATH]`: mutation testing of the analysis core, the retry
policy and payload parsing with mutmut, each mutant run against the fast tests that reach it.

mutmut ([tool.mutmut] in pyproject.toml) copies the package to `mutants/`, plants one deliberate
bug at a time and runs the tests that cover the mutated function: a failing test kills the
mutant, a passing suite lets it survive. Every run starts afresh: mutmut re-tests only functions
that changed, so a survivor would stay one after the test that kills it was written.

Printed per module: mutants generated, killed (timeouts count as killed: the bug made the tests
hang), survived, and the score killed / (generated - skipped).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = {
    "performance": "modelvigil/analysis/performance.py",
    "windows": "modelvigil/analysis/windows.py",
    "drift": "modelvigil/analysis/drift.py",
    "alerts": "modelvigil/analysis/alerts.py",
    "traffic": "modelvigil/analysis/calculators/traffic.py",
    "classification": "modelvigil/analysis/calculators/classification.py",
    "reference_accuracy": "modelvigil/analysis/calculators/reference_accuracy.py",
    "regression": "modelvigil/analysis/calculators/regression.py",
    "feature_drift": "modelvigil/analysis/calculators/feature_drift.py",
    "model_schema": "modelvigil/analysis/model_schema.py",
    "engine": "modelvigil/analysis/engine.py",
    "retry": "modelvigil/client/retry.py",
    "payload": "modelvigil/service/payload.py",
}
KILLED = {1, 3, 36, 24, -24, 152, 255, 37}  # a failing test, pytest's internal error, a timeout, a type check
SKIPPED = {34}
# No verdict: the forked test process itself crashed (numpy, Arrow and OpenMP threads do not
# always survive a fork), or the run stopped before the mutant. Such mutants are run once more.
NO_VERDICT = {-11, -9, 35, None}


@dataclass
class Score:
    module: str
    generated: int
    killed: int
    survived: int
    score: float
    survivors: list[str]


def _dotted(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def run_mutmut(modules: list[str]) -> int:
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    log = ROOT / "mutants" / "mutmut-run.log"
    log.parent.mkdir()
    print(f"mutating {', '.join(modules)} (progress in {log.relative_to(ROOT)})", flush=True)
    code = _mutmut([f"{_dotted(MODULES[m])}.*" for m in modules], log)
    again = [key for m in modules for key, c in _codes(m).items() if c in NO_VERDICT]
    if code == 0 and again:
        print(f"running {len(again)} mutant(s) without a verdict once more", flush=True)
        code = _mutmut(again, log)  # named mutants are run again whatever their last result
    return code


def _mutmut(names: list[str], log: Path) -> int:
    with log.open("a") as out:
        return subprocess.run(
            [sys.executable, "-m", "mutmut", "run", *names], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        ).returncode


def _codes(module: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / f"{MODULES[module]}.meta"
    prefix = _dotted(MODULES[module]) + "."
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {key: code for key, code in codes.items() if key.startswith(prefix)}


def score(module: str) -> Score:
    prefix = _dotted(MODULES[module]) + "."
    codes = _codes(module)
    tested = {k: c for k, c in codes.items() if c not in SKIPPED}
    killed = sum(c in KILLED for c in tested.values())
    survivors = sorted(k.removeprefix(prefix) for k, c in tested.items() if c not in KILLED)
    return Score(
        module=module,
        generated=len(codes),
        killed=killed,
        survived=len(survivors),
        score=round(killed / len(tested), 3) if tested else 0.0,
        survivors=survivors,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run mutation", description=__doc__.splitlines()[0])
    parser.add_argument(
        "modules", nargs="*", metavar="MODULE", help=f"any of {', '.join(MODULES)} (default: all)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write [{module, generated, killed, ...}]")
    parser.add_argument("--show-survivors", action="store_true", help="list the mutants that survived")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}: choose from {', '.join(MODULES)}")
    modules = args.modules or list(MODULES)
    code = run_mutmut(modules)
    if code != 0:
        print(f"mutmut stopped with exit code {code}: see mutants/mutmut-run.log", file=sys.stderr)
        return code
    scores = [score(m) for m in modules]
    print(f"{'module':12} {'mutants':>8} {'killed':>8} {'survived':>9} {'score':>7}")
    for s in scores:
        print(f"{s.module:12} {s.generated:8} {s.killed:8} {s.survived:9} {s.score:7.0%}")
        if args.show_survivors:
            for name in s.survivors:
                print(f"    survived: {name}")
    if args.json:
        rows = [{k: v for k, v in asdict(s).items() if k != "survivors"} for s in scores]
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
