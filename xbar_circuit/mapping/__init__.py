"""DNN weight mappings onto crossbars: bit slicing, tiling, MDM row reordering, NF, search.

Typical use::

    from xbar_circuit.mapping import MappingConfig, CircuitParams, map_layer, layer_nf
    layer = map_layer(W, MappingConfig.preset("mdm", tile_rows=64, tile_cols=64))
    report = layer_nf(layer, CircuitParams(r_row=1.0, r_col=1.0))
    y = layer_output(layer, x, CircuitParams(r_row=1.0, r_col=1.0))

See ``docs/mapping.md``. Importing this package does not import PyTorch,
safetensors or matplotlib.
"""

from __future__ import annotations

from .circuit import (
    IDEAL,
    CircuitParams,
    NFReport,
    effective_conductance,
    integer_output,
    layer_nf,
    layer_output,
    load_lut,
    tile_crossbar,
    tile_effective_conductance,
    tile_nf,
)
from .io import load_weights
from .layout import (
    COLUMN_ORDERS,
    PRESETS,
    ROW_ORDERS,
    MappedLayer,
    MappingConfig,
    Tile,
    layer_from_tiles,
    map_layer,
    row_scores,
)
from .quantize import (
    MappingError,
    QuantizedInputs,
    QuantizedWeights,
    conv2d_weight_matrix,
    im2col,
    quantize_inputs,
    quantize_weights,
)
from .search import SearchResult, search_layer, search_row_order
from .torch_module import as_torch_module

__all__ = [
    "COLUMN_ORDERS",
    "IDEAL",
    "PRESETS",
    "ROW_ORDERS",
    "CircuitParams",
    "MappedLayer",
    "MappingConfig",
    "MappingError",
    "NFReport",
    "QuantizedInputs",
    "QuantizedWeights",
    "SearchResult",
    "Tile",
    "as_torch_module",
    "conv2d_weight_matrix",
    "effective_conductance",
    "im2col",
    "integer_output",
    "layer_from_tiles",
    "layer_nf",
    "layer_output",
    "load_lut",
    "load_weights",
    "map_layer",
    "quantize_inputs",
    "quantize_weights",
    "row_scores",
    "search_layer",
    "search_row_order",
    "tile_crossbar",
    "tile_effective_conductance",
    "tile_nf",
]
