"""Quarantine and release: a source's status changed durably, the models it reaches rebuilt, and
proof that no row of it is left. One writer at a time, and nothing lost when several ask at once.

Every change runs under the registry's lock (`registry.locked`), held from reading the registry
to the final proof. Runs that ask meanwhile do not queue a rebuild each: each writes its request
(``<target>/lineage_tools/registry-requests/``) and waits; whoever holds the lock serves every
request waiting (for the same target and vars) in ONE pass: registry edits, one ``dbt seed`` of
the registry, one ``dbt build`` of every affected model, then each request's own proof, and
answers each request in a file its asker reads. Twenty concurrent quarantines cost a few
rebuilds, not twenty, and none reports success for a change that is not there.

* A request not served within `registry.lock_wait()` seconds is withdrawn and its run exits 2
  naming the holder; a request already taken is waited for (its holder is working on it).
* The registry is written only once the rebuild can start (the warehouse can be opened for
  writing); otherwise nothing changes and the answer says the warehouse is busy.
* A rebuild under way is recorded (``pending-rebuilds.json``) until its proof: a run that was
  killed or failed is finished by running it again (the answer names the command), and a run
  with nothing left to do changes nothing and says so.
* A holder that dies leaves its taken requests behind: the next holder serves them.
* dbt runs as a child that ends with its parent (`dbt.runner.run_dbt`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from . import registry as reg
from . import warehouse as wh
from .dbt.runner import run_dbt
from .errors import LineageToolsError, UserError, WarehouseError
from .graph import LineageGraph
from .output import write_text
from .records import ColumnRef
from .provenance import (
    EXCLUDED_VAR,
    MODEL_TYPES,
    Env,
    Impact,
    Provenance,
    exclusions,
    impact,
    read_project_registry,
    registry_node,
    set_sources_argv,
)

log = logging.getLogger(__name__)

POLL = 0.5  # seconds between looks for an answer or for the lock


class RebuildError(LineageToolsError):
    """dbt failed while rebuilding, or rows of the sources remain after it. Exit 1."""

    exit_code = 1


@dataclass(frozen=True)
class ModelRows:
    model: str
    rows_before: int | None
    rows_after: int | None


@dataclass(frozen=True)
class QuarantineResult:
    action: str  # quarantine | release
    source_ids: tuple[str, ...]
    registry_changed: tuple[str, ...]
    models: tuple[ModelRows, ...]
    remaining_tainted_rows: int | None
    dry_run: bool = False
    commands: tuple[str, ...] = ()
    note: str | None = None
    nothing_to_do: bool = False  # the registry and the warehouse already said so: nothing ran


@dataclass(frozen=True)
class Request:
    """One run's ask: set `source_ids` to quarantined or active, for one target and vars."""

    id: str
    action: str
    source_ids: tuple[str, ...]
    reason: str
    rerun: str  # the one command that finishes it, as its asker would type it
    env_key: str  # requests are served together only with the same target, profiles and vars
    made: float
    pid: int  # the asking process: a request whose asker is gone is dropped, not served

    @property
    def quarantine(self) -> bool:
        return self.action == "quarantine"

    @property
    def status(self) -> str:
        return reg.QUARANTINED if self.quarantine else reg.ACTIVE


def rerun_command(env: Env, action: str, source_ids: Sequence[str], reason: str = "") -> str:
    """The one command that finishes an interrupted or failed `quarantine` / `release`.

    >>> rerun_command(Env("/p", target="spark"), "quarantine", ["a"], "bad  batch")
    "lineage-tools quarantine a --reason 'bad batch' --project-dir /p --target spark"
    """
    argv = ["lineage-tools", action, *source_ids]
    if reason.strip():
        argv += ["--reason", " ".join(reason.split())]
    argv += ["--project-dir", str(env.project_dir)]
    if env.profiles_dir is not None:
        argv += ["--profiles-dir", str(env.profiles_dir)]
    if env.target:
        argv += ["--target", env.target]
    if env.vars is not None:
        argv += ["--vars", json.dumps(env.vars, sort_keys=True)]
    return shlex.join(argv)


