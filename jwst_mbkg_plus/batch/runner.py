"""Orchestration of a batch run: inputs, groups, Dask tasks, records.

Each exposure is one task. A task sets up the CRDS environment itself (worker
processes do not see environment changes the client makes after they start),
runs `~jwst_mbkg_plus.Spec2PipelinePlus` with the MOS master background on and
its QA record saved, and returns a plain record (a dict) that the client writes
beside the products (``<exposure>_batch.json``) and into the summary. Any error
is caught in the task and recorded, naming the file; a task lost with its worker
is recorded the same way by the client. Nothing here builds a process pool:
all parallelism is Dask's.
"""

import dataclasses
import json
import logging
import os
import time
import traceback
import uuid
from pathlib import Path

import numpy as np

from jwst_mbkg_plus.batch._task_env import log_level as pipeline_log_level
from jwst_mbkg_plus.batch._task_env import restore_environment, set_environment
from jwst_mbkg_plus.batch.cluster import client_env, make_client
from jwst_mbkg_plus.batch.inputs import Exposure, collect_exposures, group_exposures
from jwst_mbkg_plus.batch.lock import batch_lock
from jwst_mbkg_plus.safe_io import atomic_write_text

__all__ = [
    "BatchResult",
    "Exposure",
    "collect_exposures",
    "group_exposures",
    "prepare_companion_task",
    "peak_rss_mb",
    "process_exposure",
    "run_batch",
]

log = logging.getLogger(__name__)

#: Suffix of the per-exposure record written beside the products.
RECORD_SUFFIX = "_batch.json"
#: Product suffixes whose presence (with a "done" record) marks a finished exposure.
PRODUCT_SUFFIXES = ("_cal.fits", "_x1d.fits")


def _record_path(output_dir, exposure):
    return Path(output_dir) / f"{exposure.stem}{RECORD_SUFFIX}"


def finished_record(exposure, output_dir):
    """
    Return the record of an exposure already processed into ``output_dir``, or None.

    Parameters
    ----------
    exposure : Exposure
        The exposure.
    output_dir : str or pathlib.Path
        The batch's output folder.

    Returns
    -------
    dict or None
        The stored record if its status is "done" and its products exist.
    """
    path = _record_path(output_dir, exposure)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") != "done":
        return None
    if not all((Path(output_dir) / f"{exposure.stem}{s}").is_file() for s in PRODUCT_SUFFIXES):
        return None
    return record


def _base_record(exposure):
    return {
        "file": exposure.path.name,
        "path": str(exposure.path),
        "visit": exposure.visit,
        "detector": exposure.detector,
        "status": "failed",
        "error": "",
        "seconds": float("nan"),
        "master_median": float("nan"),
        "master_level": float("nan"),
        "rejected_slitlets": [],
        "n_background_slitlets": 0,
        "residual_median": float("nan"),
        "pull_spread": float("nan"),
        "host": "",
        "pid": 0,
        "peak_rss_mb": float("nan"),
    }


def _qa_figures(qa):
    """Summary figures of a MOS QA record (see `~jwst_mbkg_plus.io.products.read_qa`)."""
    vetting = dict(qa.get("vetting") or {})
    rejected = vetting.get("rejected") or []
    rejected = sorted(str(r) for r in (rejected.keys() if isinstance(rejected, dict)
                                       else rejected))
    residuals = dict(qa.get("residuals") or {})
    medians = [float(r.get("median_relative", np.nan)) for r in residuals.values()
               if isinstance(r, dict)]
    pulls = dict(qa.get("pull_summary") or {})
    return {
        "rejected_slitlets": rejected,
        "n_background_slitlets": len(qa.get("slits") or []),
        "residual_median": float(np.nanmedian(medians)) if np.isfinite(medians).any()
        else float("nan"),
        "pull_spread": float(pulls.get("pull_spread", np.nan)),
        "master_level": float(dict(qa.get("visit") or {}).get("level", np.nan)),
    }


def _master_median(path):
    """Median surface brightness of a masterbg1d product [MJy/sr], NaN if absent."""
    if not path.is_file():
        return float("nan")
    from stdatamodels.jwst import datamodels

    with datamodels.open(path) as model:
        sb = np.asarray(model.spec[0].spec_table["SURF_BRIGHT"], dtype=float)
    return float(np.nanmedian(sb)) if np.isfinite(sb).any() else float("nan")


