"""The LangGraph agent: retrieve -> grade -> generate -> assess confidence, retrying or abstaining when unsure."""