def _env_key(env: Env) -> str:
    return json.dumps([str(env.profiles_dir or ""), env.target or "", env.vars], sort_keys=True, default=str)


# ---- the public entry point --------------------------------------------------------------------


def set_sources(
    graph: LineageGraph,
    env: Env,
    source_ids: Sequence[str],
    *,
    quarantine: bool,
    reason: str = "",
    dry_run: bool = False,
    on_line: Callable[[str], None] | None = None,
    wait: float | None = None,
) -> QuarantineResult:
    """Quarantine (or release) sources durably: registry status, then rebuild, then proof.

    Raises `RebuildError` (exit 1) when dbt fails or rows remain, `UserError` (exit 2) for bad
    input, a busy warehouse or a registry held longer than `wait` seconds (default
    `registry.lock_wait()`). See the module docstring for how concurrent runs are served."""
    action = "quarantine" if quarantine else "release"
    registry = read_project_registry(graph.project, env.project_dir)
    ids = reg.validate_ids(source_ids, registry)
    if quarantine and not reason.strip():
        raise UserError("quarantine needs --reason TEXT (it is recorded in the registry)")
    if dry_run:
        return _plan(graph, env, registry, ids, quarantine)[0]
    request = Request(uuid.uuid4().hex, action, ids, " ".join(reason.split()),
                      rerun_command(env, action, ids, reason), _env_key(env), time.time(), os.getpid())
    queue = _Queue(env.cache_dir / "registry-requests")
    queue.put(request)
    give_up = time.monotonic() + (reg.lock_wait() if wait is None else wait)
    served_by_other = False
    while True:
        answer = queue.answer(request.id)
        if answer is not None:
            if served_by_other:
                log.info("lineage-tools: %s was served by another run, with other requests in one rebuild", action)
            return _unpack(answer)
        try:
            with reg.locked(registry.path, wait=POLL):
                answer = queue.answer(request.id)
                if answer is None:
                    _serve(graph, env, registry.path, queue, request, on_line)
                    answer = queue.answer(request.id)
                    if answer is None:  # left for a later pass (it conflicted with an earlier request)
                        continue
                return _unpack(answer)
        except reg.RegistryBusyError:
            served_by_other = True
            if time.monotonic() < give_up:
                continue
            if queue.withdraw(request.id):
                raise reg.RegistryBusyError(
                    f"the source registry {registry.path} is being changed by {reg.holder(registry.path)}; "
                    f"waited {(reg.lock_wait() if wait is None else wait):g} s (LINEAGE_TOOLS_LOCK_WAIT sets how "
                    f"long); nothing was changed for this run: {request.rerun}") from None
            # taken by the holder: it is being served; wait for the answer


# ---- requests and answers on disk ---------------------------------------------------------------


