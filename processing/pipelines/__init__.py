"""The deployed SageMaker pipelines: their names, parameters, and starting an execution."""
