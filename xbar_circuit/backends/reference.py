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

from .._validate import check_int
from ..errors import BackendError, ConvergenceError, SpecError
from ..solution import BackendOutput
from ..spec import Crossbar

__all__ = ["solve_batch", "circuit_graph", "general_graph", "NEWTON_TOL"]

NEWTON_TOL = 1e-13
"""Newton stops when the largest node-voltage update is below ``NEWTON_TOL`` times the
largest source voltage (and the KCL residual is at rounding level)."""


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
    # The default circuit (the only one built here) has scalar wires.
    r_row, r_col = float(crossbar.r_row), float(crossbar.r_col)  # type: ignore[arg-type]
    add(graph.driver, graph.row[:, 0], wire(r_row))
    add(graph.row[:, :-1], graph.row[:, 1:], wire(r_row))
    add(graph.col[:-1, :], graph.col[1:, :], wire(r_col))
    add(graph.col[-1, :], graph.sense, wire(r_col))
    add(graph.sense, graph.vground, wire(crossbar.r_sense))
    add(graph.row, graph.col, crossbar.conductance)
    return graph, np.concatenate(a_list), np.concatenate(b_list), np.concatenate(g_list)


def solve_batch(crossbar: Crossbar, v_in: np.ndarray, **options: object) -> BackendOutput:
    """Solve the crossbar netlist for a batch of inputs by sparse nodal analysis.

    The default circuit is solved with one SuperLU factorization. Every variant (device
    models, driver/sense sides, TIA, sense load, per-segment wires) goes through
    :func:`general_graph` and, for nonlinear cells, a damped Newton-Raphson loop with
    SciPy sparse LU per iteration, falling back to source stepping.

    Parameters
    ----------
    crossbar : Crossbar
        The array.
    v_in : ndarray, shape (B, M)
        Validated source voltages in volts.
    v_gate : float or array_like (M,), optional
        Gate-line voltages of gated (1T1R) cells, volts.
    newton_max_iter : int, optional
        Newton iteration cap per input vector (default 100), the same option name as the
        ``"nodal"`` backend's Newton cap (its ``max_iter`` caps CG iterations, which this
        direct solver does not have).

    Returns
    -------
    BackendOutput
    """
    unknown = sorted(set(options) - {"v_gate", "newton_max_iter"})
    if unknown:
        raise BackendError(f"unknown option(s) for backend 'reference': {', '.join(unknown)}; "
                           "known: v_gate, newton_max_iter")
    gates = crossbar.gate_voltages(options.get("v_gate"))
    if not crossbar.is_default_topology:
        max_iter = check_int("newton_max_iter", options.get("newton_max_iter", 100), 1, 2**31 - 1,
                             error=BackendError)
        return _solve_general(crossbar, v_in, gates, max_iter)
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
        refinements = _refine(lu, voltages, free_groups, ga, gb, cond)
    else:
        refinements = 0
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
        "refinement_steps": refinements,
        "factor_seconds": factor_time,
        "seconds": time.perf_counter() - start,
    }
    return BackendOutput(row_v, col_v, col_i, info)


def _refine(lu: spla.SuperLU, voltages: np.ndarray, free: np.ndarray, ga: np.ndarray,
            gb: np.ndarray, cond: np.ndarray, max_steps: int = 4) -> int:
    """Iterative refinement with Kirchhoff residuals computed from voltage differences.

    The residual at a node is the net current leaving it, ``Σ g (V_a − V_b)`` over its
    elements. Forming it from differences (rather than ``b − L x``) keeps its rounding
    relative to the branch currents, so the correction recovers the digits that LU
    loses on weakly grounded lines (milliohm wires behind megaohm periphery: a
    condition number around 1e9). Updates ``voltages`` in place; returns the steps taken.
    """
    n_groups = voltages.shape[1]
    n_edges = ga.size
    edge = np.arange(n_edges)
    incidence = sp.csr_matrix(
        (np.concatenate([np.ones(n_edges), -np.ones(n_edges)]),
         (np.concatenate([ga, gb]), np.concatenate([edge, edge]))),
        shape=(n_groups, n_edges),
    )
    scale = np.abs(voltages).max() or 1.0
    previous = np.inf
    for step in range(1, max_steps + 1):
        currents = (voltages[:, ga] - voltages[:, gb]) * cond          # (B, E)
        leaving = (incidence @ currents.T)[free]                        # (F, B)
        correction = lu.solve(np.ascontiguousarray(-leaving))
        voltages[:, free] += correction.T
        size = float(np.abs(correction).max()) if correction.size else 0.0
        if size <= 1e-16 * scale or size >= 0.5 * previous:
            return step
        previous = size
    return max_steps


