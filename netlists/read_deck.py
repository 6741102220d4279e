"""Read a user's SPICE deck and solve its DC operating point without ngspice.

:func:`read_deck` parses the subset of SPICE that describes a resistive network:

* elements ``R`` (resistor), ``V`` (DC voltage source), ``I`` (DC current source),
  ``E`` (voltage-controlled voltage source), ``C`` (open at DC), ``L`` (short at DC)
  and ``B`` current sources of the two-terminal form our own nonlinear decks use,
  ``I=<expression in V(n+,n-)>`` (``sinh``, ``cosh``, ``tanh``, ``exp``, ``log``,
  ``sqrt`` and arithmetic);
* values with SPICE suffixes (``1k``, ``2.5meg``, ``10u``, ``3mil``; trailing unit
  letters such as ``ohm`` or ``V`` are ignored), ``{expression}`` or
  ``'expression'`` values, and ``.param`` with plain arithmetic (``+ - * / ** ^``,
  parentheses, earlier parameters);
* ``.include`` / ``.inc`` (relative to the including file), ``+`` continuation lines,
  ``*`` comment lines and ``;`` / `` $ `` end-of-line comments, ``.option(s)``,
  ``.op``, ``.title`` and ``.end``. Names and nodes are case-insensitive (lower-cased),
  as in ngspice; ``0`` and ``gnd`` are ground.

:meth:`Netlist.operating_point` builds the modified nodal analysis (MNA) system with
SciPy sparse matrices and solves it with SuperLU (and iterative refinement), with
Newton's method when B sources are present. Before solving, the circuit's graph
(networkx) is checked: nodes without a DC path to ground, loops of voltage sources,
and elements it does not know are reported by name. Parse errors name the file, the
line and the token.

Currents follow ngspice's convention (``i(vname)``): the current flowing into the
source's ``+`` node, through the source, out of its ``-`` node, so a source that
delivers power shows a negative current.
"""

from __future__ import annotations

import ast
import dataclasses
import decimal
import itertools
import math
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from xbar_circuit.errors import ConvergenceError, InputError, XbarError

from .deck import KLU_OPTION, check_deck, check_deck_text, format_value

__all__ = [
    "DeckElement",
    "DeckParseError",
    "Netlist",
    "NetlistError",
    "OperatingPoint",
    "ngspice_operating_point",
    "parse_value",
    "read_deck",
]

GROUND_NAMES = frozenset({"0", "gnd"})
_SCALE = {"t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "mil": 25.4e-6, "m": 1e-3,
          "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}
_SCALE_EXACT = {key: decimal.Decimal(repr(value)) for key, value in _SCALE.items()}
_NUMBER = re.compile(
    r"([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)(meg|mil|[tgkmunpfµ])?([a-zµ]*)", re.IGNORECASE)
_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "exp": np.exp, "log": np.log,
    "ln": np.log, "sqrt": np.sqrt,
}
_MAX_INCLUDE_DEPTH = 20


class DeckParseError(InputError):
    """A deck cannot be read: the message names the file, the line and the token.

    Attributes
    ----------
    path : str
        The file.
    line : int
        1-based line number in that file (0 when the file itself cannot be read).
    token : str
        The offending token ('' when the whole line is at fault).
    """

    def __init__(self, message: str, path: str, line: int, token: str = "") -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}" + (f" (token {token!r})" if token else ""))
        self.path = path
        self.line = line
        self.token = token