def prepare_companion_task(exposure, output_dir, *, env, force=False, log_level=None):
    """
    Calibrate one exposure's background slitlets as extended, for a visit master (a task).

    Parameters
    ----------
    exposure : Exposure
        The exposure.
    output_dir : str or pathlib.Path
        Folder of the ``<exposure>_bkgcal.fits`` file.
    env : dict
        CRDS/stpipe environment, as for :func:`process_exposure`.
    force : bool, optional
        Rewrite an existing file.
    log_level : str or int, optional
        Level of the pipeline's loggers while the task runs (None: unchanged).

    Returns
    -------
    dict
        ``{"path": str or None, "error": str}``.
    """
    from jwst_mbkg_plus.mos.visit import COMPANION_SUFFIX

    path = Path(output_dir) / f"{exposure.stem}{COMPANION_SUFFIX}.fits"
    if path.is_file() and not force:
        return {"path": str(path), "error": ""}
    saved = None
    try:
        saved = set_environment(env)
        from jwst_mbkg_plus.mos.step import MasterBackgroundMosPlusStep
        from jwst_mbkg_plus.mos.visit import prepare_companion
        from jwst_mbkg_plus.safe_io import check_input_file

        if exposure.problem:
            raise ValueError(exposure.problem)
        check_input_file(exposure.path, "rate file")
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        with pipeline_log_level(log_level):
            prepare_companion(exposure.path, path, step=MasterBackgroundMosPlusStep())
        return {"path": str(path), "error": ""}
    except Exception as err:  # noqa: BLE001 - the exposure's own task reports it
        return {"path": None, "error": f"{exposure.path.name}: {type(err).__name__}: {err}"}
    finally:
        restore_environment(saved)


def process_exposure(exposure, output_dir, *, env, steps=None, companions=None,
                     log_level=None):
    """
    Run calwebb_spec2_plus on one exposure and return its record (a Dask task).

    Never raises for a problem of the exposure: the error, naming the file, is
    in the record.

    Parameters
    ----------
    exposure : Exposure
        The exposure.
    output_dir : str or pathlib.Path
        Folder of the products (created).
    env : dict
        CRDS/stpipe environment (:data:`~jwst_mbkg_plus.offline.OFFLINE_ENV_KEYS`,
        None = unset), applied before anything touches crds.
    steps : dict, optional
        ``steps`` parameters of the pipeline, merged over the batch defaults
        (master background on, its QA and background products saved).
    companions : list of dict, optional
        Results of :func:`prepare_companion_task` for the other exposures of the
        same visit and detector: a visit master is built from those with a file
        (``visit_companions``); None: a master per exposure.
    log_level : str or int, optional
        Level of the pipeline's loggers while the task runs (None: unchanged).

    Returns
    -------
    dict
        The record: file, status ("done" or "failed"), error, seconds, master
        median level, rejected slitlets, residual QA, host, process id and the
        process's peak memory so far.
    """
    import socket

    t0 = time.perf_counter()
    record = _base_record(exposure)
    record["host"], record["pid"] = socket.gethostname(), os.getpid()
    saved = None
    try:
        saved = set_environment(env)
        from jwst_mbkg_plus.safe_io import check_input_file

        if exposure.problem:
            raise ValueError(exposure.problem)
        check_input_file(exposure.path, "rate file")
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        from jwst_mbkg_plus.io.products import read_qa
        from jwst_mbkg_plus.pipelines import Spec2PipelinePlus

        mbkg = {"skip": False, "save_qa": True, "save_background": True}
        merged = {k: dict(v) for k, v in (steps or {}).items()}
        merged["master_background_mos"] = {**mbkg, **merged.get("master_background_mos", {})}
        if companions is not None:
            paths = [c["path"] for c in companions if c.get("path")]
            if not paths:
                raise RuntimeError("visit master: no companion exposure could be calibrated ("
                                   + "; ".join(c.get("error", "") for c in companions) + ")")
            merged["master_background_mos"]["visit_companions"] = paths
            record["companions"] = [Path(p).name for p in paths]
        with pipeline_log_level(log_level):
            result = Spec2PipelinePlus.call(str(exposure.path), steps=merged,
                                            output_dir=str(output_dir), save_results=True,
                                            configure_log=False)
        models = result if isinstance(result, (list, tuple)) else [result]
        status = [getattr(m.meta.cal_step, "master_background", None) for m in models]
        for m in models:
            m.close()
        qa_path = output_dir / f"{exposure.stem}_mbkgqa.asdf"
        if qa_path.is_file():
            record.update(_qa_figures(read_qa(qa_path)))
        record["master_median"] = _master_median(output_dir / f"{exposure.stem}_masterbg1d.fits")
        if "COMPLETE" not in status:
            record["error"] = (f"{exposure.path.name}: master_background recorded "
                               f"{status[0] if status else 'nothing'} (see the pipeline log)")
        else:
            record["status"] = "done"
    except Exception as err:  # noqa: BLE001 - recorded, the batch goes on
        detail = str(err)
        if exposure.path.name not in detail:
            detail = f"{exposure.path.name}: {type(err).__name__}: {detail}"
        record["error"] = detail
        record["traceback"] = traceback.format_exc(limit=8)
    finally:
        restore_environment(saved)
    record["seconds"] = time.perf_counter() - t0
    record["peak_rss_mb"] = peak_rss_mb()
    return record


