"""Every backend against the closed forms of docs/convention.md §3.

One word line: N cells of conductance g to an ideal ground, segment r, ideal driver,
one segment before the first cell. Cell k = 1..N sees
``V_k = V_in cosh((N + 1/2 - k) θ) / cosh((N + 1/2) θ)`` with ``cosh θ = 1 + r g / 2``.
One bit line into an ideal virtual ground is the mirror case, with k counted from
the sense amplifier.
"""

from __future__ import annotations

import numpy as np
import pytest

from xbar_circuit import Crossbar, solve

RTOL = 1e-10


def closed_form_ratio(n_cells: int, r: float, g: float) -> np.ndarray:
    """V_k / V_in for k = 1..n_cells along a uniformly loaded line.

    ``θ = 2 asinh(sqrt(r g) / 2)`` is the same as ``arccosh(1 + r g / 2)`` without the
    cancellation of ``1 + x`` for small ``r g``.
    """
    theta = 2.0 * np.arcsinh(np.sqrt(r * g) / 2.0)
    k = np.arange(1, n_cells + 1)
    return np.cosh((n_cells + 0.5 - k) * theta) / np.cosh((n_cells + 0.5) * theta)


@pytest.mark.parametrize(("n_cells", "r", "g"), [(1, 2.0, 1e-3), (16, 1.0, 1e-4),
                                                  (64, 0.5, 2e-5), (200, 10.0, 1e-3)])
def test_one_word_line(backend: str, n_cells: int, r: float, g: float) -> None:
    v_in = 0.3
    xbar = Crossbar(np.full((1, n_cells), g), r_row=r, r_col=0.0)
    sol = solve(xbar, [v_in], backend=backend)
    expected_cell = v_in * closed_form_ratio(n_cells, r, g)
    np.testing.assert_allclose(sol.cell_voltages[0], expected_cell, rtol=RTOL, atol=0)
    np.testing.assert_allclose(sol.row_voltages[0], expected_cell, rtol=RTOL, atol=0)
    # Each column has no wire resistance: its current is g times its cell voltage.
    np.testing.assert_allclose(sol.column_currents, g * expected_cell, rtol=RTOL, atol=0)


@pytest.mark.parametrize(("n_cells", "r", "g"), [(1, 2.0, 1e-3), (16, 1.0, 1e-4),
                                                  (64, 0.5, 2e-5), (200, 10.0, 1e-3)])
def test_one_bit_line(backend: str, n_cells: int, r: float, g: float) -> None:
    v_in = 0.2
    xbar = Crossbar(np.full((n_cells, 1), g), r_row=0.0, r_col=r)
    sol = solve(xbar, np.full(n_cells, v_in), backend=backend)
    # k = 1 is the cell nearest the sense amplifier, i.e. row M-1.
    ratio = closed_form_ratio(n_cells, r, g)[::-1]
    expected_column_node = v_in * (1.0 - ratio)
    expected_cell = v_in * ratio
    # A cell voltage here is V_in minus a column-node voltage close to V_in far from
    # the sense amplifier: it carries the absolute rounding of that difference.
    np.testing.assert_allclose(sol.cell_voltages[:, 0], expected_cell, rtol=RTOL,
                               atol=v_in * 1e-14)
    np.testing.assert_allclose(sol.column_voltages[:, 0], expected_column_node, rtol=1e-9,
                               atol=v_in * 1e-13)
    np.testing.assert_allclose(sol.column_currents[0], g * expected_cell.sum(), rtol=RTOL)


@pytest.mark.parametrize(("m", "n"), [(8, 8), (32, 16)])
def test_first_order_nf_of_a_uniform_array(m: int, n: int) -> None:
    """For small loss, NF ≈ r_row g (N+1)(2N+1)/6 + r_col g (M+1)(2M+1)/6 (equal inputs).

    With r g N² ≈ 1e-4 the neglected second-order term is ~1e-4 of the first, so a
    relative tolerance of 1e-3 separates the formula from, e.g., a missing first
    segment (which changes NF by ~3/N).
    """
    g = 1e-6
    r_row, r_col = 0.1, 0.05
    xbar = Crossbar(np.full((m, n), g), r_row=r_row, r_col=r_col)
    sol = solve(xbar, np.full(m, 0.1), backend="nodal")
    first_order = r_row * g * (n + 1) * (2 * n + 1) / 6 + r_col * g * (m + 1) * (2 * m + 1) / 6
    assert sol.nf == pytest.approx(first_order, rel=1e-3)
