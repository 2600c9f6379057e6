"""What every benchmark shares: repeated measurements, process timing, the machine's description."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent  # .venv/bin when run as `.venv/bin/python bench/run.py`


@dataclass
class Stat:
    """Repeated measurements of one quantity; reported as median, min and max."""

    unit: str
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def as_dict(self) -> dict:
        return {
            "unit": self.unit,
            "n": len(self.values),
            "median": _round(self.median),
            "min": _round(self.min),
            "max": _round(self.max),
            "values": [_round(v) for v in self.values],
        }


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def rotate(items: list, i: int) -> list:
    """`items` rotated by `i`: round i starts with a different contestant."""
    k = i % len(items)
    return items[k:] + items[:k]


def child_env() -> dict[str, str]:
    """The environment of a timed process: the caller's, with bytecode caching on.

    A normal install reads and writes `__pycache__`; PYTHONDONTWRITEBYTECODE (set in some
    sandboxes) would make every `yarch lint` recompile the package's sources.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@dataclass
class ProcessTime:
    wall: float  # seconds, perf_counter around the whole process
    cpu: float  # seconds of user + system time of the process and the children it waited for
    stdout: str
    returncode: int


def run_process(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> ProcessTime:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return ProcessTime(wall, cpu, proc.stdout, proc.returncode)


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores, steal included), from /proc/stat;
    0 where there is no /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    import torch

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