class NetlistError(XbarError, ValueError):
    """A parsed netlist cannot be solved: floating nodes, voltage-source loops, unknown
    or unsupported elements, zero resistances. ``names`` lists the nodes or elements."""

    def __init__(self, message: str, names: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.names = list(names)


@dataclasses.dataclass(frozen=True)
class DeckElement:
    """One element of a parsed deck (names lower-case).

    Attributes
    ----------
    kind : str
        ``"r"``, ``"v"``, ``"i"``, ``"e"``, ``"c"``, ``"l"`` or ``"b"``.
    name : str
        Full element name, e.g. ``"rcell_0_0"``.
    nodes : tuple of str
        Terminals: ``(n+, n-)``, or ``(n+, n-, nc+, nc-)`` for ``E``.
    value : float
        Ohms (R), volts (V), amperes (I), gain (E); 0 for C, L and B.
    expression : str
        For ``B``: the current expression with parameters substituted, in the
        variable ``v`` = V(n+) − V(n−) (volts -> amperes).
    source : tuple of (str, int)
        File and line the element came from.
    """

    kind: str
    name: str
    nodes: tuple[str, ...]
    value: float = 0.0
    expression: str = ""
    source: tuple[str, int] = ("", 0)


@dataclasses.dataclass
class OperatingPoint:
    """DC operating point of a netlist.

    Attributes
    ----------
    voltages : dict of str to float
        Volts at every non-ground node, by lower-case node name.
    currents : dict of str to float
        Amperes through every voltage source (``V``, ``E``, and ``L`` as a 0 V short),
        by lower-case element name, in ngspice's sign convention: positive when current
        flows into the source's ``+`` node.
    iterations : int
        Newton iterations (0 for a linear network).
    residual : float
        Largest Kirchhoff current-law residual at any node, amperes.
    """

    voltages: dict[str, float]
    currents: dict[str, float]
    iterations: int = 0
    residual: float = 0.0


# ------------------------------------------------------------------- expressions
def parse_value(text: str, params: dict[str, float] | None = None, *,
                where: tuple[str, int] = ("<value>", 0)) -> float:
    """Evaluate a SPICE value: a number with an optional suffix, a parameter name, or
    an ``{expression}`` / ``'expression'``.

    Parameters
    ----------
    text : str
        E.g. ``"1k"``, ``"2.5meg"``, ``"10uF"``, ``"{2*rw+1}"``.
    params : dict, optional
        Parameters by lower-case name.
    where : (str, int)
        File and line, for the error message.

    Returns
    -------
    float

    Raises
    ------
    DeckParseError
        If the value cannot be evaluated.

    Examples
    --------
    >>> parse_value("2.5meg"), parse_value("10u"), parse_value("1kohm")
    (2500000.0, 1e-05, 1000.0)
    >>> parse_value("{2*r + 1k}", {"r": 50.0})
    1100.0
    """
    params = params or {}
    token = text.strip()
    try:
        return float(token)  # the common case: a plain number
    except ValueError:
        pass
    plain = _NUMBER.fullmatch(token)
    if plain is not None:
        return _scaled(plain)
    if token.lower() in params:
        return params[token.lower()]
    if token[:1] in "{'" and token[-1:] in "}'" and len(token) >= 2:
        token = token[1:-1]
    tree = _parse_expression(token, where, text)
    value = _evaluate(tree, params, where, text)
    if not isinstance(value, float) or not math.isfinite(value):
        raise DeckParseError(f"value is not a finite number: {value!r}", where[0], where[1],
                             text)
    return value


def _scaled(number: re.Match[str]) -> float:
    """The value of a matched SPICE number, scaled exactly (10u is 1e-05, not 10*1e-6)."""
    suffix = (number.group(2) or "").lower()
    if not suffix:
        return float(number.group(1))
    return float(decimal.Decimal(number.group(1)) * _SCALE_EXACT[suffix])


def _substitute_numbers(expression: str, where: tuple[str, int], token: str) -> str:
    """Replace SPICE numbers (with suffixes) by plain float literals; ^ by **."""
    out: list[str] = []
    pos = 0
    for match in re.finditer(r"(?<![A-Za-z_0-9.])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
                             r"(?:meg|mil|[tgkmunpfµ])?[A-Za-zµ]*", expression, re.IGNORECASE):
        out.append(expression[pos:match.start()])
        number = _NUMBER.fullmatch(match.group(0))
        if number is None:  # pragma: no cover - the pattern above is a subset
            raise DeckParseError("bad number", where[0], where[1], match.group(0))
        out.append(repr(_scaled(number)))
        pos = match.end()
    out.append(expression[pos:])
    return "".join(out).replace("^", "**")


_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call,
                  ast.Load, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)


def _parse_expression(expression: str, where: tuple[str, int], token: str) -> ast.Expression:
    # Inner {param} references group like parentheses.
    text = _substitute_numbers(expression, where, token).lower().replace("{", "(")
    text = text.replace("}", ")")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise DeckParseError("cannot parse the expression", where[0], where[1], token) from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise DeckParseError(f"unsupported syntax in expression ({type(node).__name__})",
                                 where[0], where[1], token)
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise DeckParseError("only numbers are allowed in expressions", where[0],
                                 where[1], token)
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.keywords):
            raise DeckParseError("unsupported call in expression", where[0], where[1], token)
    return tree


def _evaluate(tree: ast.AST, params: dict[str, float], where: tuple[str, int], token: str,
              variables: dict[str, Any] | None = None) -> Any:
    """Evaluate a checked expression tree (numbers, parameters, functions, arithmetic)."""
    variables = variables or {}

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise DeckParseError("only numbers are allowed in expressions", where[0],
                                     where[1], token)
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id in variables:
                return variables[node.id]
            if node.id in params:
                return params[node.id]
            raise DeckParseError(f"unknown parameter {node.id!r}", where[0], where[1], token)
        if isinstance(node, ast.UnaryOp):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            left, right = walk(node.left), walk(node.right)
            try:
                if isinstance(node.op, ast.Add):
                    return left + right
                if isinstance(node.op, ast.Sub):
                    return left - right
                if isinstance(node.op, ast.Mult):
                    return left * right
                if isinstance(node.op, ast.Div):
                    return left / right
                return left ** right
            except (ZeroDivisionError, OverflowError) as exc:
                raise DeckParseError(f"arithmetic error: {exc}", where[0], where[1],
                                     token) from None
        if isinstance(node, ast.Call):
            name = node.func.id  # type: ignore[attr-defined]
            if name not in _FUNCTIONS or len(node.args) != 1:
                raise DeckParseError(f"unknown function {name!r} (known: "
                                     f"{', '.join(sorted(_FUNCTIONS))})", where[0], where[1],
                                     token)
            with np.errstate(all="ignore"):
                result = _FUNCTIONS[name](walk(node.args[0]))
            return float(result) if isinstance(result, np.floating) else result
        raise DeckParseError("unsupported expression", where[0], where[1], token)

    return walk(tree)


