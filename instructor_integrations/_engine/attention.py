"""Registering this package's attention functions with transformers' public extension points.

A function goes into ``AttentionInterface`` under its name, and the name into
``AttentionMaskInterface`` with transformers' own SDPA mask: without a mask function a custom name
gets no padding mask at all. A model then uses it after ``PreTrainedModel.set_attn_implementation``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import torch

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_registered: set[str] = set()


def register_attention(name: str, function: Callable[..., Any]) -> None:
    """Register ``function`` as attention ``name``, with SDPA's mask; once per process."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    with _lock:
        if name not in _registered:
            AttentionInterface.register(name, function)
            AttentionMaskInterface.register(name, sdpa_mask)
            _registered.add(name)


def switch_attention(backbone: Any, name: str, function: Callable[..., Any]) -> bool:
    """Switch an encoder that uses SDPA attention to ``function`` (registered as ``name``).

    Decoders, models on another attention implementation and models without transformers' attention
    interface are left alone.

    Returns:
        Whether the backbone was switched.
    """
    config = getattr(backbone, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        return False
    if getattr(config, "is_decoder", False) or not callable(getattr(backbone, "set_attn_implementation", None)):
        return False
    register_attention(name, function)
    try:
        backbone.set_attn_implementation(name)
    except (ValueError, NotImplementedError) as exc:  # a model without transformers' attention interface
        logger.debug("attention %s not available for %s: %s", name, type(backbone).__name__, exc)
        return False
    switched = bool(backbone.config._attn_implementation == name)
    logger.debug("attention %s for %s: %s", name, type(backbone).__name__, switched)
    return switched


def is_last_layer(module: Any) -> bool:
    """Whether an attention ``module`` is the last layer of its stack (T5's ``layer_idx`` and ``num_layers``).

    Attention functions that cache a tensor for the layers of one forward pass drop it here, so nothing
    stays alive between forward passes.
    """
    return bool(getattr(module, "layer_idx", None) == getattr(getattr(module, "config", None), "num_layers", 0) - 1)


def once_per_forward(
    state: threading.local,
    slot: str,
    module: Any,
    inputs: tuple[torch.Tensor, ...],
    build: Callable[[], torch.Tensor],
) -> torch.Tensor:
    """``build()`` once per forward pass: later layers that get the very same ``inputs`` objects reuse it.

    The result is kept in ``state.<slot>`` (a ``threading.local``: forward passes may run in several
    threads at once) and dropped after the last layer (:func:`is_last_layer`).
    """
    entry = getattr(state, slot, None)
    cached: tuple[torch.Tensor, ...] = () if entry is None else entry[0]
    if entry is not None and len(cached) == len(inputs) and all(a is b for a, b in zip(cached, inputs, strict=True)):
        value: torch.Tensor = entry[1]
    else:
        value = build()
        setattr(state, slot, (inputs, value))
    if is_last_layer(module):
        setattr(state, slot, None)  # keep nothing alive between forward passes
    return value
