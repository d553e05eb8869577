"""The five pipeline stages, one module each; `registry` lists them without importing them."""
