"""Model execution: one loaded model and the ways to run planned batches on it in this process.

:class:`ModelRunner` loads a sentence-transformers checkpoint from resolved
:class:`~instructor_integrations.settings.EncoderSettings`, applies this package's execution choices
(on the CPU the process's allocator tuning, weight dtype, T5's shared mask on CUDA, blocked bf16
attention on CPUs without AMX, ``torch.compile``, the int8 ONNX Runtime graph of ``precision="int8"``)
and runs ``(prompt, bodies)`` batches that the encoder planned, through sentence-transformers' public
``preprocess`` and ``forward`` (what ``SentenceTransformer.encode`` runs per batch, without its sorting
and splitting: the batches are already planned).

Several batches run as a staged pipeline where that pays (on accelerators): a tokenizing thread
prepares the next batches while this thread runs the current one on the device. Only that thread
touches the model's tokenizer during a call, so the Rust tokenizer is never used from two threads at
once, and one batch's activations are on the device at a time.

It knows nothing of instructions, queues or callers: the encoder (:mod:`.encoder`) holds those, and a
worker process of ``num_workers`` holds a runner of its own (:mod:`.pool`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from .._reference import REFERENCE_MAX_SEQ_LENGTH
from ..errors import ModelLoadError
from ..settings import EncoderSettings
from .cpu import tune_cpu_process
from .cpu_attention import use_blocked_cpu_attention
from .int8 import Int8Backbone
from .runtime import Plan, cpu_has_amx, cpu_has_fast_bf16, resolve_device, resolve_plan
from .t5 import share_t5_attention_mask

__all__ = ["STAGE_DEPTH", "BatchRunner", "ModelRunner", "env_flag"]

logger = logging.getLogger(__name__)

#: Batches the tokenizing thread may prepare ahead of the one running on the device.
STAGE_DEPTH = 2
_DONE = object()


class BatchRunner(Protocol):
    """What runs an encoder's planned batches.

    This process's :class:`ModelRunner`, or its worker processes (:class:`~.pool.WorkerPool`).
    """

    def run(self, calls: Sequence[tuple[str, list[str]]]) -> list[np.ndarray]:
        """Each ``(prompt, bodies)`` batch as float32 rows, in order."""
        ...


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a true value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class ModelRunner:
    """A loaded model that embeds planned ``(prompt, bodies)`` batches.

    Args:
        settings: Resolved settings: ``instructor_pooling`` a bool (``max_seq_length`` may still be
            ``None``: 512 with INSTRUCTOR pooling, else the checkpoint's own).
        plan: Device and weight dtype (``None``: resolved from ``settings``).

    Raises:
        ModelLoadError: The model cannot be loaded; the message says where it looked.

    Examples:
        >>> from instructor_integrations.settings import EncoderSettings
        >>> settings = EncoderSettings("tests/fixtures/tiny-instructor", device="cpu", instructor_pooling=False)
        >>> runner = ModelRunner(settings)
        >>> [rows.shape for rows in runner.run([("", ["a", "b"]), ("", ["c"])])]
        [(2, 24), (1, 24)]
    """

    def __init__(self, settings: EncoderSettings, plan: Plan | None = None) -> None:
        if plan is None:
            plan = resolve_plan(resolve_device(settings.device, settings.precision), settings.dtype, settings.precision)
        self.plan = plan
        self.settings = settings
        if plan.device.type == "cpu":
            tune_cpu_process()
        self.model: Any = self._prepared(self._load())
        #: The transformer inside the first module (None for a checkpoint without one).
        self.backbone: Any = getattr(self.model[0], "auto_model", None)
        #: ``precision="int8"``: the transformer as an int8 ONNX Runtime graph (None otherwise).
        self.int8: Int8Backbone | None = None
        if plan.precision == "int8":
            self.int8 = Int8Backbone(self.model, cache_folder=settings.cache_folder)
        elif plan.device.type == "cuda":
            # T5: one (batch, heads, length, length) bias-and-padding mask per forward pass instead of one per
            # layer; the same numbers (see t5.py).
            share_t5_attention_mask(self.backbone)
        elif self._wants_blocked_attention():
            # bfloat16 attention on a CPU without AMX: blocks of plain operators beat the fused kernel (see
            # cpu_attention.py).
            use_blocked_cpu_attention(self.backbone)
        if settings.compile:
            if not isinstance(self.backbone, torch.nn.Module):
                raise ValueError(f"compile=True needs a transformer backbone; {settings.model_name_or_path!r} has none")
            # sentence-transformers calls the transformer's ``forward`` itself (not ``module(...)``), so the
            # module's own ``compile()`` would never run: compile the bound forward, as transformers' docs do.
            options: dict[str, str | int | bool | Callable[..., Any]] | None = (
                {"freezing": True} if plan.device.type == "cpu" else None
            )
            self.backbone.forward = torch.compile(self.backbone.forward, dynamic=True, options=options)
        #: Run several batches as a staged pipeline (tokenizing ahead in a second thread). On the CPU the
        #: tokenizer would take cores from the forward pass, so it runs in line there.
        self.staged: bool = plan.device.type != "cpu"

    # ------------------------------------------------------------------ loading
    def _prepared(self, model: Any) -> Any:
        """``model`` with the settings' token limit and pooling rule."""
        if self.settings.max_seq_length is not None:
            model.max_seq_length = self.settings.max_seq_length
        elif self.settings.instructor_pooling:
            model.max_seq_length = REFERENCE_MAX_SEQ_LENGTH
        model.set_pooling_include_prompt(not self.settings.instructor_pooling)
        return model

    def savable_model(self) -> Any:
        """The model to save: :attr:`model`, or for ``precision="int8"`` the same checkpoint loaded again.

        An int8 runner releases its float32 transformer once the graph is built (see ``int8.py``), so what
        is saved is the checkpoint it was built from, with this runner's token limit and pooling rule.
        """
        if self.int8 is None:
            return self.model
        return self._prepared(self._load())

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        settings = self.settings
        try:
            model = SentenceTransformer(
                settings.model_name_or_path,
                device=str(self.plan.device),
                cache_folder=settings.cache_folder,
                local_files_only=bool(settings.local_files_only),
                trust_remote_code=settings.trust_remote_code,
            )
        except (OSError, ValueError, KeyError) as exc:
            where = self._looked_in()
            raise ModelLoadError(
                self._load_error_message(where, exc),
                model=self.settings.model_name_or_path,
                where=where,
                cause=f"{type(exc).__name__}: {exc}",
            ) from exc
        if self.plan.weight_dtype != torch.float32:
            model.to(self.plan.weight_dtype)
        model.eval()
        return model

    def _looked_in(self) -> str:
        """Where the model was looked for, in words."""
        path = Path(self.settings.model_name_or_path).expanduser()
        if path.exists():
            return f"the local folder {str(path.resolve())!r}"
        from huggingface_hub import constants

        cache = self.settings.cache_folder or constants.HF_HUB_CACHE
        offline = bool(self.settings.local_files_only) or env_flag("HF_HUB_OFFLINE")
        return f"the Hugging Face cache {cache!r}" + (
            " only (offline: HF_HUB_OFFLINE or local_files_only is set)" if offline else " and the Hugging Face Hub"
        )

    def _load_error_message(self, where: str, exc: BaseException) -> str:
        name = self.settings.model_name_or_path
        return (
            f"Could not load model {name!r}: looked in {where}. Cause: {type(exc).__name__}: {exc}. "
            "To use a local copy, pass its folder, e.g. InstructorEncoder('/models/instructor-large'), or set "
            "cache_folder= to the cache that holds it; on an offline machine copy the model folder there first. "
            "No other model was tried."
        )

    def _wants_blocked_attention(self) -> bool:
        """bfloat16 on a CPU with AVX512-BF16 but no AMX, eager: where the blocked attention is the faster one."""
        return (
            self.plan.device.type == "cpu"
            and self.plan.weight_dtype == torch.bfloat16
            and not self.settings.compile
            and cpu_has_fast_bf16()
            and not cpu_has_amx()
        )

    # ------------------------------------------------------------------ running batches
    def tokenize(self, prompt: str, bodies: list[str]) -> dict[str, Any]:
        """One batch's model input, on the host: ``prompt + body`` per row, and the prompt's token count.

        This is sentence-transformers' own preprocessing (``SentenceTransformer.preprocess``); with
        ``include_prompt=False`` pooling its ``prompt_length`` leaves the prompt's tokens out of the mean.
        """
        features: dict[str, Any] = self.model.preprocess(bodies, prompt=prompt)
        return features

    def compute(self, features: dict[str, Any]) -> torch.Tensor:
        """One tokenized batch through the model: its sentence embeddings, on the device."""
        if self.int8 is not None:
            return self.int8.embed(features)
        device = self.plan.device
        moved = {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in features.items()}
        with torch.inference_mode():
            embeddings: torch.Tensor = self.model(moved)["sentence_embedding"]
        return embeddings

    def embed(self, prompt: str, bodies: list[str]) -> np.ndarray:
        """One planned batch as float32 rows (not renormalised after a low-precision forward pass).

        Examples:
            >>> from instructor_integrations.settings import EncoderSettings
            >>> runner = ModelRunner(EncoderSettings("tests/fixtures/tiny-instructor", device="cpu"))
            >>> runner.embed("", ["a", "b"]).shape
            (2, 24)
        """
        return self.run([(prompt, bodies)])[0]

    def run(self, calls: Sequence[tuple[str, list[str]]]) -> list[np.ndarray]:
        """Several planned batches, in order, each as float32 rows.

        Staged (see :attr:`staged`) when there is more than one batch; in line otherwise. An error in
        any batch stops the call: no later batch is started, and the tokenizing thread has ended
        when the error reaches the caller.
        """
        if not self.staged or len(calls) < 2:
            # On an accelerator the results stay on the device until the last batch is queued.
            pending = [self.compute(self.tokenize(prompt, bodies)) for prompt, bodies in calls]
            return [embeddings.float().cpu().numpy() for embeddings in pending]
        return self._run_staged(calls)

    def _run_staged(  # noqa: C901 - the pipeline and its shutdown in one place, so no thread can be left behind
        self, calls: Sequence[tuple[str, list[str]]]
    ) -> list[np.ndarray]:
        """Tokenize ahead in a second thread while this one runs each batch on the device."""
        ready: queue.Queue[Any] = queue.Queue(maxsize=STAGE_DEPTH)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def stage() -> None:
            try:
                for prompt, bodies in calls:
                    if stop.is_set() or not put(self.tokenize(prompt, bodies)):
                        return
                put(_DONE)
            except BaseException as exc:  # handed to the running thread, which raises it
                put(exc)

        thread = threading.Thread(target=stage, name="instructor-tokenize", daemon=True)
        thread.start()
        pending: list[torch.Tensor] = []
        try:
            while True:
                item = ready.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                pending.append(self.compute(item))
            return [embeddings.float().cpu().numpy() for embeddings in pending]
        finally:
            stop.set()
            thread.join()
