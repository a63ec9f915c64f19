"""Blocked bfloat16 attention for encoders on CPUs without AMX.

On a CPU with AVX512-BF16 but without AMX tiles (AMD Zen 4 and 5, Intel Cooper Lake), PyTorch's
fused CPU attention (``scaled_dot_product_attention``'s flash kernel) runs well below the speed of
the same work done as three plain operators: scores by batched matmul, softmax, and a second batched
matmul, taken a block of (sample, head) pairs at a time so that each block's scores stay in the
core's cache (``benchmarks/experiments/cpu_attention.py`` compares the two; its results are in the performance
log). On a CPU with AMX the fused kernel runs its matmuls on the tiles and is the faster one, so the
encoder uses this function only where ``amx_bf16`` is absent (see ``docs/performance.md``).

The results are those of attention in bfloat16: the scores are rounded to bfloat16 before the
softmax, where the fused kernel keeps them in float32. On the SciFact abstracts and queries with
all-MiniLM-L6-v2 the vectors stay close to float32's (a test holds them within cosine 0.999 on the
fixture).

It is registered through transformers' public extension points (``AttentionInterface``, and
``AttentionMaskInterface`` with transformers' own SDPA mask, without which a custom name gets no
padding mask at all) and chosen with ``PreTrainedModel.set_attn_implementation``. Anything it was not
written for (causal or grouped-query attention, dropout, attention weights, another device or
dtype, sequences so long that one head's scores exceed a block) goes to transformers' SDPA attention
unchanged.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from .attention import once_per_forward, register_attention, switch_attention

#: The attention implementation name registered with transformers.
ATTENTION_NAME = "instructor_cpu_blocked"

#: Bytes of bfloat16 scores per block: 12 heads x 256 x 256 (one MiniLM sample at its cap); among the
#: fastest of the block sizes tried (the performance log).
BLOCK_BYTES = 12 * 256 * 256 * 2


def _blocked_attention(  # noqa: C901 - one kernel, its branches the masks and shapes transformers passes
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    position_bias: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """``softmax(q k^T * scaling + bias, masked) v`` over blocks of (sample, head) pairs.

    Shapes as transformers passes them: ``query`` (batch, heads, q_len, head_dim), ``key`` and
    ``value`` (batch, heads, k_len, head_dim), a boolean (keep) or additive float ``attention_mask``
    broadcastable to (batch, heads, q_len, k_len), T5's ``position_bias`` (1 or batch, heads, q_len,
    k_len). Returns the output as (batch, q_len, heads, head_dim), as transformers' attentions do.
    """
    causal = getattr(module, "is_causal", False) if is_causal is None else is_causal
    if (
        query.device.type != "cpu"
        or query.dtype != torch.bfloat16
        or dropout
        or causal
        or kwargs.get("output_attentions")
        or kwargs.get("softcap") is not None
        or getattr(module, "num_key_value_groups", 1) != 1
        or query.shape[1] != key.shape[1]
        # One head's scores larger than a block (beyond about 880 tokens): not measured, and the fused
        # kernel's memory stays linear in the length where blocks of whole score rows would not.
        or query.shape[2] * key.shape[2] * query.element_size() > BLOCK_BYTES
    ):
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            is_causal=is_causal,
            position_bias=position_bias,
            **kwargs,
        )
    batch, heads, q_len, head_dim = query.shape
    k_len = key.shape[2]
    scale = head_dim**-0.5 if scaling is None else float(scaling)
    if position_bias is not None:
        position_bias = _contiguous_bias(module, position_bias)
    per_head = q_len * k_len * query.element_size()
    if heads * per_head <= BLOCK_BYTES:
        samples_per_block, heads_per_block = max(1, BLOCK_BYTES // (heads * per_head)), heads
    else:
        samples_per_block, heads_per_block = 1, BLOCK_BYTES // per_head
    # A mask that every block reads as one (1 or rows, q or 1, k) tensor is added inside the first matmul
    # (baddbmm's input); otherwise it costs a separate pass over each block's scores.
    fused = None
    drop = None
    if attention_mask is not None:
        if (
            position_bias is None
            and attention_mask.dim() == 4
            and (samples_per_block == 1 or attention_mask.shape[:2] == (1, 1))
        ):
            if attention_mask.dtype == torch.bool:
                fused = torch.zeros(attention_mask.shape, dtype=query.dtype).masked_fill_(
                    ~attention_mask, torch.finfo(query.dtype).min
                )
            else:
                fused = attention_mask.to(query.dtype)
        elif attention_mask.dtype == torch.bool:
            drop = torch.logical_not(attention_mask)
    # The output in the layout transformers returns, (batch, q_len, heads, dim), written block by block.
    out = query.new_empty(batch, q_len, heads, value.shape[-1])
    for first in range(0, batch, samples_per_block):
        last = min(batch, first + samples_per_block)
        for head in range(0, heads, heads_per_block):
            stop = min(heads, head + heads_per_block)
            rows = (last - first) * (stop - head)
            # transformers hands over (batch, heads, len, dim) views of (batch, len, heads, dim) projections.
            # Each block is copied to (rows, len, dim) in memory here, while it is small enough to stay in the
            # cache: the matmuls run slower on the strided view, and copying the whole tensors first (as
            # before 2026-11-27) cost a pass over memory for each of them.
            q = query[first:last, head:stop].contiguous().view(rows, q_len, head_dim)
            k = key[first:last, head:stop].contiguous().view(rows, k_len, head_dim)
            v = value[first:last, head:stop].contiguous().view(rows, k_len, value.shape[-1])
            if fused is not None:
                scores = torch.baddbmm(_block(fused, first, last, head, stop)[0], q, k.transpose(1, 2), alpha=scale)
            else:
                scores = torch.baddbmm(q.new_empty(rows, q_len, k_len), q, k.transpose(1, 2), beta=0.0, alpha=scale)
                view = scores.view(last - first, stop - head, q_len, k_len)
                if position_bias is not None:
                    view.add_(_block(position_bias, first, last, head, stop))
                if drop is not None:
                    view.masked_fill_(_block(drop, first, last, head, stop), torch.finfo(scores.dtype).min)
                elif attention_mask is not None:
                    view.add_(_block(attention_mask, first, last, head, stop))
            probabilities = torch.softmax(scores, dim=-1)
            if last - first == 1:  # one sample's heads: a (heads, q_len, dim) view of ``out`` takes the product
                torch.bmm(probabilities, v, out=out[first, :, head:stop].transpose(0, 1))
            else:
                block = torch.bmm(probabilities, v).view(last - first, stop - head, q_len, -1)
                out[first:last, :, head:stop] = block.transpose(1, 2)
    return out, None


# The contiguous copy of T5's position bias, per thread: every layer of a forward pass gets the same bias.
_state = threading.local()


def _contiguous_bias(module: torch.nn.Module, bias: torch.Tensor) -> torch.Tensor:
    """``bias`` laid out (batch, heads, q, k) in memory, copied once per forward pass.

    T5 computes its relative-position bias as a (1, heads, q, k) view of a (q, k, heads) tensor, so a
    block of heads read from it is a strided gather: slow enough, read per block, to matter.
    """
    if bias.is_contiguous():
        return bias
    return once_per_forward(_state, "bias", module, (bias,), bias.contiguous)


def _block(tensor: torch.Tensor, first: int, last: int, head: int, stop: int) -> torch.Tensor:
    """The part of a (batch or 1, heads or 1, q, k) tensor that a block of samples and heads reads."""
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            tensor = tensor[first:last]
        if tensor.shape[1] != 1:
            tensor = tensor[:, head:stop]
    return tensor


def _register() -> None:
    register_attention(ATTENTION_NAME, _blocked_attention)


def use_blocked_cpu_attention(backbone: Any) -> bool:
    """Switch an encoder that uses SDPA attention to the blocked attention; other models are left alone.

    The caller decides whether the CPU and dtype call for it (``InstructorEncoder``: bfloat16 on a CPU
    without AMX, not compiled).

    Returns:
        Whether the backbone was switched.
    """
    return switch_attention(backbone, ATTENTION_NAME, _blocked_attention)