class _Queue:
    """Requests waiting (``*.json``), taken by a holder (``*.taken``), answered (``*.answer``).
    Moves between states are renames, so a request is taken or withdrawn exactly once."""

    def __init__(self, folder: Path):
        self.folder = folder

    def put(self, request: Request) -> None:
        write_text(json.dumps(asdict(request)), self.folder / f"{request.made:.6f}-{request.id}.json")

    def answer(self, request_id: str) -> dict[str, Any] | None:
        path = self.folder / f"{request_id}.answer"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return data

    def withdraw(self, request_id: str) -> bool:
        """Remove a request nobody took yet; False when a holder has taken it."""
        for path in self.folder.glob(f"*-{request_id}.json"):
            try:
                path.unlink()
                return True
            except FileNotFoundError:
                return False
        return False

    def take(self, env_key: str) -> list[tuple[Path, Request]]:
        """Every waiting request for `env_key`, oldest first. Only a holder of the lock calls
        this, so a taken file now was left by a holder that died: it waits again if its asker
        still waits, and is dropped (with the answer files nobody will read) if not."""
        if not self.folder.is_dir():
            return []
        for orphan in self.folder.glob("*.taken"):
            with contextlib.suppress(OSError):
                orphan.rename(orphan.with_suffix(".json"))
        taken = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                request = Request(**{**data, "source_ids": tuple(data["source_ids"])})
            except (OSError, ValueError, TypeError, KeyError):
                log.warning("lineage-tools: ignoring an unreadable request %s", path.name)
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            if not _alive(request.pid):
                log.info("lineage-tools: dropping the %s of %s: its run has ended", request.action,
                         ", ".join(request.source_ids))
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            if request.env_key != env_key:
                continue  # another target or vars: its own asker serves it
            held = path.with_suffix(".taken")
            try:
                path.rename(held)
            except FileNotFoundError:
                continue  # withdrawn meanwhile
            taken.append((held, request))
        return taken

    def put_back(self, held: Path) -> None:
        with contextlib.suppress(OSError):
            held.rename(held.with_suffix(".json"))

    def reply(self, held: Path, request: Request, answer: dict[str, Any]) -> None:
        write_text(json.dumps(answer), self.folder / f"{request.id}.answer")
        with contextlib.suppress(FileNotFoundError):
            held.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _result_answer(result: QuarantineResult) -> dict[str, Any]:
    return {"result": {**asdict(result), "models": [asdict(m) for m in result.models]}}


def _error_answer(exc: LineageToolsError) -> dict[str, Any]:
    kind = "rebuild" if isinstance(exc, RebuildError) else "busy" if isinstance(exc, wh.WarehouseBusy) else "user"
    return {"error": str(exc), "kind": kind}


def _unpack(answer: dict[str, Any]) -> QuarantineResult:
    if "error" in answer:
        kind = answer.get("kind")
        if kind == "rebuild":
            raise RebuildError(answer["error"])
        if kind == "busy":
            raise wh.WarehouseBusy(answer["error"])
        raise UserError(answer["error"])
    data = dict(answer["result"])
    data["models"] = tuple(ModelRows(**m) for m in data["models"])
    for key in ("source_ids", "registry_changed", "commands"):
        data[key] = tuple(data[key])
    return QuarantineResult(**data)


# ---- planning ------------------------------------------------------------------------------------


def _plan(graph: LineageGraph, env: Env, registry: reg.Registry, ids: tuple[str, ...],
          quarantine: bool) -> tuple[QuarantineResult, Impact]:
    """What a quarantine or release would change and run (a dry run's result), and the static
    impact it is planned from."""
    action = "quarantine" if quarantine else "release"
    status = reg.QUARANTINED if quarantine else reg.ACTIVE
    imp = impact(graph, env, ids, count=False)
    affected = [m.model for m in imp.models]
    seed_argv, build_argv = set_sources_argv(env, registry_node(graph.project).name, affected)
    commands = (shlex.join(seed_argv),) + ((shlex.join(build_argv),) if affected else ())
    changes = tuple(s for s in ids if (registry.get(s) and registry.get(s).status) != status)
    note = None
    if not quarantine:
        ex = exclusions(env)
        still = [s for s in ids if s in ex.in_force]
        if still:
            where = ("given by --vars" if ex.from_vars else f"since `{ex.last_build}`" if ex.built is not None
                     else "in dbt_project.yml")
            note = f"{', '.join(still)} stay excluded by the dbt var {EXCLUDED_VAR} ({where})"
    if not affected:
        note = (note + "; " if note else "") + "no rows of these sources: nothing to rebuild"
    result = QuarantineResult(action, ids, changes, tuple(ModelRows(m, None, None) for m in affected),
                              None, True, commands, note)
    return result, imp


def _pending_path(env: Env) -> Path:
    """Rebuilds started and not yet ended with their proof (read and written under the lock)."""
    return env.cache_dir / "pending-rebuilds.json"


