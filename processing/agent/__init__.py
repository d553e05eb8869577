"""The LangGraph agent: retrieve -> grade -> generate, abstaining when nothing relevant was retrieved."""
