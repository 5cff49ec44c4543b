"""The dbt layer: the only code of this package that knows dbt.

* `config`: where a project is and how dbt would run it (project folder, profiles, target, vars
  at every scope), read once from ``dbt_project.yml`` and ``profiles.yml`` as dbt reads them;
* `manifest`: dbt's artifacts read and checked (the manifest, fresh for THIS project, target and
  adapter; ``run_results.json``: what the warehouse was last built with), the nodes in DAG order,
  seed files read as dbt reads them;
* `runner`: the only place dbt runs: a child ``dbt`` process for builds, and `DbtProject`, dbt's
  parser and compiler in this process (no manifest written unless compiling, no relation cache,
  no warehouse connection) for compiling and for rendering one model's SQL.

Nothing here imports dbt at module level: importing dbt costs about 3 s, and a warm run never
needs it. Everything to the right of this layer (`project`, the SQL engine, `provenance`,
`verify`, `diff`, `report`, the CLI) gets a `DbtConfig` and a graph; none of it runs dbt.
"""

from .config import DbtConfig

__all__ = ["DbtConfig"]
