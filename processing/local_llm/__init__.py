"""The embedded local LLM: llama.cpp's `llama-server`, built at install from pinned sources, serving GGUF weights
that ship inside a pinned Python package. Nothing is downloaded at run time."""
