"""The AWS actions the environment's workloads call, by service: the roles' grants and the VPC endpoint
policies both come from these lists, so an endpoint never admits more than a role of ours may do."""

from __future__ import annotations

# What MLflow's client calls on a SageMaker tracking server to log runs (sagemaker-mlflow service prefix).
MLFLOW_RUN_ACTIONS = tuple(
    f"sagemaker-mlflow:{action}"
    for action in (
        "CreateExperiment",
        "GetExperiment",
        "GetExperimentByName",
        "SearchExperiments",
        "UpdateExperiment",
        "SetExperimentTag",
        "CreateRun",
        "GetRun",
        "UpdateRun",
        "SearchRuns",
        "LogMetric",
        "LogParam",
        "LogBatch",
        "LogInputs",
        "SetTag",
        "GetMetricHistory",
    )
)
# The trace actions SageMaker documents for MLflow tracing from a job: StartTrace and EndTrace (a trace is written:
# MLflow 3 clients in one start call, 2.x clients as a start/end pair) and SearchTraces (the retrieval stage counts
# the traces the server holds, so a dropped export shows as a metric). Sources: the Service Authorization Reference,
# "Actions, resources, and condition keys for Amazon SageMaker with MLflow" (docs.aws.amazon.com/service-
# authorization/latest/reference/list_amazonsagemakerwithmlflow.html), and the SageMaker Developer Guide's job
# execution policy for "MLflow experiment tracing" (sagemaker/latest/dg/model-customize-mtrl-prereqs.html), which
# grants exactly these three. The trace data itself goes to the artifact store (S3_PROJECT_ACTIONS below).
MLFLOW_TRACE_ACTIONS = tuple(f"sagemaker-mlflow:{action}" for action in ("StartTrace", "EndTrace", "SearchTraces"))
MLFLOW_ACTIONS = (*MLFLOW_RUN_ACTIONS, *MLFLOW_TRACE_ACTIONS)  # the processing role's and the VPC endpoint's
ENDPOINT_INVOKE_ACTIONS = ("sagemaker:InvokeEndpoint",)
BEDROCK_INVOKE_ACTIONS = ("bedrock:InvokeModel",)  # Converse is authorized as InvokeModel
ECR_LAYER_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
ECR_PULL_ACTIONS = ("ecr:GetAuthorizationToken", *ECR_LAYER_ACTIONS)
LOG_WRITE_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")
# Inside the VPC the SageMaker API serves only the on-demand endpoints a run brings up (or moves to the
# endpoint config a later deploy made): processing/backends/on_demand.py.
ON_DEMAND_ENDPOINT_ACTIONS = ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint")
SAGEMAKER_API_ACTIONS = ("sagemaker:DescribeEndpoint", *ON_DEMAND_ENDPOINT_ACTIONS, "sagemaker:AddTags")
STS_ACTIONS = ("sts:GetCallerIdentity",)
# Objects in the project's buckets: processing inputs and outputs, MLflow artifacts (multipart uploads included).
S3_PROJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:GetBucketLocation",
)
