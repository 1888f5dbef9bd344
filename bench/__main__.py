"""``python -m bench [BENCHMARK] [OPTIONS]``: run one benchmark (default: serving).

Each benchmark is a module with ``main(argv) -> int``, registered in `BENCHMARKS` by
name; the module is imported only when chosen, so one benchmark's dependencies never
burden another.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS: dict[str, tuple[str, str]] = {
    # name: (module, one-line description)
    "serving": ("bench.serving", "model server vs MLServer, KServe and a bare app (wrk)"),
    "operator": (
        "bench.operator_scale",
        "apply → Ready for 1 and 300 ForecastModels, memory, idle writes",
    ),
}
DEFAULT = "serving"


def dispatch(argv: list[str]) -> tuple[str, list[str]]:
    """The benchmark named by the first argument (the default when it is an option or
    absent) and the arguments left for it."""
    if argv and not argv[0].startswith("-"):
        name, rest = argv[0], argv[1:]
        if name not in BENCHMARKS:
            raise SystemExit(
                f"unknown benchmark {name!r}; choose from: {', '.join(sorted(BENCHMARKS))}"
            )
        return name, rest
    if argv and argv[0] in ("-h", "--help") and len(argv) == 1:
        return "help", []
    return DEFAULT, argv


def usage() -> str:
    lines = ["usage: python -m bench [BENCHMARK] [OPTIONS]   (default: serving)", ""]
    lines += [f"  {name:<10} {desc}" for name, (_, desc) in sorted(BENCHMARKS.items())]
    lines += ["", "python -m bench BENCHMARK --help shows a benchmark's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    name, rest = dispatch(sys.argv[1:] if argv is None else argv)
    if name == "help":
        print(usage())
        return 0
    module = importlib.import_module(BENCHMARKS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