# ------------------------------------------------------------------------ lexing
@dataclasses.dataclass
class _Line:
    text: str
    path: str
    number: int


def _strip_comment(text: str) -> str:
    if ";" not in text and "$" not in text:
        return text
    depth = 0
    quoted = False
    for k, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif not quoted and depth == 0:
            if char == ";" or (char == "$" and (k == 0 or text[k - 1] in " \t")):
                return text[:k]
    return text


def _tokens(text: str, where: tuple[str, int]) -> list[str]:
    """Split a logical line at blanks, keeping {...} and '...' together; '=' binds."""
    if not any(c in text for c in "{'=,"):
        return text.split()
    text = re.sub(r"\s*=\s*", "=", text)
    tokens: list[str] = []
    current = ""
    depth = 0
    quoted = False
    for char in text:
        if char == "'" and depth == 0:
            quoted = not quoted
        elif char == "{" and not quoted:
            depth += 1
        elif char == "}" and not quoted:
            depth -= 1
            if depth < 0:
                raise DeckParseError("unbalanced '}'", where[0], where[1], text.strip())
        if char in " \t," and depth == 0 and not quoted and "(" not in current:
            if current:
                tokens.append(current)
            current = ""
            continue
        current += char
    if depth or quoted:
        raise DeckParseError("unbalanced braces or quotes", where[0], where[1], text.strip())
    if current:
        tokens.append(current)
    return tokens


def _read_lines(path: Path, stack: tuple[Path, ...], first_is_title: bool) -> list[_Line]:
    shown = str(path)
    if len(stack) > _MAX_INCLUDE_DEPTH:
        raise DeckParseError(f".include nested deeper than {_MAX_INCLUDE_DEPTH}", shown, 0)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DeckParseError(f"cannot read the deck: {exc.strerror or exc}", shown, 0) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeckParseError(f"not UTF-8 text (byte {exc.start})", shown, 0) from None
    physical = text.replace("\r\n", "\n").split("\n")
    lines: list[_Line] = []
    for number, line in enumerate(physical, 1):
        line = line.replace("\t", " ")  # tabs separate fields; other controls are refused
        try:
            check_deck_text(line, "a deck line")
        except InputError as exc:
            raise DeckParseError(str(exc), shown, number, line[:40]) from None
        if first_is_title and number == 1:
            lines.append(_Line(".title " + line, shown, number))
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("*"):
            continue
        stripped = _strip_comment(stripped).strip()
        if not stripped:
            continue
        if stripped.startswith("+"):
            if not lines or lines[-1].text.startswith(".title "):
                raise DeckParseError("continuation line '+' with nothing to continue", shown,
                                     number, "+")
            lines[-1].text += " " + stripped[1:].strip()
            continue
        lines.append(_Line(stripped, shown, number))
    return lines


