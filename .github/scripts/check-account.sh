#!/usr/bin/env bash
# Refuse to go on unless the assumed credentials belong to $EXPECTED_ACCOUNT. configure-aws-credentials'
# allowed-account-ids does the same; this check does not depend on which of its auth paths ran.
set -euo pipefail
: "${EXPECTED_ACCOUNT:?EXPECTED_ACCOUNT is not set}"
actual="$(aws sts get-caller-identity --query Account --output text)"
if [[ "$actual" != "$EXPECTED_ACCOUNT" ]]; then
  echo "::error::credentials are for account $actual, expected $EXPECTED_ACCOUNT"
  exit 1
fi
echo "credentials are for account $actual"