# --------------------------------------------------------------------- variants
class _GeneralGraph:
    """Node numbering of any topology. Fixed nodes first: ground, then M sources."""

    def __init__(self, m: int, n: int) -> None:
        self.m, self.n = m, n
        self.ground = 0
        self.source = 1 + np.arange(m)
        self.n_fixed = 1 + m
        base = self.n_fixed
        self.drv_left = base + np.arange(m)
        base += m
        self.drv_right = base + np.arange(m)
        base += m
        self.row = base + np.arange(m * n).reshape(m, n)
        base += m * n
        self.col = base + np.arange(m * n).reshape(m, n)
        base += m * n
        self.sense = base + np.arange(n)
        base += n
        self.vground = base + np.arange(n)
        self.n_nodes = base + n


def general_graph(crossbar: Crossbar) -> tuple[_GeneralGraph, np.ndarray, np.ndarray,
                                               np.ndarray]:
    """Node numbering and linear elements ``(a, b, conductance)`` of any topology.

    The cells are not in the list (they may be nonlinear); they join ``row[i, j]``
    to ``col[i, j]``. Conductances in siemens, ``inf`` for a zero-ohm element.
    The topology is the one of docs/models.md (and of the SPICE deck).
    """
    m, n = crossbar.shape
    graph = _GeneralGraph(m, n)
    a_list, b_list, g_list = [], [], []

    def add(a: np.ndarray, b: np.ndarray, r: np.ndarray | float) -> None:
        a = np.ravel(a)
        r = np.broadcast_to(np.ravel(np.asarray(r, float)), a.shape)
        with np.errstate(divide="ignore"):
            g = np.where(r == 0.0, np.inf, 1.0 / np.where(r == 0.0, 1.0, r))
        a_list.append(a)
        b_list.append(np.ravel(b))
        g_list.append(g)

    seg_r = crossbar.row_segments()
    seg_c = crossbar.col_segments()
    side = crossbar.driver_side
    if side in ("left", "both"):
        add(graph.source, graph.drv_left, crossbar.r_driver)
        add(graph.drv_left, graph.row[:, 0], seg_r[:, 0])
        add(graph.row[:, :-1], graph.row[:, 1:], seg_r[:, 1:n])
    if side == "both":
        add(graph.row[:, -1], graph.drv_right, seg_r[:, n])
        add(graph.drv_right, graph.source, crossbar.r_driver)
    if side == "right":
        add(graph.row[:, :-1], graph.row[:, 1:], seg_r[:, :-1])
        add(graph.row[:, -1], graph.drv_right, seg_r[:, -1])
        add(graph.drv_right, graph.source, crossbar.r_driver)
    if crossbar.sense_side == "bottom":
        add(graph.col[:-1, :], graph.col[1:, :], seg_c[:-1, :])
        add(graph.col[-1, :], graph.sense, seg_c[-1, :])
    else:
        add(graph.col[1:, :], graph.col[:-1, :], seg_c[1:, :])
        add(graph.col[0, :], graph.sense, seg_c[0, :])
    add(graph.sense, graph.vground, crossbar.r_sense)
    add(graph.vground, np.full(n, graph.ground), crossbar.port_resistance)
    return graph, np.concatenate(a_list), np.concatenate(b_list), np.concatenate(g_list)