# ----------------------------------------------------------------------- netlist
class Netlist:
    """A parsed deck: elements, parameters and title (see :func:`read_deck`).

    Attributes
    ----------
    title : str
        The deck's first line.
    elements : list of DeckElement
        In deck order.
    params : dict of str to float
        ``.param`` values by lower-case name.
    path : str
        The file read.
    """

    def __init__(self, title: str, elements: list[DeckElement], params: dict[str, float],
                 path: str) -> None:
        self.title = title
        self.elements = elements
        self.params = params
        self.path = path
        self._by_name = {e.name: e for e in elements}

    def __repr__(self) -> str:
        return (f"Netlist({self.path!r}: {len(self.elements)} elements, "
                f"{len(self.nodes)} nodes)")

    def __getitem__(self, name: str) -> DeckElement:
        return self._by_name[name.lower()]

    @property
    def nodes(self) -> list[str]:
        """Every non-ground node, in order of first appearance."""
        seen: dict[str, None] = {}
        for element in self.elements:
            for node in element.nodes:
                if node not in GROUND_NAMES:
                    seen.setdefault(node, None)
        return list(seen)

    @property
    def is_linear(self) -> bool:
        """Whether the netlist has no B source."""
        return not any(e.kind == "b" for e in self.elements)

    # ------------------------------------------------------------------ graph
    def graph(self) -> Any:
        """The circuit as a ``networkx.MultiGraph``: one edge per two-terminal branch.

        Nodes are node names, with ground as ``"0"``; each edge carries ``name`` and
        ``kind``. ``E`` sources give their output branch; capacitors are left out (open
        at DC); current sources are edges with ``kind == "i"``.
        """
        nx = _networkx()

        graph = nx.MultiGraph()
        graph.add_node("0")
        for element in self.elements:
            if element.kind == "c":
                graph.add_nodes_from(_ground(n) for n in element.nodes)
                continue
            a, b = (_ground(n) for n in element.nodes[:2])
            graph.add_edge(a, b, name=element.name, kind=element.kind)
            for node in element.nodes[2:]:
                graph.add_node(_ground(node))
        return graph

    def check(self) -> None:
        """Raise :class:`NetlistError` for what would make the MNA matrix singular.

        * nodes with no DC path to ground through R, V, E, L or B branches (current
          sources and capacitors do not count), e.g. a node reached only by a current
          source, or the far side of a capacitor;
        * loops made only of voltage sources (V, E outputs, L shorts);
        * zero resistances.
        """
        nx = _networkx()

        zero = [e.name for e in self.elements if e.kind == "r" and e.value == 0.0]
        if zero:
            raise NetlistError(f"zero resistance in {', '.join(zero[:10])}: SPICE cannot "
                               "stamp 0 ohm (use a 0 V source for a short)", zero)
        # A plain Graph from an edge list: building the attributed MultiGraph of
        # graph() costs ten times more on a 256x256 crossbar deck.
        conducting = nx.Graph()
        conducting.add_node("0")
        conducting.add_nodes_from(self.nodes)
        conducting.add_edges_from(
            (_ground(e.nodes[0]), _ground(e.nodes[1])) for e in self.elements
            if e.kind not in ("i", "c"))
        grounded = nx.node_connected_component(conducting, "0")
        floating = sorted(n for n in conducting.nodes if n not in grounded)
        if floating:
            raise NetlistError(
                f"{len(floating)} floating node(s) with no DC path to ground: "
                f"{', '.join(floating[:20])}" + (" ..." if len(floating) > 20 else ""),
                floating)
        forest = nx.Graph()
        joined = nx.utils.UnionFind()
        for element in self.elements:
            if element.kind not in ("v", "e", "l"):
                continue
            a, b = (_ground(n) for n in element.nodes[:2])
            if a == b:
                raise NetlistError(f"voltage source {element.name} has both terminals on "
                                   f"node {a}: a loop by itself", [element.name])
            if joined[a] == joined[b]:
                path = nx.shortest_path(forest, a, b)
                loop = [forest.edges[u, v]["name"] for u, v in itertools.pairwise(path)]
                names = [*loop, element.name]
                raise NetlistError(f"loop of voltage sources: {' -> '.join(names)} (their "
                                   "voltages fix the same node twice)", names)
            forest.add_edge(a, b, name=element.name)
            joined.union(a, b)

    # ------------------------------------------------------------------ solve
    def operating_point(self, *, rtol: float = 1e-12, max_iter: int = 100) -> OperatingPoint:
        """Solve the DC operating point (modified nodal analysis, SciPy sparse LU).

        Parameters
        ----------
        rtol : float
            Newton stops when every node voltage moved by less than
            ``rtol · max|V| + 1e-15`` volts (nonlinear netlists only).
        max_iter : int
            Newton iteration limit.

        Returns
        -------
        OperatingPoint

        Raises
        ------
        NetlistError
            For floating nodes, voltage-source loops, zero resistances or a singular
            system.
        ConvergenceError
            If Newton does not converge within ``max_iter`` iterations.
        """
        self.check()
        return _solve(self, rtol, max_iter)

    # ------------------------------------------------------------------ deck
    def to_deck(self, *, klu: bool = False) -> str:
        """Write the netlist back as a plain deck (parameters resolved, full precision).

        This is the text ``xbar solve DECK --compare ngspice`` gives ngspice: only the
        elements read, never a user's control lines. Nonlinear netlists get
        tolerances derived from their voltage and current scale, as our own decks do.
        """
        lines = [check_deck_text(self.title, "the deck title") or "netlist"]
        for e in self.elements:
            kind = e.name[0].upper() + e.name[1:]
            nodes = " ".join(e.nodes)
            if e.kind in ("r", "e"):
                lines.append(f"{kind} {nodes} {format_value(e.value)}")
            elif e.kind in ("v", "i"):
                lines.append(f"{kind} {nodes} DC {format_value(e.value)}")
            elif e.kind == "c":
                lines.append(f"{kind} {nodes} 1e-12")
            elif e.kind == "l":
                lines.append(f"{kind} {nodes} 1e-9")
            else:
                text = re.sub(r"\bv\b", f"V({e.nodes[0]},{e.nodes[1]})", e.expression)
                lines.append(f"{kind} {nodes} I={text}")
        if not self.is_linear:
            v_scale = max([abs(e.value) for e in self.elements if e.kind == "v"] + [1e-3])
            currents = [abs(_b_current(e, v_scale)) for e in self.elements if e.kind == "b"]
            i_scale = max(currents) * math.sqrt(len(currents)) if currents else 1e-3
            lines.append(f".options reltol=1e-12 abstol={max(1e-12 * i_scale, 1e-18):.3g} "
                         f"vntol={1e-12 * v_scale:.3g} gmin=1e-20 itl1=500")
        if klu:
            lines.append(KLU_OPTION)
        lines += [".op", ".end", ""]
        return check_deck("\n".join(lines), "the rewritten deck")


