"""Print an environment's validated account and region as `$GITHUB_OUTPUT` lines.

The pull-request diff job has no GitHub environment to hold them, so it reads the same validated
configuration the app deploys from: `python -m stacks.targets dev >> "$GITHUB_OUTPUT"`.
"""

from __future__ import annotations

import sys

from stacks.config import ConfigError, committed_context, load_app_config


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m stacks.targets <environment>", file=sys.stderr)
        return 2
    try:
        (env,) = load_app_config(committed_context()).select(argv)
    except ConfigError as error:
        print(f"ragops: invalid configuration: {error}", file=sys.stderr)
        return 2
    print(f"account={env.account}")
    print(f"region={env.region}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
