"""The fused ``uvu`` convolution of nnp_lab's SevenNet-0, with a hand-written backward.

Part of :mod:`nnp_lab.potentials.sevennet_fast`. :class:`Convolution` runs in blocks of
:data:`EDGE_CHUNK` edges and recomputes the per-edge products in its backward pass instead of
storing them (memory linear in the number of atoms, temporaries that stay in cache).
:func:`stage` names the profiler ranges of every step of the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from nnp_lab.potentials._sevennet_geometry import Segments

__all__ = ["EDGE_CHUNK", "Convolution", "row_path", "stage"]

#: Edges per block in the convolution: temporaries stay at ~EDGE_CHUNK * rows * channels
#: floats (about 1 MB), small enough to stay in cache between the fused steps.
EDGE_CHUNK = 256


def stage(name: str) -> contextlib.AbstractContextManager:
    """A named ``torch.profiler`` range when a profiler runs (``bench/profile_sevennet.py``
    reads them); a no-op otherwise, so the ~1,000 ranges of a call cost nothing."""
    if torch.autograd._profiler_enabled():
        return torch.profiler.record_function(name)
    return contextlib.nullcontext()


class Convolution(torch.autograd.Function):
    """The ``uvu`` convolution of one layer, edge block by edge block, with its own backward.

    For every input block ``k`` (angular momentum ``l1``)::

        agg_k[i] = sum over edges e = (i, j) of  w_e[paths of k] * (A_k[e] @ x_k[j])

    with ``x_k`` ``(n_atoms, 2l1+1, mul)``, ``A_k`` ``(n_edges, rows, 2l1+1)`` (edge
    harmonics contracted with Wigner-3j symbols) and ``w`` ``(n_pairs, n_weights)`` the
    radial weights, which multiply all rows of their path; edges are the neighbour pairs
    followed by the reversed pairs, and both directions of a pair share its weights. The
    backward pass recomputes the per-edge products block by block instead of storing them:
    memory stays linear in the number of edges with a small constant (no
    ``(n_edges, rows, mul)`` tensor is kept) and the temporaries stay in cache. First
    derivatives only (forces and stress).

    ``layout`` holds per block ``(first weight column, rows used, segments)`` where a
    segment is ``(first row, end row, first path, number of paths, 2l3+1)``; the tensors are
    the blocks' inputs ``x``, their edge matrices ``A`` and their row-to-path indices.
    """

    @staticmethod
    def forward(ctx, layout, sender, receiver, w, *tensors):  # noqa: D102
        n = len(layout)
        xs, edge_a, row_paths = tensors[:n], tensors[n : 2 * n], tensors[2 * n :]
        n_atoms = xs[0].shape[0]
        aggs = [x.new_zeros((n_atoms, rows, x.shape[2])) for x, (_, rows, _) in zip(xs, layout)]
        for e, p in _edge_blocks(w.shape[0]):
            send, recv, w_e = sender[e], receiver[e], w[p]
            for x, a, agg, rp, (col, rows, segs) in zip(xs, edge_a, aggs, row_paths, layout):
                t = _edge_products(a[e, :rows], x.index_select(0, send))
                t.mul_(_row_weights(w_e, col, rp, _n_paths(segs), t.shape[2]))
                agg.index_add_(0, recv, t)
        ctx.save_for_backward(sender, receiver, w, *tensors)
        ctx.layout = layout
        return tuple(aggs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_aggs):  # noqa: D102
        sender, receiver, w, *tensors = ctx.saved_tensors
        layout = ctx.layout
        n = len(layout)
        need = ctx.needs_input_grad
        need_w, need_x, need_a = need[3], need[4 : 4 + n], need[4 + n : 4 + 2 * n]
        with stage("sevennet.tensor_product_backward"):
            grads = Convolution._backward(
                layout, sender, receiver, w, tensors, grad_aggs, need_w, need_x, need_a
            )
        return (None, None, None, *grads, *([None] * n))

    @staticmethod
    def _backward(layout, sender, receiver, w, tensors, grad_aggs, need_w, need_x, need_a):
        n = len(layout)
        xs, edge_a, row_paths = tensors[:n], tensors[n : 2 * n], tensors[2 * n :]
        grad_w = torch.zeros_like(w) if need_w else None
        grad_x = [torch.zeros_like(x) if nx else None for x, nx in zip(xs, need_x)]
        grad_a = []
        for a, na, (_, rows, _) in zip(edge_a, need_a, layout):
            if not na:
                grad_a.append(None)
            else:
                grad_a.append(a.new_empty(a.shape) if rows == a.shape[1] else torch.zeros_like(a))
        for e, p in _edge_blocks(w.shape[0]):
            send, recv, w_e = sender[e], receiver[e], w[p]
            for k, (col, rows, segments) in enumerate(layout):
                x, a, rp = xs[k], edge_a[k][e, :rows], row_paths[k]
                c, mul, n_p = a.shape[0], x.shape[2], _n_paths(segments)
                g = grad_aggs[k].index_select(0, recv)  # (c, rows, mul)
                x_e = x.index_select(0, send)
                if need_w:
                    # d/dw[path] = sum over the path's rows of g * (A @ x); both directions
                    # of a pair add into its row of grad_w.
                    t = _edge_products(a, x_e).mul_(g)
                    grad_w[p, col : col + n_p * mul].view(c, n_p, mul).index_add_(1, rp, t)
                g.mul_(_row_weights(w_e, col, rp, n_p, mul))  # now d(loss)/d(A @ x)
                if need_x[k]:
                    grad_x[k].index_add_(0, send, torch.bmm(a.transpose(1, 2), g))
                if need_a[k]:
                    grad_a[k][e, :rows] = torch.bmm(g, x_e.transpose(1, 2))
        return (grad_w, *grad_x, *grad_a)


def _edge_blocks(n_pairs: int) -> Iterator[tuple[slice, slice]]:
    """Blocks of at most ``EDGE_CHUNK`` edges: (edge slice, pair slice). Edge ``e`` is pair
    ``e`` for ``e < n_pairs`` and the reverse of pair ``e - n_pairs`` after that."""
    for offset in (0, n_pairs):
        for start in range(0, n_pairs, EDGE_CHUNK):
            stop = min(start + EDGE_CHUNK, n_pairs)
            yield slice(offset + start, offset + stop), slice(start, stop)


def _edge_products(a: torch.Tensor, x_e: torch.Tensor) -> torch.Tensor:
    """``A @ x`` per edge: ``(c, rows, 2l1+1) @ (c, 2l1+1, mul)``."""
    if a.shape[2] == 1:  # l1 = 0: an outer product; broadcasting beats a K=1 bmm
        return a * x_e
    return torch.bmm(a, x_e)


def row_path(segments: Segments) -> torch.Tensor:
    """Path index of every row of a block (rows are ``(l3, m3, path)``)."""
    return torch.tensor(
        [p0 + (r - first) % n_p for first, end, p0, n_p, _ in segments for r in range(first, end)]
    )


def _n_paths(segments: Segments) -> int:
    """Number of paths of a block (segments: see :class:`Convolution`)."""
    return segments[-1][2] + segments[-1][3]


def _row_weights(
    w: torch.Tensor, col: int, path_of_row: torch.Tensor, n_p: int, mul: int
) -> torch.Tensor:
    """The radial weights of every row, ``(c, rows, mul)``, from ``w`` ``(c, n_weights)``."""
    return w[:, col : col + n_p * mul].view(w.shape[0], n_p, mul).index_select(1, path_of_row)