def _networkx() -> Any:
    from xbar_circuit._optional import import_optional

    return import_optional("networkx", "read_deck's circuit graph")


def _ground(node: str) -> str:
    return "0" if node in GROUND_NAMES else node


def _b_current(element: DeckElement, v: Any) -> Any:
    tree = ast.parse(element.expression, mode="eval")
    return _evaluate(tree, {}, element.source, element.expression, {"v": v})


# ----------------------------------------------------------------------- parsing
def read_deck(path: str | os.PathLike[str]) -> Netlist:
    """Read a SPICE deck of R, V, I, E, C, L elements and two-terminal B sources.

    Parameters
    ----------
    path : str or path-like
        The deck file (UTF-8). Its first line is the title, as in SPICE.

    Returns
    -------
    Netlist
        Call :meth:`Netlist.operating_point` for node voltages and source currents.

    Raises
    ------
    DeckParseError
        For anything that cannot be read, naming the file, line and token.
    NetlistError
        For elements it does not support (listed by name, e.g. ``M1, D3``).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> deck = pathlib.Path(tempfile.mkdtemp()) / "divider.cir"
    >>> _ = deck.write_text("divider\\n.param r=1k\\nV1 in 0 DC 1\\nR1 in out {r}\\n"
    ...                     "R2 out 0 {3*r}\\n.op\\n.end\\n")
    >>> op = read_deck(deck).operating_point()
    >>> round(op.voltages["out"], 12), round(op.currents["v1"], 12)
    (0.75, -0.00025)
    """
    path = Path(os.fspath(path))
    lines = _expand(path, (), first_is_title=True)
    title = ""
    params: dict[str, float] = {}
    elements: list[DeckElement] = []
    unknown: list[str] = []
    seen: dict[str, tuple[str, int]] = {}
    for line in lines:
        where = (line.path, line.number)
        if line.text.startswith(".title "):
            title = line.text[len(".title "):].strip()
            continue
        lowered = line.text.lower()
        if lowered.startswith("."):
            directive = lowered.split()[0]
            if directive == ".end":
                break
            if directive == ".param":
                for token in _tokens(line.text[len(".param"):], where):
                    key, sep, value = token.partition("=")
                    if not sep or not re.fullmatch(r"[a-z_][a-z0-9_]*", key.lower()):
                        raise DeckParseError("expected name=value in .param", *where, token)
                    params[key.lower()] = parse_value(value, params, where=where)
                continue
            if directive in (".op", ".options", ".option", ".opt", ".title"):
                continue
            if directive == ".model":
                # Models belong to elements read_deck does not simulate (M, D, Q...),
                # which are reported by name below.
                continue
            raise DeckParseError(f"unsupported directive {directive} (read_deck reads "
                                 ".param, .include, .options, .op, .title and .end)",
                                 *where, directive)
        tokens = _tokens(line.text, where)
        name = tokens[0].lower()
        if name in seen:
            raise DeckParseError(f"element {name} is defined twice (first at "
                                 f"{seen[name][0]}:{seen[name][1]})", *where, tokens[0])
        seen[name] = where
        kind = name[0]
        if kind not in "rviecl" + "b":
            unknown.append(name)
            continue
        elements.append(_element(kind, name, tokens, line.text, params, where))
    if unknown:
        raise NetlistError(
            f"{path}: {len(unknown)} element(s) read_deck cannot simulate: "
            f"{', '.join(unknown[:20])}" + (" ..." if len(unknown) > 20 else "")
            + " (supported: R, V, I, E, C, L and B current sources of one voltage)", unknown)
    if not elements:
        raise DeckParseError("the deck has no elements", str(path), 0)
    return Netlist(title, elements, params, str(path))


