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
    METRICS,
    Calibration,
    CircuitParams,
    LUTRangeWarning,
    MappingCircuit,
    NFReport,
    as_circuit,
    calibrate_layer,
    effective_conductance,
    effective_weights,
    integer_output,
    layer_metrics,
    layer_nf,
    layer_output,
    load_lut,
    lut_tile_nf,
    output_error,
    tile_crossbar,
    tile_currents,
    tile_effective_conductance,
    tile_nf,
)
from .compensation import compensate_layer, compensation_summary
from .io import OrientationError, load_weights
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
from .readout import Periphery, TileCalibration, adc_quantize, fit_column_gain
from .search import (
    OBJECTIVES,
    SearchResult,
    search_layer,
    search_row_order,
    search_tile,
    tile_objective,
)
from .torch_lut import (
    LUT_MODELS,
    convert_to_lut,
    lut_conv2d,
    lut_effective_terms,
    lut_linear,
    lut_tile_loss,
)
from .torch_module import (
    analog_conv2d,
    analog_linear,
    as_torch_module,
    calibrate_model,
    convert_to_analog,
)

__all__ = [
    "COLUMN_ORDERS",
    "IDEAL",
    "METRICS",
    "OBJECTIVES",
    "Calibration",
    "LUTRangeWarning",
    "MappingCircuit",
    "Periphery",
    "TileCalibration",
    "adc_quantize",
    "as_circuit",
    "calibrate_layer",
    "compensate_layer",
    "compensation_summary",
    "effective_weights",
    "fit_column_gain",
    "layer_metrics",
    "lut_tile_nf",
    "output_error",
    "tile_currents",
    "search_tile",
    "tile_objective",
    "OrientationError",
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
    "analog_conv2d",
    "analog_linear",
    "calibrate_model",
    "convert_to_analog",
    "convert_to_lut",
    "LUT_MODELS",
    "lut_conv2d",
    "lut_effective_terms",
    "lut_linear",
    "lut_tile_loss",
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
