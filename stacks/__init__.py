"""CDK stacks of RagOps: one module per stack, composed per environment in `stacks/stage.py`."""
