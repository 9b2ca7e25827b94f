"""Fail when a function's policy in the SAM template is wider than it needs to be.

Every statement of every AWS::Serverless::Function's inline policies must
- name actions, never `*` or a service wildcard such as `dynamodb:*`;
- name resources that are the connections table (`!GetAtt ConnectionsTable.Arn`), one of its
  indexes (`!Sub ${ConnectionsTable.Arn}/index/...`), or the WebSocket API's `@connections`
  (`!Sub arn:...:execute-api:...:${WebSocketApi}/${StageName}/POST/@connections/*`) — never `*`;
- read a secret (`!Ref TokenSecret`, `!Ref ApiSecret`) with `secretsmanager:GetSecretValue` and
  nothing else, in a statement of its own;
- invoke another function of the template (`!GetAtt MessageFunction.Arn`: on_open) with
  `lambda:InvokeFunction` and nothing else, in a statement of its own;
- send to a queue of the template (`!GetAtt FanOutQueue.Arn`: large sends' jobs) with
  `sqs:SendMessage` and nothing else, in a statement of its own — and never to a queue that
  triggers the function itself (a loop Lambda stops as recursive);
- receive from a queue (what Lambda's pollers do with the function's role) only if it triggers
  the function (an `AWS::Lambda::EventSourceMapping`, or a SAM `SQS` event), with the pollers'
  actions and nothing else.
Managed policy names and SAM policy templates are refused too: they cannot be checked here.

Usage: check-policies.py TEMPLATE [TEMPLATE ...]; exits 1 and says why on the first offence.
"""
import re
import sys

import yaml


class Tag:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value

    def __repr__(self):
        return f"{self.tag} {self.value!r}"


class Loader(yaml.SafeLoader):
    pass


def construct_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tag("!" + suffix, value)


Loader.add_multi_constructor("!", construct_tag)

TABLE = "ConnectionsTable"
SECRET = "TokenSecret"
# The secrets a function may read: the token keys ($connect) and the server API's (its function).
SECRETS = (SECRET, "ApiSecret")
SECRET_ACTIONS = ["secretsmanager:GetSecretValue"]
INVOKE_ACTIONS = ["lambda:InvokeFunction"]
QUEUE_ACTIONS = ["sqs:SendMessage"]
POLLER_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}
ALLOWED_RESOURCES = [
    lambda r: isinstance(r, Tag) and r.tag == "!GetAtt" and r.value in (f"{TABLE}.Arn", [TABLE, "Arn"]),
    lambda r: isinstance(r, Tag) and r.tag == "!Sub" and isinstance(r.value, str)
    and re.fullmatch(r"\$\{" + TABLE + r"\.Arn\}/index/[A-Za-z0-9_.-]+", r.value),
    lambda r: isinstance(r, Tag) and r.tag == "!Sub" and isinstance(r.value, str)
    and re.fullmatch(
        r"arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
        r"\$\{WebSocketApi\}/\$\{StageName\}/(POST|GET|DELETE)/@connections/\*",
        r.value,
    ),
]


def as_list(value):
    return value if isinstance(value, list) else [value]


def is_secret(resource):
    return isinstance(resource, Tag) and resource.tag == "!Ref" and resource.value in SECRETS


def getatt_arn(resource):
    """The logical id `resource` names as `!GetAtt Name.Arn`, or None."""
    if not (isinstance(resource, Tag) and resource.tag == "!GetAtt"):
        return None
    value = resource.value
    parts = value.split(".") if isinstance(value, str) else value
    return parts[0] if len(parts) == 2 and parts[1] == "Arn" else None


def is_function_of(functions, resource):
    return getatt_arn(resource) in functions


def queue_of(queues, resource):
    """The template queue `resource` names (`!GetAtt Queue.Arn`), or None."""
    name = getatt_arn(resource)
    return name if name in queues else None


def triggers(template, name, function):
    """The queues whose messages invoke the function `name`: its SAM SQS events, and the event
    source mappings that name it."""
    found = set()
    for event in ((function.get("Properties") or {}).get("Events") or {}).values():
        if event.get("Type") == "SQS":
            found.add(getatt_arn((event.get("Properties") or {}).get("Queue")))
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        properties = resource.get("Properties") or {}
        target = properties.get("FunctionName")
        if isinstance(target, Tag) and target.tag == "!Ref" and target.value == name:
            found.add(getatt_arn(properties.get("EventSourceArn")))
    return found - {None}


def check(path):
    with open(path) as f:
        template = yaml.load(f, Loader=Loader)
    problems = []
    functions = {
        name: resource
        for name, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }
    queues = {
        name
        for name, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") == "AWS::SQS::Queue"
    }
    if not functions:
        problems.append("no AWS::Serverless::Function in the template")
    for name, function in functions.items():
        policies = (function.get("Properties") or {}).get("Policies")
        for policy in as_list(policies or []):
            if not isinstance(policy, dict) or "Statement" not in policy:
                problems.append(f"{name}: policy {policy!r} is a managed policy or SAM template; write its statements")
                continue
            for statement in as_list(policy["Statement"]):
                if statement.get("Effect") != "Allow":
                    continue
                for action in as_list(statement.get("Action", [])):
                    if not isinstance(action, str) or "*" in action:
                        problems.append(f"{name}: action {action!r} is a wildcard; name each action")
                if "NotAction" in statement or "NotResource" in statement:
                    problems.append(f"{name}: NotAction/NotResource grants more than it names")
                resources = as_list(statement.get("Resource", []))
                if any(is_secret(resource) for resource in resources):
                    actions = as_list(statement.get("Action", []))
                    if actions != SECRET_ACTIONS or len(resources) != 1:
                        problems.append(f"{name}: the token secret may only be read (secretsmanager:GetSecretValue), in a statement of its own, not with {actions!r} on {resources!r}")
                    continue
                if any(is_function_of(functions, resource) for resource in resources):
                    actions = as_list(statement.get("Action", []))
                    if actions != INVOKE_ACTIONS or not all(is_function_of(functions, r) for r in resources):
                        problems.append(f"{name}: a function may only be invoked (lambda:InvokeFunction), in a statement of its own, not with {actions!r} on {resources!r}")
                    continue
                named = [queue_of(queues, resource) for resource in resources]
                if any(named):
                    actions = as_list(statement.get("Action", []))
                    own = triggers(template, name, function)
                    if not all(named):
                        problems.append(f"{name}: a statement on a queue names other resources too: {resources!r}")
                    elif actions == QUEUE_ACTIONS:
                        for queue in set(named) & own:
                            problems.append(f"{name}: sends to {queue}, which triggers it: a loop Lambda stops as recursive")
                    elif set(actions) <= POLLER_ACTIONS:
                        for queue in set(named) - own:
                            problems.append(f"{name}: receives from {queue}, which does not trigger it")
                    else:
                        problems.append(f"{name}: a queue may only be sent to (sqs:SendMessage) or polled by the function it triggers ({sorted(POLLER_ACTIONS)}), in a statement of its own, not with {actions!r} on {resources!r}")
                    continue
                for resource in resources:
                    if not any(allowed(resource) for allowed in ALLOWED_RESOURCES):
                        problems.append(f"{name}: resource {resource!r} is wider than the table, its indexes, @connections or the token secret")
    return problems


def main(paths):
    failed = False
    for path in paths:
        problems = check(path)
        for problem in problems:
            print(f"{path}: {problem}")
        failed |= bool(problems)
        if not problems:
            print(f"{path}: every function policy names its actions and resources")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
