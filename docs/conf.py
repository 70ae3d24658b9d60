"""Sphinx configuration of the jwst_mbkg_plus documentation."""

project = "jwst_mbkg_plus"
author = "jwst_mbkg_plus developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_typehints = "none"
intersphinx_mapping = {}
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
default_role = "py:obj"
