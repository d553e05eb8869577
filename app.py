#!/usr/bin/env python3
"""CDK entry point: one Stage per environment (`cdk synth "dev/*"`, `-c environments=dev,staging`)."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from stacks.app_builder import build_app
from stacks.config import ConfigError


def main() -> int:
    try:
        app = build_app(cdk.App(), with_checks=True)
    except ConfigError as error:
        print(f"ragops: invalid configuration: {error}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