def _expand(path: Path, stack: tuple[Path, ...], first_is_title: bool) -> list[_Line]:
    resolved = path.resolve()
    if resolved in stack:
        raise DeckParseError(".include cycle: " + " -> ".join(str(p) for p in
                                                                  (*stack, resolved)),
                             str(path), 0)
    out: list[_Line] = []
    for line in _read_lines(path, stack, first_is_title):
        lowered = line.text.lower()
        if lowered.startswith((".include", ".inc ")) and not line.text.startswith(".title "):
            parts = line.text.split(None, 1)
            if len(parts) != 2:
                raise DeckParseError(".include needs a file name", line.path, line.number)
            target = parts[1].strip().strip("'\"")
            include = Path(target) if os.path.isabs(target) else path.parent / target
            if not include.exists():
                raise DeckParseError(f".include file not found: {include}", line.path,
                                     line.number, target)
            out.extend(_expand(include, (*stack, resolved), first_is_title=False))
            continue
        out.append(line)
    return out


def _element(kind: str, name: str, tokens: list[str], text: str, params: dict[str, float],
             where: tuple[str, int]) -> DeckElement:
    n_nodes = 4 if kind == "e" else 2
    if len(tokens) < n_nodes + 1 and kind != "v" and kind != "i":
        raise DeckParseError(f"{name} needs {n_nodes} nodes and a value", *where, tokens[0])
    if len(tokens) < 3:
        raise DeckParseError(f"{name} needs two nodes", *where, tokens[0])
    nodes = tuple(t.lower() for t in tokens[1:1 + n_nodes])
    for node in nodes:
        if not re.fullmatch(r"[a-z0-9_#.:\[\]<>+-]+", node) or "=" in node:
            raise DeckParseError(f"bad node name in {name}", *where, node)
    rest = tokens[1 + n_nodes:]
    if kind == "b":
        match = re.search(r"\bi\s*=\s*(.+)$", text, re.IGNORECASE)
        if match is None:
            raise DeckParseError(f"{name}: read_deck reads B current sources I=... only",
                                 *where, " ".join(rest)[:40])
        return DeckElement("b", name, nodes, 0.0, _b_expression(match.group(1), nodes, params,
                                                               where), where)
    if kind in ("v", "i"):
        value_tokens = [t for t in rest]
        if value_tokens and value_tokens[0].lower() == "dc":
            value_tokens = value_tokens[1:]
        elif value_tokens and value_tokens[0].lower().startswith("dc="):
            value_tokens = [value_tokens[0][3:], *value_tokens[1:]]
        value = 0.0
        if value_tokens and value_tokens[0].lower() not in ("ac",):
            value = parse_value(value_tokens[0], params, where=where)
            value_tokens = value_tokens[1:]
        if value_tokens and value_tokens[0].lower() == "ac":
            value_tokens = value_tokens[1:]
            # AC magnitude and phase do not enter a DC operating point.
            while value_tokens and _is_number(value_tokens[0], params):
                value_tokens = value_tokens[1:]
        if value_tokens:
            raise DeckParseError(f"{name}: only DC (and AC) source values are read",
                                 *where, value_tokens[0])
        return DeckElement(kind, name, nodes, value, "", where)
    if not rest:
        raise DeckParseError(f"{name} has no value", *where, tokens[0])
    value_token = rest[0]
    if kind == "r" and value_token.lower().startswith("r="):
        value_token = value_token[2:]
    if kind == "e" and value_token.lower().startswith("gain="):
        value_token = value_token[5:]
    value = parse_value(value_token, params, where=where)
    for extra in rest[1:]:
        raise DeckParseError(f"{name}: unexpected token after the value", *where, extra)
    if kind == "r" and value < 0:
        raise DeckParseError(f"{name}: negative resistance", *where, rest[0])
    return DeckElement(kind, name, nodes, value if kind in ("r", "e") else 0.0, "", where)


def _is_number(token: str, params: dict[str, float]) -> bool:
    try:
        parse_value(token, params)
    except DeckParseError:
        return False
    return True


def _b_expression(text: str, nodes: tuple[str, ...], params: dict[str, float],
                  where: tuple[str, int]) -> str:
    """Rewrite a B source's current expression in the variable ``v`` = V(n+, n-)."""
    expression = text.strip()
    if expression[:1] in "{'" and expression[-1:] in "}'":
        expression = expression[1:-1]
    a, b = nodes

    def replace(match: re.Match[str]) -> str:
        args = [x.strip().lower() for x in match.group(1).split(",")]
        args = [_ground(x) for x in args]
        if len(args) == 1:
            args.append("0")
        if args == [_ground(a), _ground(b)]:
            return "(v)"
        if args == [_ground(b), _ground(a)]:
            return "(-v)"
        raise DeckParseError("a B source may only depend on the voltage across its own "
                             f"terminals V({a},{b})", *where, match.group(0))

    expression = re.sub(r"\bv\s*\(([^()]*)\)", replace, expression, flags=re.IGNORECASE)
    if re.search(r"\b[iv]\s*\(", expression, re.IGNORECASE):
        raise DeckParseError("unsupported reference in a B-source expression", *where,
                             expression[:40])
    tree = _parse_expression(expression, where, text)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    if names <= {"v", *_FUNCTIONS} and "{" not in expression:
        # No parameters to resolve (our own decks): the checked text is the expression.
        return _substitute_numbers(expression, where, text).lower()
    # Resolve parameters now; keep only numbers, functions and v.
    rewritten = ast.unparse(_resolve(tree, params, where, text))
    _evaluate(ast.parse(rewritten, mode="eval"), {}, where, text, {"v": 0.0})
    return rewritten


