"""No function leaves a log group behind that never expires: each one, aws-cdk-lib's custom-resource providers
included, logs to a group of its own stack that has a retention. Lambda would otherwise create
`/aws/lambda/<function>` on first call, outside the stack and without retention, also during a stack delete."""

from __future__ import annotations


def test_every_function_logs_to_an_expiring_group_of_its_stack(templates):
    unlogged = []
    for path, template in sorted(templates.items()):
        groups = template.find_resources("AWS::Logs::LogGroup")
        for function_id, function in template.find_resources("AWS::Lambda::Function").items():
            target = function["Properties"].get("LoggingConfig", {}).get("LogGroup", {})
            group = groups.get(target.get("Ref")) if isinstance(target, dict) else None
            if group is None or "RetentionInDays" not in group["Properties"]:
                unlogged.append(f"{path}/{function_id}")
    assert unlogged == []
