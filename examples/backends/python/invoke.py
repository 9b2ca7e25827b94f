"""The server API through its other door: Lambda's Invoke API, authorised by IAM, for a backend
that runs on AWS (its role needs lambda:InvokeFunction on the stack's ApiFunctionName). The request
is the payload, unsigned: IAM has decided who may call. boto3 is the only dependency.

    GATEWAY_FUNCTION=<ApiFunctionName> python3 invoke.py alice
    (locally: LAMBDA_ENDPOINT=http://127.0.0.1:8080 GATEWAY_FUNCTION=api, with any credentials make
     dev gave the functions)
"""
import json
import os
import sys

import boto3

lambda_client = boto3.client("lambda", endpoint_url=os.environ.get("LAMBDA_ENDPOINT"))
request = {"calls": [
    {"call": "send", "to": {"uid": sys.argv[1]}, "data": {"type": "notice", "text": "from invoke"}},
    {"call": "online", "uid": sys.argv[1]},
]}
answer = lambda_client.invoke(FunctionName=os.environ["GATEWAY_FUNCTION"], Payload=json.dumps(request))
print(answer["Payload"].read().decode())