def _resolve(tree: ast.Expression, params: dict[str, float], where: tuple[str, int],
             token: str) -> ast.Expression:
    class Resolver(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id == "v" or node.id in _FUNCTIONS:
                return node
            if node.id in params:
                return ast.copy_location(ast.Constant(params[node.id]), node)
            raise DeckParseError(f"unknown parameter {node.id!r}", where[0], where[1], token)

    return ast.fix_missing_locations(Resolver().visit(tree))


# ----------------------------------------------------------------------- solving
def _solve(netlist: Netlist, rtol: float, max_iter: int) -> OperatingPoint:
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    nodes = netlist.nodes
    index = {node: k for k, node in enumerate(nodes)}
    n = len(nodes)
    branches = [e for e in netlist.elements if e.kind in ("v", "e", "l")]
    n_unknowns = n + len(branches)
    rhs = np.zeros(n_unknowns)
    ground = n_unknowns  # a scratch row/column for ground, dropped before solving

    def idx(node: str) -> int | None:
        return None if node in GROUND_NAMES else index[node]

    def gidx(node: str) -> int:
        return ground if node in GROUND_NAMES else index[node]

    resistors = [e for e in netlist.elements if e.kind == "r"]
    ra = np.array([gidx(e.nodes[0]) for e in resistors], dtype=np.int64)
    rb = np.array([gidx(e.nodes[1]) for e in resistors], dtype=np.int64)
    rg = np.array([1.0 / e.value for e in resistors])
    rows_parts = [ra, rb, ra, rb]
    cols_parts = [ra, rb, rb, ra]
    vals_parts = [rg, rg, -rg, -rg]
    for e in netlist.elements:
        if e.kind == "i":
            a, b = idx(e.nodes[0]), idx(e.nodes[1])
            # Current flows from n+ through the source to n-: it leaves node n+.
            if a is not None:
                rhs[a] -= e.value
            if b is not None:
                rhs[b] += e.value
    br_rows: list[int] = []
    br_cols: list[int] = []
    br_vals: list[float] = []
    for k, e in enumerate(branches):
        row = n + k
        a, b = gidx(e.nodes[0]), gidx(e.nodes[1])
        # Branch current enters the source at n+ (ngspice's sign): it leaves node n+.
        br_rows += [a, b, row, row]
        br_cols += [row, row, a, b]
        br_vals += [1.0, -1.0, 1.0, -1.0]
        if e.kind == "v":
            rhs[row] = e.value
        elif e.kind == "e":
            c, d = gidx(e.nodes[2]), gidx(e.nodes[3])
            br_rows += [row, row]
            br_cols += [c, d]
            br_vals += [-e.value, e.value]
    rows = np.concatenate([*rows_parts, np.array(br_rows, dtype=np.int64)])
    cols = np.concatenate([*cols_parts, np.array(br_cols, dtype=np.int64)])
    vals = np.concatenate([*vals_parts, np.array(br_vals, dtype=np.float64)])
    keep = (rows != ground) & (cols != ground)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    linear = sp.csc_matrix((vals, (rows, cols)), shape=(n_unknowns, n_unknowns))
    linear.sum_duplicates()
    b_elements = [e for e in netlist.elements if e.kind == "b"]
    b_pos = np.array([-1 if idx(e.nodes[0]) is None else idx(e.nodes[0])
                      for e in b_elements], dtype=np.int64)
    b_neg = np.array([-1 if idx(e.nodes[1]) is None else idx(e.nodes[1])
                      for e in b_elements], dtype=np.int64)
    b_funcs = [compile(e.expression, e.name, "eval") for e in b_elements]
    namespace = {name: func for name, func in _FUNCTIONS.items()}

    def branch_voltage(x: np.ndarray) -> np.ndarray:
        vp = np.where(b_pos >= 0, x[np.maximum(b_pos, 0)], 0.0)
        vn = np.where(b_neg >= 0, x[np.maximum(b_neg, 0)], 0.0)
        return vp - vn

    def nonlinear(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Current and its derivative of every B source (complex-step derivative)."""
        v = branch_voltage(x)
        h = 1e-30
        i = np.empty(len(b_elements))
        di = np.empty(len(b_elements))
        with np.errstate(all="ignore"):
            for k, code in enumerate(b_funcs):
                # The code is the unparsed form of a checked tree: numbers, v,
                # the functions above and arithmetic only.
                value = complex(eval(code, {"__builtins__": {}},
                                     {**namespace, "v": complex(v[k], h)}))
                i[k] = value.real
                di[k] = value.imag / h
        return i, di

    def assemble(x: np.ndarray) -> tuple[Any, np.ndarray]:
        """Jacobian and KCL residual F(x) = A x - rhs + f(x)."""
        residual = linear @ x - rhs
        if not b_elements:
            return linear, residual
        i, di = nonlinear(x)
        rr: list[int] = []
        cc: list[int] = []
        vv: list[float] = []
        for k in range(len(b_elements)):
            a, b = int(b_pos[k]), int(b_neg[k])
            if a >= 0:
                residual[a] += i[k]
            if b >= 0:
                residual[b] -= i[k]
            for r, sr in ((a, 1.0), (b, -1.0)):
                for c, sc in ((a, 1.0), (b, -1.0)):
                    if r >= 0 and c >= 0:
                        rr.append(r)
                        cc.append(c)
                        vv.append(sr * sc * di[k])
        jac = linear + sp.csc_matrix((vv, (rr, cc)), shape=linear.shape)
        return jac, residual

    def factor(matrix: Any) -> Any:
        try:
            return spla.splu(sp.csc_matrix(matrix))
        except RuntimeError as exc:
            raise NetlistError(f"{netlist.path}: the circuit's matrix is singular ({exc})") \
                from None

    x = np.zeros(n_unknowns)
    iterations = 0
    if not b_elements:
        lu = factor(linear)
        x = lu.solve(rhs)
        for _ in range(3):  # iterative refinement: crossbar matrices are ill-conditioned
            correction = lu.solve(rhs - linear @ x)
            x += correction
            if np.max(np.abs(correction[:n]), initial=0.0) <= 1e-16 * max(
                    np.max(np.abs(x[:n]), initial=0.0), 1e-300):
                break
    else:
        v_scale = max([abs(e.value) for e in netlist.elements if e.kind == "v"] + [1e-3])
        converged = False
        step_norm = math.inf
        previous = math.inf
        for iterations in range(1, max_iter + 1):  # noqa: B007 - reported below
            jac, residual = assemble(x)
            step = factor(jac).solve(-residual)
            # Damping: no node moves by more than the largest source voltage per step.
            largest = float(np.max(np.abs(step[:n]), initial=0.0))
            if largest > v_scale:
                step *= v_scale / largest
            x += step
            step_norm = float(np.max(np.abs(step[:n]), initial=0.0))
            scale = max(float(np.max(np.abs(x[:n]), initial=0.0)), 1e-3)
            if largest <= v_scale and (
                    step_norm <= rtol * scale + 1e-15
                    # Rounding floor of an ill-conditioned matrix: the step stopped
                    # shrinking at a level far below any tolerance a user checks.
                    or (step_norm <= 1e-9 * scale and step_norm >= 0.5 * previous)):
                converged = True
                break
            previous = step_norm
        if not converged:
            raise ConvergenceError(
                f"{netlist.path}: Newton did not converge in {max_iter} iterations (last "
                f"step {step_norm:.3g} V)", iterations, step_norm, rtol)
    if not np.all(np.isfinite(x)):
        raise NetlistError(f"{netlist.path}: the solution is not finite (singular circuit?)")
    _, residual = assemble(x)
    kcl = float(np.max(np.abs(residual[:n]), initial=0.0))
    voltages = {node: float(x[k]) for k, node in enumerate(nodes)}
    currents = {e.name: float(x[n + k]) for k, e in enumerate(branches)}
    return OperatingPoint(voltages, currents, iterations, kcl)


def ngspice_operating_point(netlist: Netlist, *, mode: str = "auto",
                            timeout: float | None = None) -> OperatingPoint:
    """Run a parsed netlist through ngspice and return its operating point.

    ngspice gets :meth:`Netlist.to_deck` (the elements read, parameters resolved, with
    KLU when the installed ngspice has it), never the user's file itself: lines
    read_deck does not understand, such as ``.control`` blocks, never reach ngspice.

    Parameters
    ----------
    netlist : Netlist
        From :func:`read_deck`.
    mode : {"auto", "subprocess", "shared"}
        How to run ngspice (:func:`xbar_circuit.netlists.run_deck`).
    timeout : float, optional
        Seconds allowed for the run.

    Returns
    -------
    OperatingPoint
        Node voltages and source currents as ngspice reports them (same names and
        sign convention as :meth:`Netlist.operating_point`).
    """
    from .runner import capabilities, run_deck

    caps = capabilities(mode)
    result = run_deck(netlist.to_deck(klu=caps.klu), mode=mode, timeout=timeout)
    voltages = {k[2:-1]: v for k, v in result.values.items() if k.startswith("v(")}
    currents = {k[2:-1]: v for k, v in result.values.items() if k.startswith("i(")}
    return OperatingPoint(voltages, currents)
