"""The encoder's settings, declared once.

:class:`EncoderSettings` is the one list of what an
:class:`~instructor_integrations.encoder.InstructorEncoder` can be told: the constructor validates its
arguments through it, :func:`~instructor_integrations.encoder.get_encoder` keys its process-wide cache
on it, worker processes are built from it, and every adapter builds one from its fields (and shows it
as ``encoder_settings``). This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from ._validation import check_bool, check_positive_int, short

__all__ = ["DEFAULT_MODEL", "DTYPE_NAMES", "PRECISIONS", "EncoderSettings"]

DEFAULT_MODEL = "hkunlp/instructor-large"
#: The weight dtypes ``dtype`` accepts besides ``"auto"``.
DTYPE_NAMES = ("float32", "bfloat16", "float16")
#: The values ``precision`` accepts besides ``None``.
PRECISIONS = ("exact", "fast", "int8")


_UNSET: Any = object()


def _setting(
    default: Any, help: str, *, flag: str | Any | None = _UNSET, choices: tuple[str, ...] | None = None
) -> Any:
    """A settings field: its default, what it means (the one text every door shows), and its CLI option.

    ``flag`` is the ``instructor-embed`` option (default: ``--`` and the name with dashes; ``None``: no
    option); ``choices`` the values the option accepts.
    """
    return dataclasses.field(default=default, metadata={"help": help, "flag": flag, "choices": choices})


@dataclass(frozen=True)
class EncoderSettings:
    """Everything an :class:`~instructor_integrations.encoder.InstructorEncoder` is built from.

    Frozen and hashable: two equal settings objects name the same shared encoder. Each field has the
    meaning of the constructor argument of the same name (see ``InstructorEncoder``); the values are
    checked when the object is made, with an error naming the field and the values it accepts.
    ``InstructorEncoder.settings`` gives the settings an encoder runs with, its automatic choices
    (device, pooling, token limit, token budget) resolved.

    This is the one declaration of the settings: each field carries its meaning (:meth:`help`), its
    ``instructor-embed`` option (:meth:`flag`) and its type (:meth:`kind`, :meth:`parse`), from which
    the CLI's options, Ray's ``serve run`` arguments and the adapters' shared list are made.

    Examples:
        >>> from instructor_integrations import EncoderSettings, InstructorEncoder
        >>> settings = EncoderSettings("tests/fixtures/tiny-instructor", device="cpu", precision="exact")
        >>> encoder = InstructorEncoder.from_settings(settings)
        >>> encoder.settings.instructor_pooling, encoder.settings.max_seq_length
        (True, 512)
        >>> settings.replace(batch_size=64).batch_size
        64
    """

    model_name_or_path: str = _setting(
        DEFAULT_MODEL, "hub name or local folder of a sentence-transformers checkpoint", flag="--model"
    )
    device: str | None = _setting(None, "cpu, cuda, cuda:N or mps (default: cuda, then mps, then cpu)")
    dtype: str = _setting(
        "auto", "weight dtype (auto: bfloat16 on CUDA that has it, else float32)", choices=("auto", *DTYPE_NAMES)
    )
    precision: str | None = _setting(
        None,
        "exact (float32, reference parity), fast (bfloat16 where the hardware runs it fast) or int8 "
        "(CPU: an int8 ONNX Runtime graph, built once and cached; extra [int8])",
        choices=PRECISIONS,
    )
    max_seq_length: int | None = _setting(
        None, "token limit per input, instruction included (default: 512 for INSTRUCTOR pooling, else the model's)"
    )
    batch_size: int = _setting(32, "rows per forward pass, at most")
    token_budget: int | str | None = _setting(
        "auto", "padded tokens per forward pass, at most: a number, auto (per device) or none (no cap)"
    )
    cache_folder: str | None = _setting(None, "where hub models are cached (default: the Hugging Face cache)")
    local_files_only: bool | None = _setting(None, "never touch the network (default: follows HF_HUB_OFFLINE)")
    trust_remote_code: bool = _setting(
        False, "allow custom model code from the hub", flag=None
    )  # never a CLI option: a command line runs no code from the hub
    instructor_pooling: bool | None = _setting(
        None, "leave the instruction's tokens out of mean pooling (default: detected from the checkpoint)"
    )
    show_progress_bar: bool | None = _setting(None, "progress bars (default: on a terminal only)", flag=None)
    compile: bool = _setting(
        False, "compile the model's forward with torch.compile (slow once, faster on large corpora)"
    )
    num_workers: int = _setting(
        1, "worker processes (CPU or CUDA), each with its own copy of the model", flag="--workers"
    )

    def __post_init__(self) -> None:
        name = self.model_name_or_path
        if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
            raise TypeError(f"model_name_or_path must be a non-empty str or path, got {short(name)}")
        object.__setattr__(self, "model_name_or_path", os.fspath(name))
        if self.device is not None and not isinstance(self.device, str):
            raise TypeError(f"device must be None or a str such as 'cpu' or 'cuda:0', got {short(self.device)}")
        if self.dtype != "auto" and self.dtype not in DTYPE_NAMES:
            allowed = ", ".join(map(repr, DTYPE_NAMES))
            raise ValueError(f"dtype must be one of 'auto', {allowed}, got {short(self.dtype)}")
        self._check_precision()
        check_positive_int(self.max_seq_length, "max_seq_length", allow_none=True)
        check_positive_int(self.batch_size, "batch_size")
        if self.token_budget != "auto":
            check_positive_int(self.token_budget, "token_budget (or 'auto')", allow_none=True)
        if self.cache_folder is not None:
            if not isinstance(self.cache_folder, (str, os.PathLike)):
                raise TypeError(f"cache_folder must be None or a path, got {short(self.cache_folder)}")
            object.__setattr__(self, "cache_folder", os.fspath(self.cache_folder))
        check_bool(self.local_files_only, "local_files_only", allow_none=True)
        check_bool(self.trust_remote_code, "trust_remote_code")
        check_bool(self.instructor_pooling, "instructor_pooling", allow_none=True)
        check_bool(self.show_progress_bar, "show_progress_bar", allow_none=True)
        check_bool(self.compile, "compile")
        check_positive_int(self.num_workers, "num_workers")

    def _check_precision(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"precision must be None, 'exact', 'fast' or 'int8', got {short(self.precision)}")
        if self.precision is not None and self.dtype != "auto":
            raise ValueError(
                f"pass either dtype={self.dtype!r} or precision={self.precision!r}, not both: precision picks the dtype"
            )
        if self.precision == "int8":
            if self.compile:
                raise ValueError("compile=True does not apply to precision='int8' (ONNX Runtime runs that graph)")
            if self.device is not None and not self.device.startswith("cpu"):
                raise ValueError(
                    f"precision='int8' runs on the CPU only (ONNX Runtime), got device={self.device!r}; "
                    "use precision='fast' on an accelerator"
                )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names, in declaration order.

        Examples:
            >>> EncoderSettings.names()[:3]
            ('model_name_or_path', 'device', 'dtype')
        """
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def help(cls, name: str) -> str:
        """What a setting means, in the words every door shows (CLI help, docs).

        Examples:
            >>> EncoderSettings.help("batch_size")
            'rows per forward pass, at most'
        """
        return str(_fields()[name].metadata["help"])

    @classmethod
    def flag(cls, name: str) -> str | None:
        """The ``instructor-embed`` option of a setting (``None``: it has none).

        Examples:
            >>> EncoderSettings.flag("max_seq_length"), EncoderSettings.flag("num_workers")
            ('--max-seq-length', '--workers')
        """
        flag = _fields()[name].metadata["flag"]
        return "--" + name.replace("_", "-") if flag is _UNSET else flag

    @classmethod
    def choices(cls, name: str) -> tuple[str, ...] | None:
        """The values a string setting accepts, where it is a closed list."""
        choices: tuple[str, ...] | None = _fields()[name].metadata["choices"]
        return choices

    @classmethod
    def kind(cls, name: str) -> str:
        """The type of a setting as declared: ``"str | None"``, ``"int"``, ``"bool | None"``, ...

        Examples:
            >>> EncoderSettings.kind("token_budget")
            'int | str | None'
        """
        return str(_fields()[name].type)

    @classmethod
    def parse(cls, name: str, text: str) -> Any:
        """A setting's value from text (a command-line or ``key=value`` string), by its declared type.

        ``none`` is ``None`` where the setting takes it; booleans are true/false, 1/0, yes/no, on/off.

        Raises:
            ValueError: The text is no value of that type; the message names the setting.

        Examples:
            >>> EncoderSettings.parse("max_seq_length", "128"), EncoderSettings.parse("token_budget", "none")
            (128, None)
            >>> EncoderSettings.parse("instructor_pooling", "off")
            False
        """
        kind, lowered = cls.kind(name), text.strip().lower()
        if lowered == "none" and kind.endswith("| None"):
            return None
        if kind.startswith("bool"):
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{name} must be true or false, got {text!r}")
        if kind.startswith("int"):
            try:
                return int(text)
            except ValueError:
                if "str" in kind:  # token_budget: a number or "auto"
                    return text
                raise ValueError(f"{name} must be an integer, got {text!r}") from None
        return text

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> EncoderSettings:
        """Settings from keyword arguments, with an error that lists the known names for an unknown one.

        Examples:
            >>> EncoderSettings.from_kwargs(model_name_or_path="m", precision="fast").precision
            'fast'
        """
        unknown = sorted(set(kwargs) - set(cls.names()))
        if unknown:
            raise TypeError(
                f"unknown encoder setting(s) {', '.join(map(repr, unknown))}; "
                f"the settings are: {', '.join(cls.names())}"
            )
        return cls(**kwargs)

    def changed(self) -> dict[str, Any]:
        """The fields whose value differs from the default.

        Examples:
            >>> EncoderSettings("m", batch_size=8).changed()
            {'model_name_or_path': 'm', 'batch_size': 8}
        """
        defaults = EncoderSettings().as_kwargs()
        return {name: value for name, value in self.as_kwargs().items() if value != defaults[name]}

    def replace(self, **changes: Any) -> EncoderSettings:
        """A copy with ``changes`` applied (and checked).

        Examples:
            >>> EncoderSettings("m").replace(device="cpu").device
            'cpu'
        """
        return dataclasses.replace(self, **changes) if changes else self

    def as_kwargs(self) -> dict[str, Any]:
        """The settings as keyword arguments of ``InstructorEncoder``.

        Examples:
            >>> EncoderSettings("m").as_kwargs()["model_name_or_path"]
            'm'
        """
        return {name: getattr(self, name) for name in self.names()}


def _fields() -> dict[str, dataclasses.Field[Any]]:
    return {field.name: field for field in dataclasses.fields(EncoderSettings)}
