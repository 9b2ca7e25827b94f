"""Put the token keys into a Secrets Manager-compatible server (moto) for `make dev`.

Usage: create-secret.py ENDPOINT NAME. The key comes from AUTH_SECRET in the environment, never
from an argument (which any process on the machine could read). The secret holds what the
template's TokenSecret holds in AWS, {"kid":"1","secret":AUTH_SECRET}; it is created, or given
that value if it exists. Prints the secret's ARN, for AUTH_SECRET_ARN. boto3 comes with moto,
which `make tools` installs.
"""
import json
import os
import sys

import boto3
from botocore.exceptions import ClientError

MIN_CHARS = 32

endpoint, name = sys.argv[1], sys.argv[2]
key = os.environ.get("AUTH_SECRET", "")
if len(key) < MIN_CHARS or not key.strip():
    sys.exit(
        f"AUTH_SECRET has {len(key)} characters: give {MIN_CHARS} or more, as a deployed stack's "
        "keys are (openssl rand -hex 32)"
    )
value = json.dumps({"kid": "1", "secret": key})
secrets = boto3.client(
    "secretsmanager",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="local",
    aws_secret_access_key="local",
)
try:
    arn = secrets.create_secret(Name=name, SecretString=value)["ARN"]
except ClientError as error:
    if error.response["Error"]["Code"] != "ResourceExistsException":
        raise
    arn = secrets.put_secret_value(SecretId=name, SecretString=value)["ARN"]
print(arn)
