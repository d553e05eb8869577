"""Generator clients (OpenAI-compatible HTTP, SageMaker TGI, Bedrock Custom Model Import) behind `Generator`."""
