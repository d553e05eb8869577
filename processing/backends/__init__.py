"""Local backends (MiniLM embedder, faiss HNSW store, extractive generator) and the name -> constructor factory."""
