"""The INSTRUCTOR encoder core: one model, reference semantics, per-row instructions.

Everything that embeds text in this package goes through :class:`InstructorEncoder`. It loads any
sentence-transformers checkpoint through the public sentence-transformers API and computes, for each
``[instruction, text]`` pair, exactly what the reference ``InstructorEmbedding`` 1.0.1 computes:

* the text is stripped; the model input is ``(instruction + text).strip()``, no space inserted;
* the instruction is tokenized on its own (stripped, 512 tokens at most); its token count minus the
  final ``</s>`` is ``n``; a one-token instruction (``n <= 1``) is *not* left out (``n = 0``);
* the encoder attends to the whole input; mean pooling leaves out the first ``n`` tokens;
* inputs are truncated at 512 tokens whatever the checkpoint config says.

Rows are grouped into batches of one instruction each; the model runner (:mod:`._engine.runner`)
runs each through sentence-transformers' public ``preprocess(..., prompt=...)`` and ``forward`` (the
per-batch steps of ``SentenceTransformer.encode(prompt=...)``) with ``include_prompt=False`` pooling;
the prompt is the stripped instruction, so the prompt length that sentence-transformers measures is
the reference's ``n``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._checkpoint import INSTRUCTOR_HUB_NAMES, CheckpointKind, detect_checkpoint, write_marker
from ._engine.cpu import release_free_memory
from ._engine.pool import WorkerPool
from ._engine.runner import STAGE_DEPTH, BatchRunner, ModelRunner, env_flag
from ._engine.runtime import Plan, resolve_device, resolve_plan
from ._engine.scheduler import Scheduler
from ._reference import REFERENCE_MAX_SEQ_LENGTH, Batch, instruction_length, plan_batches, split_row
from ._validation import Priority, check_instructions, check_pairs, check_positive_int, check_priority, check_texts
from .errors import NonFiniteEmbeddingError
from .settings import DEFAULT_MODEL, EncoderSettings

__all__ = [
    "DEFAULT_MODEL",
    "INSTRUCTOR_HUB_NAMES",
    "REFERENCE_MAX_SEQ_LENGTH",
    "InstructorEncoder",
    "clear_encoder_cache",
    "get_encoder",
    "is_instructor_checkpoint",
]

logger = logging.getLogger(__name__)

#: Padded tokens per forward pass on the CPU for ``token_budget="auto"`` (the best of the budgets tried;
#: see the performance log).
CPU_TOKEN_BUDGET = 4096
#: Padded tokens per forward pass on CUDA for ``token_budget="auto"``: the GPU benchmark's setting (larger
#: budgets were no faster). It bounds the activation memory of a large ``batch_size``.
CUDA_TOKEN_BUDGET = 65536
_AUTO_TOKEN_BUDGETS = {"cpu": CPU_TOKEN_BUDGET, "cuda": CUDA_TOKEN_BUDGET}
#: What an encoder is built with and never changes afterwards (settings, plan and checkpoint decision).
_FIXED = frozenset(
    {
        "model_name",
        "batch_size",
        "token_budget",
        "instructor_pooling",
        "local_files_only",
        "show_progress_bar",
        "compiled",
        "num_workers",
        "plan",
        "checkpoint",
        "_settings",
    }
)


def is_instructor_checkpoint(model_name_or_path: str) -> bool:
    """Whether a model name or folder is an INSTRUCTOR checkpoint (pools without the instruction's tokens).

    Decided from the checkpoint itself by :func:`~instructor_integrations._checkpoint.detect_checkpoint`:
    this package's marker, the checkpoint's pooling config, its hub name (or the repository of a
    Hugging Face cache snapshot), the model folder's own name, its README. A parent folder's name
    never counts.

    Examples:
        >>> is_instructor_checkpoint("hkunlp/instructor-xl"), is_instructor_checkpoint("/m/my-instructor-copy")
        (True, True)
        >>> is_instructor_checkpoint("sentence-transformers/all-MiniLM-L6-v2")
        False
        >>> is_instructor_checkpoint("/home/me/instructor-integrations/minilm")
        False
    """
    return detect_checkpoint(model_name_or_path).instructor


class InstructorEncoder:
    """Embeds texts with INSTRUCTOR instructions, exactly as the reference implementation does.

    Args:
        model_name_or_path: A hub name (``"hkunlp/instructor-large"``) or a local folder holding any
            sentence-transformers checkpoint.
        device: ``None`` picks cuda, then mps, then cpu; or ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
        dtype: Weight dtype: ``"auto"`` (bfloat16 on CUDA devices that support it, float32 elsewhere),
            ``"float32"``, ``"bfloat16"`` or ``"float16"`` (T5 overflows in float16: non-finite outputs
            raise :class:`~instructor_integrations.errors.NonFiniteEmbeddingError`).
        precision: ``None`` (``dtype`` decides), ``"exact"`` (float32 everywhere, reference parity),
            ``"fast"`` (bfloat16 where the hardware runs it fast: CUDA with bf16, CPUs with AMX or
            AVX512-BF16; float32 elsewhere; on a CPU with AVX512-BF16 but no AMX, such as AMD Zen 4
            and 5, attention runs in cache-sized blocks of plain operators, faster there than PyTorch's
            fused kernel) or ``"int8"`` (the CPU only, extra ``[int8]``: the transformer as an int8 ONNX
            Runtime graph, built from the weights on first use and cached; pooling as with ``"exact"``;
            for CPUs without fast bfloat16, see docs/performance.md). Give either ``dtype`` or ``precision``.
        max_seq_length: Token limit per input. ``None``: 512 for INSTRUCTOR pooling (the reference's
            hard-coded cap), the checkpoint's own setting otherwise.
        batch_size: Rows per forward pass, at most. On a GPU the default of 32 leaves most of the
            device idle: use a large one (the guide's GPU settings use 1024), the token budget keeping
            batches of long inputs smaller.
        token_budget: Cap on padded tokens per forward pass (rows x longest row). Batches are formed
            from inputs sorted by token count, so long inputs go in smaller batches. ``"auto"``:
            4096 on the CPU (bounds a batch's working memory, at no cost in speed with this package's
            CPU settings), 65536 on CUDA (bounds the memory of a large ``batch_size``), no cap
            elsewhere; ``None``: no cap.
        cache_folder: Where hub models are cached (default: the Hugging Face cache).
        local_files_only: Never touch the network. ``None`` follows ``HF_HUB_OFFLINE``.
        trust_remote_code: Allow custom model code from the hub. Off by default.
        instructor_pooling: Leave the instruction tokens out of mean pooling. ``None``: on for
            INSTRUCTOR checkpoints (see :func:`is_instructor_checkpoint`), off otherwise.
        show_progress_bar: Default for :meth:`encode`; ``None`` shows a bar only on a terminal.
        compile: Compile the transformer's forward with ``torch.compile(dynamic=True)`` (on the CPU
            with Inductor's weight freezing). The first call compiles (tens of seconds), and so does
            the first call with a batch of a different kind: ``torch.compile`` gives batches of one row
            (a single query) a graph of their own, and one graph serves all larger batches. It pays on
            large corpora with T5-sized models (CPU and GPU), not for small models or a few queries
            (docs/performance.md). Off by default.
        num_workers: CPU and CUDA. With 2 or more, calls that make more than one batch run in that
            many worker processes, each with its own copy of the model (on the CPU with an equal share
            of the torch threads; on CUDA all on this encoder's GPU); the batches are planned here and
            the results come back in order. On a CPU it pays for small models (the processes keep every
            core busy); on a GPU only with ``compile=True``, where tokenization and
            sentence-transformers' per-text work become the bottleneck (docs/performance.md). The
            workers start (spawn) on the first such call, which then takes the time of loading
            the model (and of compiling, in each worker); they hold ``num_workers`` more copies of the
            model in memory until :meth:`close`. A script must start from an
            ``if __name__ == "__main__":`` block, as with any spawned process. Default 1: no workers.

    On an accelerator, a call that makes more than one batch runs as a staged pipeline: a second
    thread tokenizes the next batches while the current one runs on the device (the results are the
    same; one batch's activations are on the device at a time). The same settings as one object:
    :class:`~instructor_integrations.settings.EncoderSettings` and :meth:`from_settings`.

    Raises:
        ModelLoadError: The model cannot be loaded; the message says where it looked.
        ValueError: An unknown device, dtype or precision, or a bad numeric setting.

    Examples:
        >>> from instructor_integrations import InstructorEncoder
        >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
        >>> vectors = encoder.encode(["A cat sat on the mat."], instruction="Represent the sentence: ")
        >>> vectors.shape, vectors.dtype
        ((1, 24), dtype('float32'))
    """

    #: Where the model runs and in which dtype (fixed when the encoder is built).
    plan: Plan
    #: What the checkpoint is (INSTRUCTOR pooling or not, whose presets fit) and the rule that decided.
    checkpoint: CheckpointKind
    _settings: EncoderSettings

    def __init__(
        self,
        model_name_or_path: str = DEFAULT_MODEL,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype = "auto",
        precision: str | None = None,
        max_seq_length: int | None = None,
        batch_size: int = 32,
        token_budget: int | str | None = "auto",
        cache_folder: str | None = None,
        local_files_only: bool | None = None,
        trust_remote_code: bool = False,
        instructor_pooling: bool | None = None,
        show_progress_bar: bool | None = None,
        compile: bool = False,
        num_workers: int = 1,
    ) -> None:
        requested = EncoderSettings(  # checks every value, naming the bad one
            model_name_or_path=model_name_or_path,
            device=_device_name(device),
            dtype=_dtype_name(dtype),
            precision=precision,
            max_seq_length=max_seq_length,
            batch_size=batch_size,
            token_budget=token_budget,
            cache_folder=cache_folder,
            local_files_only=local_files_only,
            trust_remote_code=trust_remote_code,
            instructor_pooling=instructor_pooling,
            show_progress_bar=show_progress_bar,
            compile=compile,
            num_workers=num_workers,
        )
        plan = resolve_plan(resolve_device(requested.device, requested.precision), requested.dtype, requested.precision)
        if num_workers > 1 and plan.device.type not in ("cpu", "cuda"):
            raise ValueError(
                f"num_workers={num_workers} is for the CPU and CUDA; on {plan.device} one process drives the "
                "device (use num_workers=1)"
            )
        budget = _AUTO_TOKEN_BUDGETS.get(plan.device.type) if token_budget == "auto" else token_budget
        detected = detect_checkpoint(requested.model_name_or_path)
        object.__setattr__(self, "plan", plan)
        object.__setattr__(
            self,
            "checkpoint",
            detected
            if instructor_pooling is None
            else CheckpointKind(instructor_pooling, detected.preset_model, f"instructor_pooling={instructor_pooling}"),
        )
        # The settings, fixed for the encoder's life, the automatic choices resolved (the model's own
        # max_seq_length is read from the model, see settings).
        object.__setattr__(
            self,
            "_settings",
            requested.replace(
                device=str(plan.device),
                token_budget=budget if isinstance(budget, int) else None,
                instructor_pooling=self.checkpoint.instructor,
                local_files_only=env_flag("HF_HUB_OFFLINE") if local_files_only is None else local_files_only,
            ),
        )
        self._instruction_lengths: dict[tuple[str, int], int] = {}
        self._counter: Any = None
        self._runner = ModelRunner(self._settings, self.plan)
        self._model = self._runner.model
        self._pool: WorkerPool | None = None
        if num_workers > 1:
            worker_settings = self.settings.replace(num_workers=1, show_progress_bar=False)
            self._pool = WorkerPool(worker_settings, num_workers, max(1, torch.get_num_threads() // num_workers))
            weakref.finalize(self, self._pool.close)
        self._normalizes = any(type(module).__name__ == "Normalize" for module in self._model)
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            dimension = int(self._runner.embed("", [""]).shape[-1])
        self.embedding_dimension: int = int(dimension)
        self._scheduler = Scheduler(
            lambda calls: self._execute(calls),
            limits=lambda: (self.batch_size, self.token_budget, self.max_seq_length),
            parallel=self._parallel,
            on_idle=self._on_idle,
        )
        logger.info(
            "Loaded %s on %s, instructor_pooling=%s (decided by %s), max_seq_length=%s, attention=%s",
            self.model_name,
            self.plan.describe(),
            self.instructor_pooling,
            self.checkpoint.rule,
            self.max_seq_length,
            getattr(getattr(self._runner.backbone, "config", None), "_attn_implementation", None),
        )

    @classmethod
    def from_settings(cls, settings: EncoderSettings) -> InstructorEncoder:
        """An encoder built from one :class:`~instructor_integrations.settings.EncoderSettings`.

        Examples:
            >>> settings = EncoderSettings("tests/fixtures/tiny-instructor", device="cpu")
            >>> InstructorEncoder.from_settings(settings).settings.device
            'cpu'
        """
        if not isinstance(settings, EncoderSettings):
            raise TypeError(f"settings must be an EncoderSettings, got {type(settings).__name__}")
        return cls(**settings.as_kwargs())

    @property
    def settings(self) -> EncoderSettings:
        """The settings this encoder runs with, its automatic choices resolved.

        ``from_settings(encoder.settings)`` builds an encoder that computes the same vectors (what each
        worker process of ``num_workers`` does).
        """
        return self._settings.replace(max_seq_length=self.max_seq_length)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIXED:
            raise AttributeError(
                f"{name!r} is fixed when an InstructorEncoder is built (the queue plans every batch with it); "
                f"build another: InstructorEncoder.from_settings(encoder.settings.replace({name}=...))"
            )
        super().__setattr__(name, value)

    @property
    def model_name(self) -> str:
        """The hub name or local folder the model was loaded from."""
        return self._settings.model_name_or_path

    @property
    def batch_size(self) -> int:
        """Most rows per forward pass."""
        return self._settings.batch_size

    @property
    def token_budget(self) -> int | None:
        """Most padded tokens per forward pass (``None``: ``batch_size`` alone bounds a batch)."""
        budget = self._settings.token_budget  # resolved when the encoder is built: never "auto" here
        return budget if isinstance(budget, int) else None

    @property
    def instructor_pooling(self) -> bool:
        """Whether mean pooling leaves out the instruction tokens (decided by :attr:`checkpoint`)."""
        return self._settings.instructor_pooling is True

    @property
    def local_files_only(self) -> bool:
        """Whether the model was loaded without asking the Hugging Face hub."""
        return self._settings.local_files_only is True

    @property
    def show_progress_bar(self) -> bool | None:
        """The default of ``encode(show_progress_bar=)`` (``None``: on a terminal only)."""
        return self._settings.show_progress_bar

    @property
    def compiled(self) -> bool:
        """Whether the forward pass is compiled with ``torch.compile``."""
        return self._settings.compile

    @property
    def num_workers(self) -> int:
        """Worker processes (1: the model runs in this process)."""
        return self._settings.num_workers

    def _on_idle(self) -> None:
        """The queue ran empty: on the CPU, hand the free heap back to the kernel (once per drain)."""
        if self.plan.device.type == "cpu":
            release_free_memory()

    # ------------------------------------------------------------------ properties
    @property
    def model(self) -> Any:
        """The underlying ``SentenceTransformer`` (read it; changing it changes this encoder).

        With ``precision="int8"`` its transformer has no weights (they were released once the int8 graph
        was built): use :meth:`encode`, and :meth:`save` to write the checkpoint.
        """
        return self._model

    @property
    def device(self) -> torch.device:
        """The device the model runs on."""
        return self.plan.device

    @property
    def dtype(self) -> torch.dtype:
        """The weight dtype."""
        return self.plan.weight_dtype

    @property
    def precision(self) -> str:
        """``"exact"``, ``"fast"``, ``"int8"``, or the dtype name when ``dtype`` was given."""
        return self.plan.precision

    @property
    def max_seq_length(self) -> int:
        """Token limit per input (instruction included)."""
        return int(self._model.max_seq_length)

    def __repr__(self) -> str:
        return (
            f"InstructorEncoder({self.model_name!r}, {self.plan.describe()}, dim={self.embedding_dimension}, "
            f"instructor_pooling={self.instructor_pooling})"
        )

    def close(self) -> None:
        """Fail the calls still queued, then stop the worker processes of ``num_workers > 1``.

        A call whose rows are still waiting raises
        :class:`~instructor_integrations.errors.EncoderClosedError` (the batch running now completes).
        The encoder stays usable: the next call starts what it needs again. Also called by
        ``with InstructorEncoder(...) as encoder:``; worker processes also stop when the encoder is
        garbage-collected.
        """
        self._scheduler.close()
        if self._pool is not None:
            self._pool.close()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the model as a sentence-transformers checkpoint that reopens with the same pooling anywhere.

        Besides the model's files, the folder gets this package's marker
        (:data:`~instructor_integrations._checkpoint.MARKER_FILE`), which records ``instructor_pooling``
        and whose instruction presets fit, so the copy pools the same way whatever its folder is named.

        Returns:
            The folder.

        Examples:
            >>> import tempfile
            >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
            >>> folder = encoder.save(tempfile.mkdtemp() + "/my-model")
            >>> InstructorEncoder(str(folder), device="cpu").checkpoint.instructor
            True
        """
        folder = Path(path)
        self._runner.savable_model().save(str(folder))
        write_marker(
            folder,
            instructor_pooling=self.instructor_pooling,
            preset_model=self.checkpoint.preset_model,
            base_model=self.model_name,
        )
        return folder

    def __enter__(self) -> InstructorEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ public API
    def encode(
        self,
        texts: Sequence[str],
        instruction: str | Sequence[str | None] | None = None,
        *,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        priority: Priority = "auto",
    ) -> np.ndarray:
        """Embed ``texts``, each with ``instruction``.

        Every call is a request on the encoder's one queue: calls from several threads (or async tasks,
        see :meth:`aencode`) share forward passes, and small calls go ahead of large ones already queued
        (see docs/performance.md, "Concurrent calls").

        Args:
            texts: A list of strings. Empty or whitespace-only strings are embedded as the reference
                does (the end-of-sequence token alone).
            instruction: ``None`` (plain mean pooling), one instruction for every text, or a list with
                one instruction (or ``None``) per text.
            batch_size: Rows per forward pass (default: the encoder's ``batch_size``).
            show_progress_bar: Show a tqdm bar (default: the encoder's setting; on a terminal only).
            priority: ``"auto"`` (calls of up to 16 distinct texts are interactive, larger ones bulk),
                ``"interactive"`` (ahead of queued bulk work, rows shared with other interactive calls)
                or ``"bulk"`` (in turn, in planned batches).

        Returns:
            float32 array of shape ``(len(texts), embedding_dimension)``, in input order.

        Raises:
            TypeError: ``texts`` is not a list of str, or an instruction is not a str.
            ValueError: Mismatched instruction count, invalid Unicode, a bad batch size or priority.
            NonFiniteEmbeddingError: The model produced NaN/inf (float16 overflow).
            EncoderClosedError: :meth:`close` was called while the rows were queued.

        Examples:
            >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
            >>> encoder.encode(["a", "b"], instruction=["Represent the word: ", None]).shape
            (2, 24)
        """
        items = check_texts(texts)
        instructions = check_instructions(instruction, len(items))
        rows = list(zip(instructions, items, strict=True))
        return self._encode_rows(rows, batch_size, show_progress_bar, priority)

    async def aencode(
        self,
        texts: Sequence[str],
        instruction: str | Sequence[str | None] | None = None,
        *,
        batch_size: int | None = None,
        priority: Priority = "auto",
    ) -> np.ndarray:
        """:meth:`encode`, awaitable: the event loop runs on while the rows wait and are embedded.

        No thread is held per call: the rows join the encoder's queue and the call awaits their future.
        Cancelling the awaiting task drops the rows that have not started.

        Examples:
            >>> import asyncio
            >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
            >>> asyncio.run(encoder.aencode(["a", "b"], "Represent the word: ")).shape
            (2, 24)
        """
        items = check_texts(texts)
        instructions = check_instructions(instruction, len(items))
        return await self._aencode_rows(list(zip(instructions, items, strict=True)), batch_size, priority)

    async def aencode_pairs(
        self, pairs: Sequence[Sequence[str]], *, batch_size: int | None = None, priority: Priority = "auto"
    ) -> np.ndarray:
        """:meth:`encode_pairs`, awaitable (see :meth:`aencode`).

        Examples:
            >>> import asyncio
            >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
            >>> asyncio.run(encoder.aencode_pairs([["Represent the title: ", "Deep learning"]])).shape
            (1, 24)
        """
        rows = check_pairs(pairs)
        return await self._aencode_rows([(i or None, t) for i, t in rows], batch_size, priority)

    def encode_pairs(
        self,
        pairs: Sequence[Sequence[str]],
        *,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        priority: Priority = "auto",
    ) -> np.ndarray:
        """Embed ``[[instruction, text], ...]``; every row may carry a different instruction.

        This is the input format of ``InstructorEmbedding.INSTRUCTOR.encode``. An empty instruction
        means plain mean pooling.

        Returns:
            float32 array of shape ``(len(pairs), embedding_dimension)``, in input order.

        Examples:
            >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
            >>> encoder.encode_pairs([["Represent the title: ", "Deep learning"], ["", "plain"]]).shape
            (2, 24)
        """
        rows = check_pairs(pairs)
        return self._encode_rows([(i or None, t) for i, t in rows], batch_size, show_progress_bar, priority)

    @property
    def fast_tokenizer(self) -> Any:
        """A copy of the model's fast (Rust) tokenizer with no truncation or padding, for counting tokens.

        ``None`` for a model whose tokenizer is not a fast one. Used by
        :class:`~instructor_integrations.chunking.Chunker`.
        """
        return self._token_counter()

    def count_tokens(self, texts: Sequence[str], instruction: str | Sequence[str | None] | None = None) -> list[int]:
        """Tokens each row takes in the model's input (instruction and special tokens included).

        Counted before truncation: a row longer than :attr:`max_seq_length` is truncated when embedded.
        Used for usage reports (the server) and for sizing chunks.

        Examples:
            >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
            >>> counts = encoder.count_tokens(["a cat", "a cat"], ["Represent the word: ", None])
            >>> counts[0] > counts[1]
            True
        """
        items = check_texts(texts)
        instructions = check_instructions(instruction, len(items))
        prepared = [self._prepare(i, t) for i, t in zip(instructions, items, strict=True)]
        counts = self._token_counts([body for _, body in prepared])
        return [
            count + (self._instruction_length(prompt) if prompt else 0)
            for (prompt, _), count in zip(prepared, counts, strict=True)
        ]

    def add_pass_listener(self, listener: Callable[[int, int], object]) -> None:
        """Call ``listener(rows, tokens)`` after each forward pass (in the engine's thread; keep it quick).

        ``tokens`` counts the pass's rows' tokens, each at most :attr:`max_seq_length`. For metrics
        (the server's ``/metrics`` uses it).

        Examples:
            >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
            >>> passes = []
            >>> encoder.add_pass_listener(lambda rows, tokens: passes.append(rows))
            >>> _ = encoder.encode(["a", "b"], "Represent the word: ")
            >>> passes
            [2]
        """
        self._scheduler.listeners.append(listener)

    # ------------------------------------------------------------------ internals
    def as_prompt(self, instruction: str | None, text: str) -> tuple[str, str]:
        """One row as sentence-transformers' ``(prompt, text)``, so that ``prompt + text`` is the reference's input.

        With this encoder's pooling, the prompt's tokens are exactly those the reference leaves out of the
        mean (``""`` when none is: no instruction, plain pooling, or the one-token rule). What the encoder
        runs for every row, and what the trainer's prompts are built from.

        Examples:
            >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
            >>> encoder.as_prompt("Represent the title: ", " Deep learning ")
            ('Represent the title:', ' Deep learning')
        """
        check_instructions(instruction, 1)
        check_texts([text])
        return self._prepare(instruction, text)

    def _instruction_length(self, stripped: str) -> int:
        """The reference's ``n`` for a stripped instruction (see :func:`._reference.instruction_length`)."""
        key = (stripped, self.max_seq_length)
        cached = self._instruction_lengths.get(key)
        if cached is None:
            cached = instruction_length(self._token_counts([stripped])[0], self.max_seq_length)
            self._instruction_lengths[key] = cached
        return cached

    def _prepare(self, instruction: str | None, text: str) -> tuple[str, str]:
        """One row as ``(prompt, body)``: the prompt for sentence-transformers' ``prompt=`` (see :func:`split_row`)."""
        return split_row(
            instruction, text, pooling=self.instructor_pooling, instruction_tokens=self._instruction_length
        )

    def _token_counter(self) -> Any:
        """A copy of the fast tokenizer's Rust tokenizer without truncation or padding, for counting.

        Counting with a copy leaves the model tokenizer to the thread that runs the batches (a Rust
        tokenizer used from two threads at once fails with "Already borrowed"), and skips turning every
        text's ids into Python lists. ``None`` for a tokenizer that is not a fast (Rust) one.
        """
        if self._counter is None:
            backend = getattr(self._model.tokenizer, "backend_tokenizer", None)
            if backend is None:
                return None
            from tokenizers import Tokenizer

            counter = Tokenizer.from_str(backend.to_str())
            counter.no_truncation()
            counter.no_padding()
            self._counter = counter
        return self._counter

    def _token_counts(self, bodies: list[str]) -> list[int]:
        tokenizer = self._model.tokenizer
        if tokenizer is None or not bodies:
            return [len(body) for body in bodies]
        counter = self._token_counter()
        if counter is not None:
            encode = getattr(counter, "encode_batch_fast", counter.encode_batch)  # no character offsets
            return [len(encoding) for encoding in encode(bodies, add_special_tokens=True)]
        encoded = tokenizer(bodies, add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def _plan_batches(self, prompts: list[str], lengths: list[int], batch_size: int) -> list[Batch]:
        return plan_batches(
            prompts, lengths, batch_size=batch_size, token_budget=self.token_budget, max_seq_length=self.max_seq_length
        )

    def _progress(self, total: int, show: bool | None) -> Any:
        from tqdm.auto import tqdm

        if show is None:
            show = self.show_progress_bar
        if show is None:
            show = sys.stderr.isatty()
        return tqdm(total=total, disable=not show, desc="Embedding", unit="text", leave=False)

    def _submit(
        self,
        rows: list[tuple[str | None, str]],
        batch_size: int | None,
        bar: Any,
        priority: Priority,
        usage: list[tuple[int, int]] | None = None,
        drive: bool = False,
    ) -> Future[np.ndarray]:
        """Prepare ``rows`` here (in the caller's thread) and queue them; the future holds their vectors.

        ``usage``, when given, receives the tokens embedded (instructions and special tokens included, each row
        at most :attr:`max_seq_length`) and the number of rows that were truncated.
        """
        size = check_positive_int(batch_size, "batch_size", allow_none=True) or self.batch_size
        check_priority(priority)  # before the rows are prepared
        # A query is announced before its tokens are counted, so the running bulk batch's successor waits for it.
        with self._scheduler.announcing(self._scheduler.is_interactive(priority, len(rows))):
            return self._queue(rows, size, bar, priority, usage, drive)

    def _queue(
        self,
        rows: list[tuple[str | None, str]],
        size: int,
        bar: Any,
        priority: Priority,
        usage: list[tuple[int, int]] | None,
        drive: bool,
    ) -> Future[np.ndarray]:
        """Prepare ``rows`` (in the caller's thread: tokens counted, duplicates merged) and queue them."""
        prepared = [self._prepare(instruction, text) for instruction, text in rows]
        # Identical inputs are embedded once per call.
        position: dict[tuple[str, str], int] = {}
        inverse = np.fromiter(
            (position.setdefault(key, len(position)) for key in prepared), dtype=np.int64, count=len(prepared)
        )
        unique = list(position)
        prompts = [prompt for prompt, _ in unique]
        bodies = [body for _, body in unique]
        lengths = self._token_counts(bodies)
        prompt_tokens = {p: (self._instruction_length(p) if p else 0) for p in set(prompts)}
        lengths = [length + prompt_tokens[p] for p, length in zip(prompts, lengths, strict=True)]
        limit = self.max_seq_length
        if usage is not None:
            per_row = np.asarray(lengths, dtype=np.int64)[inverse]
            usage.append((int(np.minimum(per_row, limit).sum()), int((per_row > limit).sum())))
        truncated = sum(length > limit for length in lengths)
        if truncated:
            logger.warning(
                "%d of %d texts are longer than max_seq_length=%d tokens (instruction included) and were truncated",
                truncated,
                len(unique),
                self.max_seq_length,
            )

        def finish(out: np.ndarray) -> np.ndarray:
            if self._normalizes and self.plan.weight_dtype != torch.float32:
                norms = np.linalg.norm(out, axis=1, keepdims=True)
                np.divide(out, norms, out=out, where=norms > 0)
            bad = ~np.isfinite(out).all(axis=1)
            if bad.any():
                raise NonFiniteEmbeddingError(
                    f"{int(bad.sum())} of {len(unique)} embeddings are not finite (NaN or inf) with "
                    f"{self.plan.describe()}. T5 encoders overflow in float16: use dtype='bfloat16' (CUDA) or "
                    "dtype='float32' / precision='exact'."
                )
            result: np.ndarray = out[inverse]
            return result

        return self._scheduler.submit(
            prompts,
            bodies,
            lengths,
            dim=self.embedding_dimension,
            batch_size=size,
            priority=priority,
            on_rows=bar.update if bar is not None else None,
            finish=finish,
            drive=drive,
        )

    def _encode_rows(
        self,
        rows: list[tuple[str | None, str]],
        batch_size: int | None,
        show_progress_bar: bool | None,
        priority: Priority = "auto",
    ) -> np.ndarray:
        with self._progress(len(rows), show_progress_bar) as bar:
            future = self._submit(rows, batch_size, bar, priority, drive=True)
            self._scheduler.drive(future)  # with no worker thread busy, this thread runs the passes
            return future.result()

    async def _aencode_rows(
        self, rows: list[tuple[str | None, str]], batch_size: int | None, priority: Priority
    ) -> np.ndarray:
        # The rows are prepared (tokens counted) on the loop: a few milliseconds for a query; the forward
        # passes run in the scheduler's thread and the loop awaits a future (no thread parked per call).
        return await asyncio.wrap_future(self._submit(rows, batch_size, None, priority))

    async def _aencode_counted(
        self, texts: list[str], instructions: list[str | None], priority: Priority
    ) -> tuple[np.ndarray, int, int]:
        """:meth:`aencode` of checked rows, with the tokens embedded and the rows truncated (the server's usage)."""
        usage: list[tuple[int, int]] = []
        future = self._submit(list(zip(instructions, texts, strict=True)), None, None, priority, usage)
        vectors = await asyncio.wrap_future(future)
        return vectors, *usage[0]

    def _parallel(self) -> int:
        """Planned batches handed to :meth:`_execute` at once (more than one where they run in parallel)."""
        if self._pool is not None:
            return 4 * self.num_workers
        return 1 if not self._runner.staged else 4 * STAGE_DEPTH

    def _execute(self, calls: list[tuple[str, list[str]]]) -> list[np.ndarray]:
        """Run batches (one thread at a time: the worker thread, or a caller driving the queue).

        Several batches go to the worker processes when there are some, else to the model runner, which
        stages them on an accelerator (see :class:`._engine.runner.ModelRunner`).
        """
        runner: BatchRunner = self._pool if self._pool is not None and len(calls) > 1 else self._runner
        return runner.run(calls)


# ---------------------------------------------------------------------- process-wide sharing
_CACHE: dict[EncoderSettings, InstructorEncoder] = {}
_FIELD_DEFAULTS = EncoderSettings().as_kwargs()
#: Settings for which ``None`` is a choice of its own, not "the default" (``token_budget=None``: no cap).
_NONE_IS_A_SETTING = frozenset({"token_budget"})
_CACHE_LOCK = threading.Lock()


def _device_name(device: str | torch.device | None) -> str | None:
    return str(device) if isinstance(device, torch.device) else device


def _dtype_name(dtype: str | torch.dtype) -> str:
    return str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else dtype


def _cache_key(settings: EncoderSettings) -> EncoderSettings:
    """``settings`` with the model folder and the device resolved: equal keys mean the same model."""
    path = Path(settings.model_name_or_path).expanduser()
    name = str(path.resolve()) if path.exists() else settings.model_name_or_path
    return settings.replace(model_name_or_path=name, device=str(resolve_device(settings.device, settings.precision)))


def get_encoder(
    model_name_or_path: str | EncoderSettings = DEFAULT_MODEL,
    *,
    device: str | torch.device | None = None,
    **kwargs: Any,
) -> InstructorEncoder:
    """Return the process-wide :class:`InstructorEncoder` for these settings, loading it once.

    Takes the constructor's arguments, or one :class:`~instructor_integrations.settings.EncoderSettings`
    (keyword arguments then change some of its fields). Equal settings share one encoder, a model
    folder named by any path and ``device=None`` resolved first; ``None`` stands for the default of a
    setting (except ``token_budget``, where it means no cap). The adapters get their encoder here.

    Examples:
        >>> a = get_encoder("tests/fixtures/tiny-instructor", device="cpu")
        >>> a is get_encoder("tests/fixtures/tiny-instructor", device="cpu")
        True
        >>> a is get_encoder(EncoderSettings("tests/fixtures/tiny-instructor", device="cpu"))
        True
    """
    changes = {
        key: _dtype_name(value) if key == "dtype" else value
        for key, value in kwargs.items()
        if value is not None or key in _NONE_IS_A_SETTING or _FIELD_DEFAULTS.get(key, 0) is None
    }
    if device is not None:
        changes["device"] = _device_name(device)
    base = model_name_or_path if isinstance(model_name_or_path, EncoderSettings) else None
    if base is None:
        changes["model_name_or_path"] = model_name_or_path
        base = EncoderSettings()
    settings = EncoderSettings.from_kwargs(**{**base.as_kwargs(), **changes})
    key = _cache_key(settings)
    with _CACHE_LOCK:
        encoder = _CACHE.get(key)
        if encoder is None:
            encoder = InstructorEncoder.from_settings(settings.replace(device=key.device))
            _CACHE[key] = encoder
        return encoder


def clear_encoder_cache() -> None:
    """Forget the shared encoders (their memory is freed once nothing else holds them)."""
    with _CACHE_LOCK:
        _CACHE.clear()
