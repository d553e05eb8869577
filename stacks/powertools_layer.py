"""Fact table: the AWS-managed Powertools for AWS Lambda (Python) layer the hook functions run with.

Powertools publishes one public layer per Python version and architecture from account 017000801446
(`AWSLambdaPowertoolsPythonV3-<python>-<arch>:<version>`). Version 36 of the python3.14/arm64 layer carries
Powertools 3.31.1; tests run the handlers against the pip-installed pin (requirements.txt), and the
handlers use only Logger, Tracer, Metrics and the parser, which both versions provide. To move the layer, check the
new version's content with `aws lambda get-layer-version-by-arn --arn <arn>` (its Description names the
Powertools release) and change `LAYER_VERSION` here.
"""

from __future__ import annotations

from stacks.config import ConfigError

PUBLISHER_ACCOUNT = "017000801446"
LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python314-arm64"
LAYER_VERSION = 36
POWERTOOLS_VERSION = "3.31.1"

# Commercial regions the Powertools documentation lists the V3 layers in.
REGIONS = frozenset(
    {
        "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
        "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
        "ap-southeast-7", "ca-central-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1",
        "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1",
        "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    }
)  # fmt: skip


def powertools_layer_arn(region: str) -> str:
    """The layer version ARN in `region`; refuses regions the layer is not published in."""
    if region not in REGIONS:
        raise ConfigError(f"region '{region}': the Powertools layer {LAYER_NAME} is not published there")
    return f"arn:aws:lambda:{region}:{PUBLISHER_ACCOUNT}:layer:{LAYER_NAME}:{LAYER_VERSION}"
