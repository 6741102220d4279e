"""The ``"reference"`` backend: plain nodal analysis of the netlist graph in SciPy.

This solver is deliberately generic and independent of the compiled kernels: it
builds the circuit as a list of two-terminal resistors between named nodes (the same
elements the SPICE deck contains), merges nodes joined by zero-ohm elements, writes
the reduced conductance Laplacian of the free nodes and solves it with SuperLU
(factor once, solve every input vector of the batch).  It is the yardstick the fast
solvers are tested against.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from ..errors import SpecError
from ..solution import BackendOutput
from ..spec import Crossbar

__all__ = ["solve_batch", "circuit_graph"]


class _Graph:
    """Node numbering of the crossbar netlist graph.

    Fixed-voltage nodes come first: M row sources, then N virtual grounds.
    """

    def __init__(self, m: int, n: int) -> None:
        self.m, self.n = m, n
        self.source = np.arange(m)                       # ideal source terminal of row i
        self.vground = m + np.arange(n)                  # virtual ground of column j
        self.n_fixed = m + n
        base = self.n_fixed
        self.driver = base + np.arange(m)                # driver output node of row i
        base += m
        self.row = base + np.arange(m * n).reshape(m, n)  # r(i, j)
        base += m * n
        self.col = base + np.arange(m * n).reshape(m, n)  # c(i, j)
        base += m * n
        self.sense = base + np.arange(n)                 # sense node of column j
        self.n_nodes = base + n


def circuit_graph(crossbar: Crossbar) -> tuple[_Graph, np.ndarray, np.ndarray, np.ndarray]:
    """Return the node numbering and the element list ``(a, b, conductance)``.

    Conductances are in siemens: ``1/R`` for wires, drivers and sense resistors
    (``inf`` for a zero-ohm element, a short), ``G[i, j]`` for cells (0 = open).
    """
    m, n = crossbar.shape
    graph = _Graph(m, n)
    a_list, b_list, g_list = [], [], []

    def add(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> None:
        a = np.ravel(a)
        a_list.append(a)
        b_list.append(np.ravel(b))
        g_list.append(np.broadcast_to(np.ravel(g), a.shape))

    def wire(resistance: float) -> np.ndarray:
        return np.array([np.inf if resistance == 0.0 else 1.0 / resistance])

    add(graph.source, graph.driver, wire(crossbar.r_driver))
    add(graph.driver, graph.row[:, 0], wire(crossbar.r_row))
    add(graph.row[:, :-1], graph.row[:, 1:], wire(crossbar.r_row))
    add(graph.col[:-1, :], graph.col[1:, :], wire(crossbar.r_col))
    add(graph.col[-1, :], graph.sense, wire(crossbar.r_col))
    add(graph.sense, graph.vground, wire(crossbar.r_sense))
    add(graph.row, graph.col, crossbar.conductance)
    return graph, np.concatenate(a_list), np.concatenate(b_list), np.concatenate(g_list)


def solve_batch(crossbar: Crossbar, v_in: np.ndarray) -> BackendOutput:
    """Solve the crossbar netlist for a batch of inputs by sparse nodal analysis.

    Parameters
    ----------
    crossbar : Crossbar
        The array.
    v_in : ndarray, shape (B, M)
        Validated source voltages in volts.

    Returns
    -------
    BackendOutput
    """
    start = time.perf_counter()
    graph, a, b, g = circuit_graph(crossbar)
    g_cells = crossbar.conductance
    open_mask = g == 0.0
    a, b, g = a[~open_mask], b[~open_mask], g[~open_mask]
    short = np.isinf(g)
    # Merge nodes joined by zero-ohm elements.
    n_nodes = graph.n_nodes
    adjacency = sp.coo_matrix(
        (np.ones(int(short.sum())), (a[short], b[short])), shape=(n_nodes, n_nodes)
    )
    _, group = csgraph.connected_components(adjacency, directed=False)
    group = group.astype(np.int64)
    n_groups = int(group.max()) + 1
    # Fixed groups: those holding a source or a virtual ground.
    batch = v_in.shape[0]
    fixed_value = np.full((batch, n_groups), np.nan)
    fixed_owner = np.full(n_groups, -1)
    for node in range(graph.n_fixed):
        grp = group[node]
        if fixed_owner[grp] >= 0:
            raise SpecError(
                "the netlist shorts two fixed-voltage nodes together through zero-ohm wires"
            )
        fixed_owner[grp] = node
        fixed_value[:, grp] = v_in[:, node] if node < graph.m else 0.0
    is_fixed = fixed_owner >= 0
    free_groups = np.flatnonzero(~is_fixed)
    fixed_groups = np.flatnonzero(is_fixed)
    # Conductance Laplacian over groups.
    keep = ~short
    ga, gb = group[a[keep]], group[b[keep]]
    cond = g[keep]
    internal = ga == gb
    ga, gb, cond = ga[~internal], gb[~internal], cond[~internal]
    rows = np.concatenate([ga, gb, ga, gb])
    cols = np.concatenate([ga, gb, gb, ga])
    vals = np.concatenate([cond, cond, -cond, -cond])
    lap = sp.csr_matrix((vals, (rows, cols)), shape=(n_groups, n_groups))
    voltages = np.empty((batch, n_groups))
    voltages[:, fixed_groups] = fixed_value[:, fixed_groups]
    factor_time = 0.0
    if free_groups.size:
        l_ff = lap[free_groups][:, free_groups].tocsc()
        l_fx = lap[free_groups][:, fixed_groups]
        rhs = -(l_fx @ fixed_value[:, fixed_groups].T)
        t0 = time.perf_counter()
        lu = spla.splu(l_ff)
        factor_time = time.perf_counter() - t0
        voltages[:, free_groups] = lu.solve(np.ascontiguousarray(rhs)).T
    node_v = voltages[:, group]
    row_v = node_v[:, graph.row]
    col_v = node_v[:, graph.col]
    # Column current into the virtual ground, by Kirchhoff's current law along the
    # column: the sum of the currents of its cells (better conditioned than the drop
    # across one tiny wire segment).
    col_i = np.einsum("ij,bij->bj", g_cells, row_v - col_v)
    info = {
        "method": "SciPy SuperLU on the netlist graph (zero-ohm elements merged)",
        "unknowns": int(free_groups.size),
        "factor_seconds": factor_time,
        "seconds": time.perf_counter() - start,
    }
    return BackendOutput(row_v, col_v, col_i, info)