def _solve_general(crossbar: Crossbar, v_in: np.ndarray, gates: np.ndarray | None,
                   max_iter: int) -> BackendOutput:
    """Sparse nodal analysis of a variant topology; Newton for nonlinear cells."""
    start = time.perf_counter()
    m, n = crossbar.shape
    graph, a, b, g = general_graph(crossbar)
    used = np.zeros(graph.n_nodes, bool)
    used[a] = used[b] = True
    used[graph.row] = used[graph.col] = True
    used[: graph.n_fixed] = True
    short = np.isinf(g)
    adjacency = sp.coo_matrix((np.ones(int(short.sum())), (a[short], b[short])),
                              shape=(graph.n_nodes, graph.n_nodes))
    _, group = csgraph.connected_components(adjacency, directed=False)
    owner: dict[int, int] = {}
    for node in range(graph.n_fixed):
        if int(group[node]) in owner:
            raise SpecError("the netlist shorts two fixed-voltage nodes together through "
                            "zero-ohm wires")
        owner[int(group[node])] = node
    # Renumber groups: fixed groups first (ground, sources), then free ones.
    n_groups = int(group.max()) + 1
    order = np.full(n_groups, -1)
    for node in range(graph.n_fixed):
        order[group[node]] = node
    free = [grp for grp in np.unique(group[used]) if order[grp] < 0]
    order[free] = graph.n_fixed + np.arange(len(free))
    idx = order[group]
    n_free = len(free)
    nf = graph.n_fixed
    keep = ~short
    ga, gb, cond = idx[a[keep]], idx[b[keep]], g[keep]
    inner = ga == gb
    ga, gb, cond = ga[~inner], gb[~inner], cond[~inner]
    size = nf + n_free
    lap = sp.csr_matrix((np.concatenate([cond, cond, -cond, -cond]),
                         (np.concatenate([ga, gb, ga, gb]), np.concatenate([ga, gb, gb, ga]))),
                        shape=(size, size))
    l_ff = lap[nf:, nf:].tocsc()
    l_fx = lap[nf:, :nf]
    cr = idx[graph.row].ravel()
    cc = idx[graph.col].ravel()
    g_cells = crossbar.conductance.ravel()
    device = crossbar.device
    gate_cells = None if gates is None else np.repeat(gates, n)
    # Cell incidence: v_cell = P x_full with rows +1 at cr, -1 at cc.
    k = np.arange(m * n)
    inc = sp.csr_matrix((np.concatenate([np.ones(m * n), -np.ones(m * n)]),
                         (np.concatenate([k, k]), np.concatenate([cr, cc]))),
                        shape=(m * n, size))
    inc_f = inc[:, nf:].tocsc()
    inc_x = inc[:, :nf]
    batch = v_in.shape[0]
    voltages = np.zeros((batch, size))
    iterations = np.zeros(batch, dtype=np.int64)
    strategies: list[str] = []

    def cells(x_full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = inc @ x_full
        return device.current_and_conductance(v, g_cells, gate_cells)

    for bi in range(batch):
        fixed = np.concatenate([[0.0], v_in[bi]])
        if device.is_linear:
            jac = (l_ff + inc_f.T @ sp.diags(g_cells) @ inc_f).tocsc()
            rhs = -(l_fx @ fixed) - inc_f.T @ (g_cells * (inc_x @ fixed))
            voltages[bi, :nf] = fixed
            voltages[bi, nf:] = spla.splu(jac).solve(rhs) if n_free else 0.0
            strategies.append("linear")
            continue

        def residual(x_free: np.ndarray, scale: float, fixed: np.ndarray = fixed
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            x_full = np.concatenate([fixed * scale, x_free])
            i, d = cells(x_full)
            f = l_ff @ x_free + l_fx @ (fixed * scale) + inc_f.T @ i
            return f, i, d

        def newton(x0: np.ndarray, scale: float, cap: int, fixed: np.ndarray = fixed
                   ) -> tuple[np.ndarray, int, bool, float]:
            x = x0.copy()
            f, _, d = residual(x, scale)
            vmax = max(float(np.abs(fixed).max()) * scale, 1e-30)
            for it in range(1, cap + 1):
                jac = (l_ff + inc_f.T @ sp.diags(d) @ inc_f).tocsc()
                try:
                    dx = -spla.splu(jac).solve(f)
                except RuntimeError:  # singular Jacobian (cells overflowed to 0 or inf)
                    return x, it, False, float(np.abs(f).max())
                if not np.all(np.isfinite(dx)):
                    return x, it, False, float(np.abs(f).max())
                if np.abs(dx).max() <= NEWTON_TOL * vmax:
                    x = x + dx
                    f = residual(x, scale)[0]
                    return x, it, True, float(np.abs(f).max())
                with np.errstate(over="ignore", invalid="ignore"):
                    norm0 = float(np.linalg.norm(f))
                t = 1.0
                accepted = False
                for _ in range(60):  # backtracking line search, bounded
                    with np.errstate(over="ignore", invalid="ignore"):
                        f_new, _, d_new = residual(x + t * dx, scale)
                        fine = np.all(np.isfinite(f_new)) and np.all(np.isfinite(d_new))
                        if fine and (np.linalg.norm(f_new) <= norm0 * (1.0 + 1e-6)
                                     or t < 1e-3):
                            accepted = True
                            break
                    t *= 0.5
                if not accepted:  # every trial step overflowed: give up this strategy
                    return x, it, False, float(np.abs(f).max())
                x = x + t * dx
                f, d = f_new, d_new
            return x, cap, False, float(np.abs(f).max())

        if n_free == 0:  # every node is fixed: the cells see the sources directly
            voltages[bi, :nf] = fixed
            strategies.append("direct")
            continue
        # Start from the small-signal (linear) solution.
        _, d0 = device.current_and_conductance(np.zeros(m * n), g_cells, gate_cells)
        jac0 = (l_ff + inc_f.T @ sp.diags(d0) @ inc_f).tocsc()
        rhs0 = -(l_fx @ fixed) - inc_f.T @ (d0 * (inc_x @ fixed))
        x0 = spla.splu(jac0).solve(rhs0)
        x, its, ok, res = newton(x0, 1.0, max_iter)
        total = its
        strategy = "newton"
        if not ok:
            strategy = "source stepping"
            x = np.zeros(n_free)
            ok = True
            for scale in np.linspace(0.05, 1.0, 20):
                x, its, ok, res = newton(x, float(scale), max_iter)
                total += its
                if not ok:
                    break
        if not ok:
            raise ConvergenceError(
                f"reference Newton did not converge for input vector {bi}: damped Newton "
                f"and source stepping failed; last KCL residual {res:.3e} A",
                iterations=total, residual=res, tolerance=NEWTON_TOL)
        voltages[bi, :nf] = fixed
        voltages[bi, nf:] = x
        iterations[bi] = total
        strategies.append(strategy)
    row_v = voltages[:, idx[graph.row]]
    col_v = voltages[:, idx[graph.col]]
    v_cell = row_v - col_v
    i_cell = device.current_and_conductance(
        v_cell, crossbar.conductance, None if gates is None else gates[:, None])[0]
    col_i = i_cell.sum(axis=1)
    v_port = voltages[:, idx[graph.vground]]
    port = None
    if crossbar.tia is not None:
        port = -crossbar.tia.gain * v_port
    elif crossbar.sense_load is not None:
        port = v_port
    info = {
        "method": "SciPy SuperLU on the netlist graph of the variant topology"
                  + ("" if device.is_linear else ", damped Newton-Raphson"),
        "unknowns": n_free,
        "newton_iterations": int(iterations.max()),
        "strategy": sorted(set(strategies)),
        "seconds": time.perf_counter() - start,
    }
    if gates is not None:
        info["v_gate"] = gates.tolist()
    return BackendOutput(row_v, col_v, col_i, info, port_voltages=port)
