"""Make the fan-out queue and its dead-letter queue on an SQS-compatible server (moto) for `make dev`,
as template.yaml makes them in AWS: visibility 25 s, kept 5 minutes, moved to the dead-letter
queue after 3 receives.

Usage: create-queues.py ENDPOINT NAME. Prints the fan-out queue's URL, for FAN_OUT_QUEUE_URL.
boto3 comes with moto, which `make tools` installs.
"""
import json
import sys

import boto3

endpoint, name = sys.argv[1], sys.argv[2]
sqs = boto3.client(
    "sqs",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="local",
    aws_secret_access_key="local",
)
dead_letter = sqs.create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})
arn = sqs.get_queue_attributes(QueueUrl=dead_letter["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
queue = sqs.create_queue(
    QueueName=name,
    Attributes={
        "VisibilityTimeout": "25",
        "MessageRetentionPeriod": "300",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3}),
    },
)
print(queue["QueueUrl"])
