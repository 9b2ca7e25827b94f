"""Create the connections table on a DynamoDB-compatible server if it is missing.

Usage: create-table.py ENDPOINT TABLE. The same keys and TTL as template.yaml (see
docs/table-design.md). boto3 comes with moto, which `make tools` installs.
"""
import sys

import boto3
from botocore.exceptions import ClientError

endpoint, table = sys.argv[1], sys.argv[2]
dynamodb = boto3.client(
    "dynamodb",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="local",
    aws_secret_access_key="local",
)
try:
    dynamodb.describe_table(TableName=table)
    print(f"table {table} exists")
except ClientError as error:
    if error.response["Error"]["Code"] != "ResourceNotFoundException":
        raise
    dynamodb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )
    dynamodb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"AttributeName": "expiresAt", "Enabled": True},
    )
    print(f"table {table} created")