def peak_rss_mb():
    """Peak resident memory of this process so far [MB] (NaN where unknown).

    Linux's ``VmHWM``: ``ru_maxrss`` survives ``exec``, so a worker or benchmark
    child would report its parent's peak if that was higher.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclasses.dataclass
class BatchResult:
    """
    Outcome of :func:`run_batch`.

    Attributes
    ----------
    records : list of dict
        One record per exposure (see :func:`process_exposure`), status "done",
        "skipped" or "failed".
    summary_ecsv : pathlib.Path
        The summary table.
    summary_png : pathlib.Path or None
        The summary plot (None without matplotlib).
    seconds : float
        Wall time of the batch.
    scheduler : str
        Address of the scheduler used.
    """

    records: list
    summary_ecsv: Path
    summary_png: Path | None
    seconds: float
    scheduler: str

    def count(self, status):
        """
        Return how many exposures ended with a status.

        Parameters
        ----------
        status : str
            "done", "skipped" or "failed".

        Returns
        -------
        int
            The count.
        """
        return sum(r["status"] == status for r in self.records)


def run_batch(inputs, output_dir, *, workers=None, scheduler=None, force=False, steps=None,
              crds=None, memory_limit="auto", progress=None, plot=True, visit_master=False,
              log_level=None, wait=0.0):
    """
    Run calwebb_spec2_plus on many exposures with Dask and write the summary.

    Parameters
    ----------
    inputs : str or pathlib.Path or sequence of them
        Rate files, folders of them, or spec2 association files.
    output_dir : str or pathlib.Path
        Folder of all products, the per-exposure records and the summary (created).
    workers : int, optional
        Worker processes of the LocalCluster (one thread each); default one per core.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:port``) to use instead
        of a LocalCluster; ``workers`` and ``memory_limit`` are then ignored.
    force : bool, optional
        Process exposures whose products already exist.
    steps : dict, optional
        ``steps`` parameters of `~jwst_mbkg_plus.Spec2PipelinePlus`.
    crds : str or pathlib.Path, optional
        A CRDS cache folder holding a local context (e.g. the synthetic
        instrument's) that every task selects offline; default: every task uses
        the CRDS environment of the calling process.
    memory_limit : str or float, optional
        Memory limit per LocalCluster worker (dask's syntax: "4GB", "auto").
    progress : callable, optional
        Called with one line of text per finished exposure (default: log it).
    plot : bool, optional
        Write ``summary.png`` (needs matplotlib).
    visit_master : bool, optional
        Build each exposure's master from the background slitlets of every
        exposure of its visit and detector: each exposure's background slitlets
        are calibrated as extended once (one task each, ``*_bkgcal.fits``), then
        each exposure runs with the others as ``visit_companions``. A group of one
        exposure gets a per-exposure master.
    log_level : str or int, optional
        Level of jwst's and the plus steps' loggers in the tasks (e.g. "WARNING"
        keeps the workers' output to warnings); None leaves them as they are.
    wait : float, optional
        Seconds to wait for another batch running on ``output_dir`` to finish
        (`~jwst_mbkg_plus.batch.lock.batch_lock`); 0 refuses at once.

    Returns
    -------
    BatchResult
        The records, summary paths, wall time and scheduler address.
    """
    t0 = time.perf_counter()
    say = progress or log.info
    output_dir = Path(output_dir).expanduser().resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    with batch_lock(output_dir, wait=wait, say=say):
        return _run_batch(inputs, output_dir, say, t0, workers=workers, scheduler=scheduler,
                          force=force, steps=steps, crds=crds, memory_limit=memory_limit,
                          plot=plot, visit_master=visit_master, log_level=log_level)


def _run_batch(inputs, output_dir, say, t0, *, workers, scheduler, force, steps, crds,
               memory_limit, plot, visit_master, log_level):
    """The batch of `run_batch`, once the output folder is locked."""
    from dask.distributed import as_completed

    from jwst_mbkg_plus.batch.summary import write_summary

    exposures = collect_exposures(inputs)
    groups = group_exposures(exposures)
    records = {}
    todo = []
    for exposures_of_group in groups.values():
        for e in exposures_of_group:
            done = None if force else finished_record(e, output_dir)
            if done is not None:
                records[e.path] = {**done, "status": "skipped", "error": ""}
            else:
                todo.append(e)
    n_total = len(exposures)
    say(f"{n_total} exposures in {len(groups)} visit/detector groups: {len(todo)} to run, "
        f"{n_total - len(todo)} already done (skipped)")
    address = ""
    if todo:
        client, cluster = make_client(scheduler, workers, memory_limit)
        try:
            address = client.scheduler.address
            n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            say(f"Dask scheduler {address}, {n_workers} workers")
            env = client_env(crds)
            futures = {}
            # Groups in order: earlier groups get higher priority, so a group's
            # exposures run together.
            group_rank = {g: i for i, g in enumerate(groups)}
            prepared = {}
            if visit_master:
                for group, members in groups.items():
                    if len(members) < 2 or not any(e in todo for e in members):
                        continue
                    for e in members:
                        prepared[e.path] = client.submit(
                            prepare_companion_task, e, str(output_dir), env=env, force=force,
                            log_level=log_level,
                            key=f"bkgcal-{e.stem}-{uuid.uuid4().hex[:8]}",
                            priority=len(groups) - group_rank[group] + 1, pure=False,
                        )
            for e in todo:
                companions = None
                if e.path in prepared:
                    companions = [prepared[o.path] for o in groups[e.group] if o.path != e.path]
                future = client.submit(
                    process_exposure, e, str(output_dir), env=env, steps=steps,
                    companions=companions, log_level=log_level,
                    key=f"spec2plus-{e.stem}-{uuid.uuid4().hex[:8]}",
                    priority=len(groups) - group_rank[e.group], pure=False,
                )
                futures[future] = e
            finished = 0
            for future in as_completed(futures):
                e = futures[future]
                try:
                    record = future.result()
                except Exception as err:  # noqa: BLE001 - e.g. a worker killed by memory
                    record = _base_record(e)
                    record["error"] = f"{e.path.name}: task lost: {type(err).__name__}: {err}"
                finished += 1
                records[e.path] = record
                atomic_write_text(_record_path(output_dir, e),
                                  json.dumps(record, indent=1, default=str))
                tail = f": {record['error']}" if record["status"] == "failed" else ""
                say(f"[{finished}/{len(todo)}] {record['status']:<6s} {e.path.name} "
                    f"({e.visit} {e.detector}, {record['seconds']:.0f} s){tail}")
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    ordered = [records[e.path] for e in exposures]
    ecsv, png = write_summary(ordered, output_dir, plot=plot)
    result = BatchResult(ordered, ecsv, png, time.perf_counter() - t0, address)
    say(f"{result.count('done')} done, {result.count('skipped')} skipped, "
        f"{result.count('failed')} failed in {result.seconds:.0f} s; summary {ecsv}"
        + (f" and {png}" if png else ""))
    return result