def _pending(env: Env) -> list[dict[str, Any]]:
    try:
        data = json.loads(_pending_path(env).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def _set_pending(env: Env, entries: list[dict[str, Any]]) -> None:
    if entries:
        write_text(json.dumps(entries), _pending_path(env))
    else:
        with contextlib.suppress(FileNotFoundError):
            _pending_path(env).unlink()


def _counts(env: Env, graph: LineageGraph, prov: Provenance, uids: Sequence[str], ids: Sequence[str],
            imp: Impact) -> wh.Counts:
    """Rows of the models in `uids`, and rows carrying `ids` (source masks read with the
    registry's bits, from `imp`)."""
    project = graph.project
    nodes = {n.unique_id: n for n in project.nodes}
    rels = [wh.Relation(u, _ref(nodes[u]), nodes[u].schema, nodes[u].identifier, prov.provenance_columns(u),
                        nodes[u].relation_name)
            for u in uids if nodes[u].materialized != "ephemeral"]
    return wh.count_rows(env, project.dialect, rels, ids, dict(imp.source_bits))


def _ref(node: Any) -> str:
    if node.resource_type == "source":
        return "{{ source(%r, %r) }}" % (node.source_name or node.unique_id.split(".")[-2], node.name)
    return "{{ ref(%r) }}" % node.name


def _remaining(counts: wh.Counts) -> int:
    return sum((c.tainted_rows or 0) for c in counts.rows.values())


def _unreadable_message(prov: Provenance, imp: Impact, after: wh.Counts) -> str | None:
    """Why the proof cannot say how many rows are left, naming each column it cannot read."""
    changed: list[str] = []
    steps: list[str] = []
    typed: list[str] = []
    for m in imp.models:
        for c in m.unreadable_columns:
            ref = ColumnRef(m.unique_id, c)
            if prov.changed_roots(ref):
                changed.append(f"{m.model}.{c}")
                step = prov.changing_step(ref)
                if step and f"`{step.sql}`" not in steps:
                    steps.append(f"`{step.sql}`")
        typed += [f"{m.model}.{c}" for c in after.unreadable.get(m.unique_id, ()) if f"{m.model}.{c}" not in changed]
    parts = []
    if changed:
        parts.append(f"{', '.join(changed)} hold{'s' if len(changed) == 1 else ''} source ids changed by "
                     f"{', '.join(steps) or 'a transformation'}: not provenance, so the rows "
                     f"{'it holds' if len(changed) == 1 else 'they hold'} cannot be read (check, rule 5)")
    if typed:
        parts.append(f"{', '.join(typed)} cannot be read: no source ids in a column of that type")
    return "; ".join(parts) or None


# ---- serving: one pass for every waiting request ------------------------------------------------


@dataclass
class _Job:
    held: Path
    request: Request
    plan: QuarantineResult
    impact: Impact
    before: wh.Counts | None = None


def _serve(graph: LineageGraph, env: Env, registry_path: Path, queue: _Queue, mine: Request,
           on_line: Callable[[str], None] | None) -> None:
    """Serve every request waiting for this target (mine among them) in one pass."""
    taken = queue.take(mine.env_key)
    registry = reg.read_registry(registry_path)
    prov = Provenance(graph)
    every = [m.node.unique_id for m in graph.project.models
             if m.node.resource_type in MODEL_TYPES and prov.provenance_columns(m.node.unique_id)]
    jobs: list[_Job] = []
    claimed: set[str] = set()
    for held, request in taken:
        if claimed & set(request.source_ids):  # a later ask about the same source: next pass
            queue.put_back(held)
            continue
        try:
            ids = reg.validate_ids(request.source_ids, registry)
            plan, imp = _plan(graph, env, registry, ids, request.quarantine)
        except LineageToolsError as exc:
            queue.reply(held, request, _error_answer(exc))
            continue
        claimed |= set(request.source_ids)
        jobs.append(_Job(held, request, replace(plan, dry_run=False), imp))
    pending = _pending(env)
    for e in pending:
        if not any(set(e.get("source_ids") or ()) <= set(job.request.source_ids) for job in jobs):
            log.warning("lineage-tools: the %s of %s was left unfinished (the registry is changed, the rebuild or its "
                        "proof did not end); to finish: %s", e.get("action"), ", ".join(e.get("source_ids") or ()),
                        e.get("rerun"))
    work: list[_Job] = []
    try:
        for job in jobs:
            result = _nothing_to_do(env, graph, prov, every, job, pending)
            if result is not None:
                queue.reply(job.held, job.request, _result_answer(result))
            else:
                work.append(job)
        if work:
            _prepare(graph, env, prov, work)
    except LineageToolsError as exc:  # before anything was written: say so to every request left
        for job in jobs:
            if job.held.exists():
                queue.reply(job.held, job.request, _error_answer(_unchanged(exc, job.request)))
        return
    if not work:
        return
    try:
        _rebuild(graph, env, registry, work, pending, on_line)
    except LineageToolsError as exc:  # answered to every request of the pass
        for job in work:
            queue.reply(job.held, job.request, _error_answer(_for_request(exc, job.request)))
        return
    done: list[set[str]] = []
    for job in work:
        try:
            result = _prove(env, graph, prov, every, job)
            others = [f"the {j.request.action} of {', '.join(j.request.source_ids)}" for j in work if j is not job]
            if others:
                together = (f"rebuilt in one pass with {', '.join(others)} (asked at the same time): the row counts "
                            "include their changes")
                result = replace(result, note=f"{result.note}; {together}" if result.note else together)
            answer = _result_answer(result)
            done.append(set(job.request.source_ids))
        except LineageToolsError as exc:
            answer = _error_answer(exc)
        queue.reply(job.held, job.request, answer)
    # a rebuild is finished once its sources' latest change is proven
    _set_pending(env, [e for e in _pending(env) if not any(set(e.get("source_ids") or ()) <= ids for ids in done)])


def _unchanged(exc: LineageToolsError, request: Request) -> LineageToolsError:
    """An error met before anything was written, saying so and how to try again."""
    out = type(exc)(f"{exc}; nothing was changed: once that is fixed, run {request.rerun}")
    return out


def _for_request(exc: LineageToolsError, request: Request) -> LineageToolsError:
    """The pass's failure, ending with the command that finishes this request."""
    if isinstance(exc, RebuildError):
        return RebuildError(f"{exc} To finish, fix it, then: {request.rerun}")
    return exc


def _nothing_to_do(env: Env, graph: LineageGraph, prov: Provenance, every: Sequence[str], job: _Job,
                   pending: list[dict[str, Any]]) -> QuarantineResult | None:
    """The answer for a request whose change is already made (registry, rebuild, proof), else None."""
    request, plan = job.request, job.plan
    if plan.registry_changed or any(set(e.get("source_ids") or ()) & set(request.source_ids) for e in pending):
        return None
    uids = list(dict.fromkeys([*(m.unique_id for m in job.impact.models), *every]))
    counts = _counts(env, graph, prov, uids, request.source_ids, job.impact) if request.quarantine else None
    remaining = _remaining(counts) if counts else None
    if remaining or (counts and _unreadable_message(prov, job.impact, counts)):  # the proof will say why
        return None
    ids = ", ".join(request.source_ids)
    state = "quarantined" if request.quarantine else "active"
    note = (f"nothing to do: {ids} {'is' if len(request.source_ids) == 1 else 'are'} already {state} in the registry, "
            "no rebuild of them is pending" + (" and no row carries them" if request.quarantine else ""))
    if not request.quarantine and plan.note and "nothing to rebuild" not in plan.note:
        note = f"{note}; {plan.note}"
    return replace(plan, models=(), remaining_tainted_rows=remaining, note=note, nothing_to_do=True)


def _prepare(graph: LineageGraph, env: Env, prov: Provenance, work: list[_Job]) -> None:
    """Rows before, and the rebuild can start (the warehouse is built and can be opened for
    writing): checked before anything is written."""
    for job in work:
        uids = [m.unique_id for m in job.impact.models]
        job.before = _counts(env, graph, prov, uids, job.request.source_ids, job.impact) if uids else wh.Counts({}, False)
        if uids and not job.before.built:
            raise WarehouseError(f"cannot {job.request.action}: the warehouse is not built (run `dbt build` first)")
    wh.ensure_writable(env)


def _rebuild(graph: LineageGraph, env: Env, registry: reg.Registry, work: list[_Job],
             pending: list[dict[str, Any]], on_line: Callable[[str], None] | None) -> None:
    """Registry edits of every request, then one seed and one build for all of them."""
    _set_pending(env, pending + [{"id": j.request.id, "action": j.request.action,
                                  "source_ids": list(j.request.source_ids), "rerun": j.request.rerun} for j in work])
    for job in work:
        changed = reg.set_status(registry.path, job.request.source_ids, job.request.status, job.request.reason)
        job.plan = replace(job.plan, registry_changed=changed)
    marks = "; ".join(f"{', '.join(j.request.source_ids)} {j.request.status}" for j in work)
    what = f"the registry file {registry.path.name} marks {marks}"
    affected = list(dict.fromkeys(m.model for j in work for m in j.impact.models))
    seed_argv, build_argv = set_sources_argv(env, registry_node(graph.project).name, affected)
    if len(work) > 1:
        log.info("lineage-tools: serving %d requests in one rebuild", len(work))
    rc = run_dbt(env, list(seed_argv[1:]), on_line)
    if rc != 0:
        raise RebuildError(f"`{shlex.join(seed_argv)}` failed (exit {rc}). State: {what}; the warehouse is "
                           "unchanged (its registry table and every model hold the rows they held before).")
    if affected:
        rc = run_dbt(env, list(build_argv[1:]), on_line)
        if rc != 0:
            raise RebuildError(
                f"`{shlex.join(build_argv)}` failed (exit {rc}). State: {what}, and so does the warehouse's registry "
                "table; the models dbt rebuilt before the failure are rebuilt, the failed one and those downstream "
                "of it hold their old rows (dbt's log above names the failure).")


def _prove(env: Env, graph: LineageGraph, prov: Provenance, every: Sequence[str], job: _Job) -> QuarantineResult:
    """Count again after the rebuild: the rows per affected model, and no row of a quarantined
    source anywhere a provenance column could hold it."""
    uids = [m.unique_id for m in job.impact.models]
    after = _counts(env, graph, prov, list(dict.fromkeys([*uids, *every])), job.request.source_ids, job.impact)
    before = job.before or wh.Counts({}, False)
    rows = tuple(ModelRows(m.model, before.rows[m.unique_id].total_rows if m.unique_id in before.rows else None,
                           after.rows[m.unique_id].total_rows if m.unique_id in after.rows else None)
                 for m in job.impact.models)
    remaining = _remaining(after)
    unreadable = _unreadable_message(prov, job.impact, after)
    ids = ", ".join(job.request.source_ids)
    if job.request.quarantine and (remaining or unreadable):
        left = f"{remaining} row(s) still carry {ids} after the rebuild" if remaining else ""
        proof = f"cannot prove that no row of {ids} is left: {unreadable}" if unreadable else ""
        raise RebuildError(
            f"{'; '.join(x for x in (left, proof) if x)}; the rebuild stays pending. To look: lineage-tools impact "
            f"{' '.join(job.request.source_ids)}; to retry: {job.request.rerun}")
    note = job.plan.note
    if unreadable:
        note = f"{note}; {unreadable}" if note else unreadable
    return replace(job.plan, models=rows, remaining_tainted_rows=None if unreadable else remaining, note=note)
