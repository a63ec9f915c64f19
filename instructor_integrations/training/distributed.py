"""The same fine-tuning run, data-parallel on several workers with Ray Train (extras ``[train]`` and ``[ray]``).

:func:`finetune_with_ray` starts a ``ray.train.torch.TorchTrainer``: each worker runs
:func:`~.trainer.finetune` with the same arguments inside the process group Ray sets up, so
sentence-transformers' trainer runs as distributed data-parallel (gloo on CPUs, NCCL on GPUs). Every
worker reads the rows and takes a share of each step's batches; the first worker alone scores the
held-out sets, chooses the checkpoint and saves the model. ``batch_size`` is per worker: a step of
``N`` workers trains on ``N x batch_size`` rows, and in-batch negatives come from the worker's own
share. ``output`` and the data must be reachable at the same path from every worker (shared storage
on a cluster).

Examples:
    >>> from instructor_integrations.training.distributed import finetune_with_ray  # doctest: +SKIP
    >>> finetune_with_ray("hkunlp/instructor-large", "data/scifact", output="/shared/out", num_workers=4,
    ...                   use_gpu=True, task="SciFact", dev_fraction=0.1, bf16=True)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .._optional import require
from .._validation import check_positive_int
from .trainer import RESULTS_FILE, FinetuneResult, finetune

__all__ = ["finetune_with_ray"]

logger = logging.getLogger(__name__)


def _worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the whole :func:`finetune` run, as one process of the data-parallel group."""
    finetune(config["model"], config["data"], output=config["output"], **config["kwargs"])


def finetune_with_ray(
    model: str,
    data: str | Path | Any,
    *,
    output: str | Path,
    num_workers: int = 2,
    use_gpu: bool = False,
    cpus_per_worker: float = 1,
    address: str | None = None,
    **kwargs: Any,
) -> FinetuneResult:
    """:func:`~.trainer.finetune` on ``num_workers`` Ray Train workers; the result the first worker wrote.

    Args:
        model: The base checkpoint (reachable from every worker).
        data: The training data (a path every worker can read, or rows that are sent to each).
        output: The folder of the saved model (shared by the workers).
        num_workers: Processes of the data-parallel run.
        use_gpu: One GPU per worker.
        cpus_per_worker: CPUs Ray reserves for each worker.
        address: A Ray cluster's address (default: a local Ray, started here if none runs).
        **kwargs: Any other :func:`~.trainer.finetune` argument (``batch_size`` is per worker).

    Returns:
        The :class:`~.trainer.FinetuneResult` of the first worker (``settings["processes"]`` says
        how many took part).
    """
    check_positive_int(num_workers, "num_workers")
    ray = require("ray", "ray")
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    out = Path(output).expanduser().resolve()
    source = str(Path(data).expanduser().resolve()) if isinstance(data, (str, Path)) else data
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
    kwargs.setdefault("progress", False)
    (out / RESULTS_FILE).unlink(missing_ok=True)  # what is read back below is this run's
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"model": model, "data": source, "output": str(out), "kwargs": kwargs},
        scaling_config=ScalingConfig(
            num_workers=num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": cpus_per_worker}
        ),
        run_config=RunConfig(storage_path=str(out / "ray"), name="finetune"),
    )
    trainer.fit()
    record = json.loads((out / RESULTS_FILE).read_text(encoding="utf-8"))
    logger.info("Ray Train run of %d workers: %d steps", num_workers, record["steps"])
    return FinetuneResult(**record)
