"""Is this machine ready for the `spark` dbt target? One clear answer before Spark is started.

The `spark` target (dbt-spark, `session` method) starts Apache Spark inside the dbt process.
When Java is missing or pyspark cannot start, dbt and pyspark answer with a long traceback that
ends in ``[JAVA_GATEWAY_EXITED] Java gateway process exited``; this module says instead, on one
line, what is missing and how to get it. It imports neither dbt nor pyspark (it only looks for
them), so it is cheap and safe to call first: ``python -m lineage_tools.spark_env [--start]``.

    >>> java_major('openjdk version "17.0.15" 2025-04-15')
    17
    >>> java_major('java version "1.8.0_402"')
    8
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import WarehouseError

log = logging.getLogger(__name__)

# pyspark 4.x runs on Java 17 or 21 (Spark 4 dropped Java 8 and 11).
MIN_JAVA = 17
INSTALL_EXTRA = 'pip install -e ".[spark]"'
INSTALL_JAVA = "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"


class SparkEnvError(WarehouseError):
    """The machine lacks something the `spark` target needs (Java, pyspark, dbt-spark)."""


@dataclass(frozen=True)
class SparkEnv:
    """What the `spark` target will run on."""

    java: Path
    java_version: str
    pyspark_version: str
    dbt_spark_version: str

    def describe(self) -> str:
        return (
            f"spark target ready: pyspark {self.pyspark_version}, dbt-spark {self.dbt_spark_version}, "
            f"Java {self.java_version} ({self.java})"
        )


def java_major(version_text: str) -> int | None:
    """The major version in `java -version` output (``1.8`` is 8), or None."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_text)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java(environ: dict[str, str] | None = None) -> Path:
    """The `java` that pyspark's launcher will run: `$JAVA_HOME/bin/java`, else `java` on PATH."""
    env = os.environ if environ is None else environ
    java_home = env.get("JAVA_HOME")
    if java_home:
        java = Path(java_home) / "bin" / "java"
        if not os.access(java, os.X_OK):
            raise SparkEnvError(f"spark target: Java not found: JAVA_HOME={java_home} has no bin/java; {INSTALL_JAVA}")
        return java
    found = shutil.which("java", path=env.get("PATH"))
    if not found:
        raise SparkEnvError(f"spark target: Java not found (no `java` on PATH, JAVA_HOME unset); {INSTALL_JAVA}")
    return Path(found)


def java_version(java: Path) -> str:
    """The version string of `java` (e.g. ``17.0.15``); raises when it does not run or is too old."""
    try:
        proc = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise SparkEnvError(f"spark target: Java at {java} does not run ({exc.strerror}); {INSTALL_JAVA}") from None
    text = proc.stderr + proc.stdout
    major = java_major(text)
    if proc.returncode != 0 or major is None:
        first = text.strip().splitlines()[0] if text.strip() else f"exit {proc.returncode}"
        raise SparkEnvError(f"spark target: Java at {java} does not run ({first}); {INSTALL_JAVA}")
    if major < MIN_JAVA:
        raise SparkEnvError(
            f"spark target: Java {major} at {java} is too old: pyspark 4 needs Java {MIN_JAVA}+; {INSTALL_JAVA}"
        )
    return re.search(r'version "([^"]+)"', text).group(1)  # type: ignore[union-attr]


def package_version(module: str, distribution: str) -> str:
    """Version of an installed Python package, or a SparkEnvError naming it."""
    if importlib.util.find_spec(module.split(".")[0]) is None or (
        "." in module and _find_submodule(module) is None
    ):
        raise SparkEnvError(f"spark target: {distribution} is not installed; run {INSTALL_EXTRA}")
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise SparkEnvError(f"spark target: {distribution} is not installed; run {INSTALL_EXTRA}") from None


def _find_submodule(module: str):  # noqa: ANN202 - a ModuleSpec or None
    try:
        return importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return None


def start_gateway(timeout: float = 120) -> None:
    """Start (and stop) pyspark's Java gateway in a child process: proves pyspark can start."""
    code = "from pyspark.java_gateway import launch_gateway; launch_gateway()"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SparkEnvError(f"spark target: pyspark did not start within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise SparkEnvError(f"spark target: pyspark cannot start: {start_failure(proc.stderr, proc.returncode)}")


def start_failure(stderr: str, returncode: int) -> str:
    """The line that says why the gateway did not start: what the launcher printed before the
    traceback (not the shell's own noise), else the traceback's last line.

    >>> start_failure("Error: bad jvm.cfg\\nspark-class: line 97: CMD: bad array subscript\\nTraceback (x)\\n  f\\nE: gone", 1)
    'Error: bad jvm.cfg'
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith(" ")]
    before = lines[: next((i for i, line in enumerate(lines) if line.startswith("Traceback")), len(lines))]
    causes = [line for line in before if "spark-class: line" not in line and "log4j" not in line]
    if causes:
        return causes[0]
    return lines[-1] if lines else f"exit {returncode}"


def check_spark(start: bool = False, environ: dict[str, str] | None = None) -> SparkEnv:
    """Check Python packages, then Java, then (with `start`) a real gateway start; first miss raises."""
    dbt_spark = package_version("dbt.adapters.spark", "dbt-spark")
    pyspark = package_version("pyspark", "pyspark")
    java = find_java(environ)
    version = java_version(java)
    if start:
        start_gateway()
    env = SparkEnv(java=java, java_version=version, pyspark_version=pyspark, dbt_spark_version=dbt_spark)
    log.debug("%s", env.describe())
    return env


def main(argv: list[str] | None = None) -> int:
    """``python -m lineage_tools.spark_env [--start]``: exit 0 and say what runs, or 2 and what lacks."""
    args = sys.argv[1:] if argv is None else argv
    try:
        env = check_spark(start="--start" in args)
    except SparkEnvError as exc:
        sys.stderr.write(f"{exc}\n")
        return SparkEnvError.exit_code
    sys.stderr.write(env.describe() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
