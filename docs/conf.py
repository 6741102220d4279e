"""Sphinx configuration of the xbar-circuit documentation (``make docs``).

The guides are the Markdown files of this folder (MyST), the API reference comes from the
numpydoc docstrings, and the tutorial notebook is executed on every build.
"""

from __future__ import annotations

import xbar_circuit

project = "xbar-circuit"
author = "xbar-circuit developers"
copyright = "xbar-circuit developers"
release = version = xbar_circuit.__version__

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "figures/README*"]

# Guides link each other by file name (``[models.md](models.md)``) and to headings.
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# The tutorial runs on every build; a failing cell fails the build.
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_merge_streams = True

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"  # numpydoc sections carry the types, with units
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"xbar-circuit {release}"
html_static_path: list[str] = []
