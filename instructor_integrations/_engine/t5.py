"""T5 attention that builds the position-bias-and-padding mask once per forward pass, not once per layer.

transformers' SDPA path for T5 (``sdpa_attention_forward``) turns the relative-position bias
``(1, heads, length, length)`` and the padding mask ``(batch, 1, 1, length)`` into one float mask
``(batch, heads, length, length)`` in *every* layer, although both inputs are the same objects in all
layers of a forward pass. On a GPU that mask is a large share of the kernel time (docs/performance.md).
The function here builds it in the first layer, hands the same tensor to the other layers of the same
forward pass, and otherwise calls transformers' own SDPA attention, so the results are bit-identical.

It is registered through transformers' public extension points (``AttentionInterface`` and
``AttentionMaskInterface``, the latter with transformers' own SDPA mask, without which a custom name
gets no padding mask at all) and chosen with ``PreTrainedModel.set_attn_implementation``.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from .attention import once_per_forward, switch_attention

#: The attention implementation name registered with transformers.
ATTENTION_NAME = "instructor_t5_shared_mask"

# One cached mask per thread: forward passes may run in several threads at once (encoders sharing a process).
_state = threading.local()


def _shared_mask_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    position_bias: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if position_bias is None or attention_mask is None or attention_mask.dtype != torch.bool:
        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            position_bias=position_bias,
            **kwargs,
        )
    # Later layers of one forward pass get the very same bias and mask objects as the first. What
    # transformers' create_position_bias_mask computes for a boolean mask:
    combined = once_per_forward(
        _state,
        "entry",
        module,
        (position_bias, attention_mask),
        lambda: torch.where(attention_mask, position_bias, torch.finfo(key.dtype).min).contiguous(),
    )
    return sdpa_attention_forward(module, query, key, value, combined, dropout=dropout, scaling=scaling, **kwargs)


def share_t5_attention_mask(backbone: Any) -> bool:
    """Switch a T5 encoder that uses SDPA attention to the shared-mask attention; other models are left alone.

    Returns:
        Whether the backbone was switched.
    """
    if getattr(getattr(backbone, "config", None), "model_type", None) != "t5":
        return False
    return switch_attention(backbone, ATTENTION_NAME, _shared_mask_attention)
