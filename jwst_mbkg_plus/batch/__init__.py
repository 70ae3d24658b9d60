"""Batch runs of calwebb_spec2_plus over many exposures, on Dask.

:func:`run_batch` takes rate files, folders of them or spec2 associations,
groups the exposures by visit and detector, runs
`~jwst_mbkg_plus.Spec2PipelinePlus` on each one as a task of a
``dask.distributed`` cluster (a `~distributed.LocalCluster` by default, or an
existing cluster given by its scheduler address), records a failure with its
error and goes on, skips exposures already processed, and writes
``summary.ecsv`` and ``summary.png`` (:mod:`.summary`). The
``jwst-mbkg-plus batch`` command (:mod:`.cli`) calls it.
"""

from jwst_mbkg_plus.batch.runner import (
    BatchResult,
    Exposure,
    collect_exposures,
    group_exposures,
    process_exposure,
    run_batch,
)

__all__ = [
    "BatchResult",
    "Exposure",
    "collect_exposures",
    "group_exposures",
    "process_exposure",
    "run_batch",
]
