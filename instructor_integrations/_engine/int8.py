"""``precision="int8"``: the transformer as an int8 ONNX Runtime graph on the CPU, built once and cached.

Why ONNX Runtime: on CPUs without fast bfloat16 (AVX2 only: AMD Zen 2 and 3, Intel before Ice Lake)
``precision="fast"`` is float32, and ONNX Runtime's dynamic int8 kernels (int8 weights, one scale per
output channel, 7 bits where the CPU has no VNNI, see :func:`saturating_kernels`; activations quantised
per batch, symmetric) run the transformer faster than float32 there (see the performance log). Its quantisation
tool needs no calibration data and ships with the runtime. sentence-transformers' own ``backend="onnx"``
goes through optimum-onnx, whose releases pin an older transformers, so the graph is exported here with
``torch.onnx.export``.

Only the transformer (the first module, ``model[0].auto_model``) runs in ONNX Runtime. Its token
embeddings go back into sentence-transformers' own modules (Pooling with ``include_prompt=False``,
Dense, Normalize), so the reference rules are unchanged: the same tokenisation, the 512 cap, the
instruction's tokens left out of the mean, T5's relative position bias computed inside the graph.

The graph is made from the loaded weights and cached under :func:`cache_root`: one folder per
checkpoint and toolchain, named by a hash of the weights' content, the model's config and the
versions of torch, onnx and onnxruntime. A folder is reused only when its manifest names exactly that
key and the graph file's SHA-256 equals the manifest's; anything else (another checkpoint, another
runtime, a truncated file, a folder of unknown origin) is rebuilt. Builds are atomic (a temporary file,
then ``os.replace``; the manifest last) and serialised by a lock file, so worker processes that start
together build it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._optional import require
from .runtime import cpu_flags

__all__ = ["CACHE_ENV", "FORMAT", "Int8Backbone", "cache_root", "int8_available", "saturating_kernels"]

logger = logging.getLogger(__name__)

#: Environment variable naming the folder that holds the int8 graphs (overrides the default place).
CACHE_ENV = "INSTRUCTOR_INTEGRATIONS_CACHE"
#: Version of the way the graph is made (export and quantisation settings): a change rebuilds every cache.
FORMAT = 3
_OPSET = 17
_MODEL_FILE = "model.onnx"
_MANIFEST = "manifest.json"
#: Inputs a transformer may take, in the order the graph takes them.
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Above this many bytes of float32 weights the exported graph keeps them in a side file (protobuf's 2 GiB cap).
_EXTERNAL_DATA_BYTES = 1_800_000_000


def saturating_kernels() -> bool:
    """Whether ONNX Runtime's int8 kernels on this CPU add products in 16 bits, which can saturate.

    On x86-64 without VNNI (AVX2 only: AMD Zen 2 and 3, Intel before Ice Lake) its uint8 x int8 kernels
    multiply with ``vpmaddubsw``, whose pairwise sums saturate at 32,767 when both weights of a pair are
    large; ONNX Runtime's documentation recommends 7-bit weights there. With VNNI or AMX (32-bit sums), and
    off x86, they do not saturate.

    Examples:
        >>> isinstance(saturating_kernels(), bool)
        True
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return not ({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())


def int8_available() -> str | None:
    """Why ``precision="int8"`` cannot run in this environment (``None``: it can).

    Examples:
        >>> int8_available() is None or "pip install" in int8_available()
        True
    """
    try:
        require("onnxruntime", extra="int8")
        require("onnx", extra="int8")
    except ImportError as exc:
        return str(exc)
    return None


def cache_root(cache_folder: str | None = None) -> Path:
    """Where int8 graphs are kept: ``$INSTRUCTOR_INTEGRATIONS_CACHE``, else beside the model cache.

    Beside the model cache means ``<cache_folder>/instructor-integrations-int8`` when the encoder was
    given a ``cache_folder``, else ``instructor-integrations/int8`` in the Hugging Face home
    (``~/.cache/huggingface`` unless ``HF_HOME`` says otherwise).

    Examples:
        >>> str(cache_root("/models")).endswith("instructor-integrations-int8") or CACHE_ENV in os.environ
        True
    """
    explicit = os.environ.get(CACHE_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    if cache_folder:
        return Path(cache_folder).expanduser() / "instructor-integrations-int8"
    from huggingface_hub import constants

    return Path(constants.HF_HOME).expanduser() / "instructor-integrations" / "int8"


class _Hidden(torch.nn.Module):
    """The transformer with positional inputs and its last hidden state as the one output (for export)."""

    def __init__(self, backbone: torch.nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.backbone = backbone
        self.names = names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        output = self.backbone(**dict(zip(self.names, inputs, strict=True)), return_dict=True)
        hidden: torch.Tensor = output.last_hidden_state
        return hidden


def _weights_digest(backbone: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer of the transformer: names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name, tensor in backbone.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}\n".encode())
        digest.update(value.view(torch.uint8).numpy().data if value.numel() else b"")
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _graph_files(folder: Path) -> list[Path]:
    """The graph and its side files (external weights), sorted: what the manifest's digest covers."""
    return sorted(path for path in folder.iterdir() if path.is_file() and path.name not in (_MANIFEST, ".lock"))


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in _graph_files(folder):
        digest.update(f"{path.name}:{_file_digest(path)}\n".encode())
    return digest.hexdigest()


class _FromOnnxRuntime(logging.Filter):
    """Drops the records ONNX Runtime's quantiser logs on the root logger (advice for image models)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname


@contextlib.contextmanager
def _quiet_toolchain() -> Iterator[None]:
    """The exporter's tracer warnings and the quantiser's advice are not the user's to act on: silenced."""
    root, quiet = logging.getLogger(), _FromOnnxRuntime()
    root.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(quiet)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` across processes (fcntl where it exists; none elsewhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: builds are still atomic, only not serialised
        yield
        return
    with open(folder / ".lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _torch_in_this_thread() -> Iterator[None]:
    """Run torch's operators in the calling thread only (pooling after the session is small work).

    With its OpenMP pool, torch would wake its workers for the pooling, and they then spin for a while
    (``GOMP_SPINCOUNT``) on the cores ONNX Runtime's threads need for the next batch. OpenMP's thread
    count is a per-thread setting: threads already running torch work keep their own (only a thread
    that first calls torch during these few milliseconds starts with one).
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def _eager_attention(backbone: torch.nn.Module) -> Iterator[None]:
    """Run with transformers' eager attention, then switch back to the implementation the model had."""
    config = getattr(backbone, "config", None)
    previous = getattr(config, "_attn_implementation", None)
    switch = getattr(backbone, "set_attn_implementation", None)
    if previous in (None, "eager") or not callable(switch):
        yield
        return
    switch("eager")
    try:
        yield
    finally:
        switch(previous)


class Int8Backbone:
    """The model's transformer as an int8 ONNX Runtime session; the rest of the model stays as it is.

    Once the session is made, the transformer's float32 weights are released (the module is moved to
    the meta device): the graph holds its own int8 copy.

    Args:
        model: The loaded ``SentenceTransformer`` (float32, CPU). Its first module's transformer is
            exported; its other modules pool the token embeddings the session returns.
        cache_folder: The encoder's ``cache_folder`` (see :func:`cache_root`).
        threads: ONNX Runtime's intra-op threads (the process's torch thread count).

    Raises:
        ImportError: onnxruntime or onnx is missing; the message names the pip command.
        ValueError: The model's first module has no transformer to export.

    Examples:
        >>> from sentence_transformers import SentenceTransformer
        >>> model = SentenceTransformer("tests/fixtures/tiny-instructor", device="cpu")
        >>> backbone = Int8Backbone(model, cache_folder=tempfile.mkdtemp())
        >>> features = model.preprocess(["a cat"], prompt="Represent the sentence: ")
        >>> backbone.embed(features).shape
        torch.Size([1, 24])
    """

    def __init__(self, model: Any, cache_folder: str | None = None, threads: int | None = None) -> None:
        self._ort = require("onnxruntime", extra="int8")
        require("onnx", extra="int8")
        self.model = model
        transformer = model[0]
        backbone = getattr(transformer, "auto_model", None)
        if not isinstance(backbone, torch.nn.Module):
            raise ValueError(
                f"precision='int8' needs a transformer as the model's first module; got {type(transformer).__name__}"
            )
        self.backbone: torch.nn.Module = backbone
        self.names = self._input_names(model)
        #: 7-bit weights (``reduce_range``), where this CPU's int8 kernels would saturate with 8-bit ones.
        self.reduce_range = saturating_kernels()
        self.key = self._key()
        self.folder = (
            cache_root(cache_folder) / hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:24]
        )
        #: Whether this process built the graph (False: a valid cached one was reused).
        self.built = False
        path = self._ensure()
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        # The runtime's threads sleep between runs rather than spin: the pooling after each run is torch's,
        # on torch's own threads, and spinning runtime threads would take their cores (the performance log).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = self._ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        # The float32 transformer is not run again: its weights go (instructor-xl's are several GB). The
        # module stays, on the meta device, for its config; ``ModelRunner.savable_model`` loads it anew to save.
        self.backbone.to("meta")

    # ------------------------------------------------------------------ the cache
    @staticmethod
    def _input_names(model: Any) -> tuple[str, ...]:
        """The tokenizer's outputs the transformer takes (BERT: with token types; T5: ids and mask)."""
        sample = model.preprocess(["a"])
        return tuple(name for name in _INPUTS if name in sample)

    def _key(self) -> dict[str, Any]:
        """What the cached graph must have been made from, exactly."""
        import onnx

        config = getattr(self.backbone, "config", None)
        return {
            "format": FORMAT,
            "weights_sha256": _weights_digest(self.backbone),
            "config": config.to_json_string(use_diff=False) if config is not None else None,
            "architecture": type(self.backbone).__name__,
            "inputs": list(self.names),
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": self._ort.__version__,
            "quantization": {
                "weights": "int7" if self.reduce_range else "int8",
                "per_channel": True,
                "activations": "dynamic int8, symmetric",
                "opset": _OPSET,
            },
        }

    def _valid(self) -> Path | None:
        """The cached graph, if the folder holds one made from exactly :attr:`key` and intact."""
        manifest_path = self.folder / _MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or manifest.get("key") != self.key:
            logger.info("int8 cache %s was made from another checkpoint or toolchain: rebuilding it", self.folder)
            return None
        if not (self.folder / _MODEL_FILE).is_file() or _folder_digest(self.folder) != manifest.get("sha256"):
            logger.info("int8 cache %s does not match its manifest (incomplete or changed): rebuilding it", self.folder)
            return None
        return self.folder / _MODEL_FILE

    def _ensure(self) -> Path:
        cached = self._valid()
        if cached is not None:
            logger.debug("int8 graph reused from %s", self.folder)
            return cached
        with _locked(self.folder):
            cached = self._valid()  # another process may have built it while this one waited
            if cached is not None:
                return cached
            self._build()
        return self.folder / _MODEL_FILE

    def _build(self) -> None:
        """Export the float32 transformer, quantise it to int8, then write the manifest (its digest) last."""
        with _quiet_toolchain():
            self._build_files()
        manifest = {"key": self.key, "sha256": _folder_digest(self.folder), "built_at": time.time()}
        partial = self.folder / f".{_MANIFEST}.tmp"
        partial.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        os.replace(partial, self.folder / _MANIFEST)
        self.built = True

    def _build_files(self) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        started = time.perf_counter()
        logger.info(
            "Building the int8 graph of %s into %s (once per checkpoint)", type(self.backbone).__name__, self.folder
        )
        (self.folder / _MANIFEST).unlink(missing_ok=True)
        for stale in _graph_files(self.folder):
            stale.unlink()
        large = sum(p.numel() * p.element_size() for p in self.backbone.parameters()) > _EXTERNAL_DATA_BYTES
        with tempfile.TemporaryDirectory(dir=self.folder, prefix=".build-") as scratch:
            plain = Path(scratch) / "float32.onnx"
            self._export(plain)
            quantized = Path(scratch) / "int8"
            quantized.mkdir()
            quantize_dynamic(
                str(plain),
                str(quantized / _MODEL_FILE),
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=self.reduce_range,
                use_external_data_format=large,
                # Symmetric activations: the same speed, vectors nearer float32's (the performance log).
                extra_options={"ActivationSymmetric": True},
            )
            for path in sorted(quantized.iterdir()):
                os.replace(path, self.folder / path.name)
        logger.info("Built the int8 graph in %.1f s", time.perf_counter() - started)

    def _export(self, path: Path) -> None:
        """The float32 transformer as an ONNX graph, with its attention written out as plain operators.

        The export runs with transformers' eager attention: SDPA's exported form (masks built with
        boolean operators around one fused call) is left unfused by ONNX Runtime and runs markedly slower
        after quantisation (the performance log). The model's own implementation is restored afterwards.
        """
        sample = self.model.preprocess(["an example input of a few words", "a"])
        inputs = tuple(sample[name] for name in self.names)
        wrapper = _Hidden(self.backbone, self.names).eval()
        axes = {name: {0: "batch", 1: "length"} for name in (*self.names, "token_embeddings")}
        was_training = self.backbone.training
        try:
            with torch.no_grad(), _eager_attention(self.backbone):
                torch.onnx.export(
                    wrapper,
                    inputs,
                    str(path),
                    input_names=list(self.names),
                    output_names=["token_embeddings"],
                    dynamic_axes=axes,
                    opset_version=_OPSET,
                    dynamo=False,
                )
        finally:
            self.backbone.train(was_training)  # the exporter restores the wrapper's mode onto its children

    # ------------------------------------------------------------------ running
    def embed(self, features: dict[str, Any]) -> torch.Tensor:
        """One tokenized batch: the session's token embeddings through the model's other modules."""
        feeds = {name: np.ascontiguousarray(features[name].numpy(), dtype=np.int64) for name in self.names}
        hidden = self.session.run(None, feeds)[0]
        out = dict(features)
        out["token_embeddings"] = torch.from_numpy(np.asarray(hidden, dtype=np.float32))
        with torch.inference_mode(), _torch_in_this_thread():
            for module in list(self.model)[1:]:
                out = module(out)
        embeddings: torch.Tensor = out["sentence_embedding"]
        return embeddings
