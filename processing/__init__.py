"""The RagOps pipeline: data preparation, chunking, ingestion, agentic retrieval + generation, evaluation."""
