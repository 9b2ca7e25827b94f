"""Make the fan-out queue and its dead-letter queue on an SQS-compatible server (moto) for `make dev`,
with the settings template.yaml gives FanOutQueue and FanOutDeadLetterQueue in AWS (read from it,
so that the two cannot drift apart).

Usage: create-queues.py ENDPOINT NAME [TEMPLATE]. Prints the fan-out queue's URL, for
FAN_OUT_QUEUE_URL. boto3 and PyYAML come with moto, which `make tools` installs.
"""
import json
import sys

import boto3
import yaml


class Loader(yaml.SafeLoader):
    pass


# The template's intrinsic functions (!GetAtt, !Ref, …) are read as their plain values.
Loader.add_multi_constructor("!", lambda loader, suffix, node: None)

endpoint, name = sys.argv[1], sys.argv[2]
template_path = sys.argv[3] if len(sys.argv) > 3 else "template.yaml"
with open(template_path) as f:
    resources = yaml.load(f, Loader=Loader)["Resources"]
queue = resources["FanOutQueue"]["Properties"]
dead_letter = resources["FanOutDeadLetterQueue"]["Properties"]

sqs = boto3.client(
    "sqs",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="local",
    aws_secret_access_key="local",
)
made = sqs.create_queue(
    QueueName=f"{name}-dlq",
    Attributes={"MessageRetentionPeriod": str(dead_letter["MessageRetentionPeriod"])},
)
arn = sqs.get_queue_attributes(QueueUrl=made["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
made = sqs.create_queue(
    QueueName=name,
    Attributes={
        "VisibilityTimeout": str(queue["VisibilityTimeout"]),
        "MessageRetentionPeriod": str(queue["MessageRetentionPeriod"]),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": arn, "maxReceiveCount": queue["RedrivePolicy"]["maxReceiveCount"]}
        ),
    },
)
print(made["QueueUrl"])
