"""CI smoke test: the basic flow with boto3, an unchanged AWS client.

Expects sagehost at $SAGEHOST_URL accepting the keys in $AWS_ACCESS_KEY_ID /
$AWS_SECRET_ACCESS_KEY, and $MODEL_SERVER (the example model server binary).
"""
import json
import os
import sys
import time

import boto3
import botocore

url = os.environ["SAGEHOST_URL"]
image = os.environ["MODEL_SERVER"]
sm = boto3.client("sagemaker", endpoint_url=url, region_name="eu-west-1")
rt = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="eu-west-1")


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)
    print("ok:", what)


def error_code(fn, **kw):
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, None, None


for v in ("blue", "green"):
    sm.create_model(
        ModelName=f"py-{v}",
        PrimaryContainer={"Image": image, "Environment": {"TESTMODEL_NAME": v}},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerRole",
        Tags=[{"Key": "colour", "Value": v}],
    )
sm.create_endpoint_config(
    EndpointConfigName="py-config",
    ProductionVariants=[
        {"VariantName": "Blue", "ModelName": "py-blue", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0},
        {"VariantName": "Green", "ModelName": "py-green", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0},
    ],
)
arn = sm.create_endpoint(EndpointName="py-endpoint", EndpointConfigName="py-config")["EndpointArn"]
check(arn.startswith("arn:aws:sagemaker:eu-west-1:") and arn.endswith(":endpoint/py-endpoint"), f"endpoint ARN {arn}")

waiter = sm.get_waiter("endpoint_in_service")
waiter.wait(EndpointName="py-endpoint", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
d = sm.describe_endpoint(EndpointName="py-endpoint")
check(d["EndpointStatus"] == "InService", "endpoint InService")
check(sorted(v["VariantName"] for v in d["ProductionVariants"]) == ["Blue", "Green"], "two variants described")
check(all(v["CurrentInstanceCount"] == 1 for v in d["ProductionVariants"]), "current instance counts")

r = rt.invoke_endpoint(
    EndpointName="py-endpoint",
    Body=b'{"instances": [1, 2]}',
    ContentType="application/json",
    Accept="application/json",
    CustomAttributes="trace=42",
    TargetVariant="Green",
)
body = json.loads(r["Body"].read())
check(r["InvokedProductionVariant"] == "Green" and body["name"] == "green", "TargetVariant Green")
check(body["body"] == '{"instances": [1, 2]}', "body reached the container")
check(r["CustomAttributes"] == "echo:trace=42", "custom attributes both ways")
check(r["ContentType"] == "application/json", "content type back")
check(set(h.lower() for h in body["headers"]) <= {"content-type", "accept", "content-length", "x-amzn-sagemaker-custom-attributes"}, "only API headers reach the container")

seen = set()
for _ in range(60):
    seen.add(rt.invoke_endpoint(EndpointName="py-endpoint", Body=b"{}", ContentType="application/json")["InvokedProductionVariant"])
check(seen == {"Blue", "Green"}, f"weights split traffic: {seen}")

r = rt.invoke_endpoint_with_response_stream(
    EndpointName="py-endpoint",
    Body=b'{"testmodel": {"stream_chunks": 3}}',
    ContentType="application/json",
    Accept="application/jsonlines",
    CustomAttributes="trace=43",
    TargetVariant="Blue",
)
parts = [ev["PayloadPart"]["Bytes"] for ev in r["Body"]]
lines = [json.loads(line) for line in b"".join(parts).splitlines()]
check([(l["name"], l["chunk"]) for l in lines] == [("blue", 0), ("blue", 1), ("blue", 2)], f"response stream: {len(parts)} parts, {lines}")
check(r["InvokedProductionVariant"] == "Blue" and r["CustomAttributes"] == "echo:trace=43" and r["ContentType"] == "application/json",
      f"response stream headers: {r['InvokedProductionVariant']} {r['CustomAttributes']} {r['ContentType']}")
code, msg, status = error_code(rt.invoke_endpoint, EndpointName="py-endpoint", Body=b'{"testmodel": {"status": 500, "message": "boom"}}', ContentType="application/json")
check(code == "ModelError" and status == 424 and "Received server error (500)" in msg, f"ModelError: {code} {status} {msg}")
big = b'{"pad": "' + b"a" * (5 << 20) + b'"}'
r = rt.invoke_endpoint(EndpointName="py-endpoint", Body=big, ContentType="application/json")
check(json.loads(r["Body"].read())["body"] == big.decode(), "a 5 MiB body reached the container whole")
for size in (6291457, 9 << 20):  # over the limit; and past what the server reads at all
    code, msg, status = error_code(rt.invoke_endpoint, EndpointName="py-endpoint", Body=b"a" * size)
    check(code == "ValidationError" and status == 413 and "6291456" in msg, f"{size}-byte body: {code} {status} {msg}")
code, msg, status = error_code(rt.invoke_endpoint, EndpointName="nope", Body=b"{}")
check(code == "ValidationError" and "Endpoint nope of account 123456789012 not found." == msg, f"unknown endpoint: {code} {msg}")
code, msg, status = error_code(sm.describe_model, ModelName="nope")
check(code == "ValidationException" and "Could not find model" in msg, f"unknown model: {code} {msg}")
code, msg, status = error_code(sm.create_model, ModelName="bad_name", PrimaryContainer={"Image": image})
check(code == "ValidationException" and "1 validation error detected" in msg, f"validation: {msg}")

names = [m["ModelName"] for page in sm.get_paginator("list_models").paginate(PaginationConfig={"PageSize": 1}) for m in page["Models"]]
check(sorted(names) == ["py-blue", "py-green"], f"paginated list {names}")
tags = sm.list_tags(ResourceArn=sm.describe_model(ModelName="py-blue")["ModelArn"])["Tags"]
check(tags == [{"Key": "colour", "Value": "blue"}], f"tags {tags}")

sm.update_endpoint_weights_and_capacities(
    EndpointName="py-endpoint",
    DesiredWeightsAndCapacities=[{"VariantName": "Blue", "DesiredWeight": 0.0}],
)
waiter.wait(EndpointName="py-endpoint", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
only = {rt.invoke_endpoint(EndpointName="py-endpoint", Body=b"{}", ContentType="application/json")["InvokedProductionVariant"] for _ in range(20)}
check(only == {"Green"}, f"weight 0 takes Blue out: {only}")

# InvokeEndpointAsync, with inputs and outputs in a real MinIO.
minio_url = os.environ.get("MINIO_URL")
if minio_url:
    s3 = boto3.client("s3", endpoint_url=minio_url, region_name="us-east-1")
    s3.create_bucket(Bucket="smoke-async")
    s3.put_object(Bucket="smoke-async", Key="in/1.json", Body=b'{"q": 1}')
    sm.create_endpoint_config(
        EndpointConfigName="py-async-config",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "py-green", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://smoke-async/out"}},
    )
    sm.create_endpoint(EndpointName="py-async", EndpointConfigName="py-async-config")
    waiter.wait(EndpointName="py-async", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    r = rt.invoke_endpoint_async(EndpointName="py-async", InputLocation="s3://smoke-async/in/1.json", ContentType="application/json", InferenceId="smoke-1")
    check(r["InferenceId"] == "smoke-1" and r["OutputLocation"] == "s3://smoke-async/out/smoke-1.out" and r["ResponseMetadata"]["HTTPStatusCode"] == 202,
          f"InvokeEndpointAsync accepted: {r['InferenceId']} {r['OutputLocation']}")
    answer = None
    for _ in range(300):
        try:
            answer = json.loads(s3.get_object(Bucket="smoke-async", Key="out/smoke-1.out")["Body"].read())
            break
        except s3.exceptions.NoSuchKey:
            time.sleep(0.1)
    check(answer is not None and answer["body"] == '{"q": 1}' and answer["name"] == "green", f"asynchronous answer in S3: {answer}")
    code, msg, status = error_code(rt.invoke_endpoint, EndpointName="py-async", Body=b"{}")
    check(code == "ValidationError" and "asynchronous endpoint" in msg, f"InvokeEndpoint on an asynchronous endpoint: {code} {msg}")
    sm.delete_endpoint(EndpointName="py-async")
else:
    print("skip: InvokeEndpointAsync (no MinIO)")

# Last, as the model dies: Blue takes no more traffic.
r = rt.invoke_endpoint_with_response_stream(EndpointName="py-endpoint", Body=b'{"testmodel": {"bytes": 1048576, "crash_after": 100000}}', ContentType="application/json", TargetVariant="Blue")
try:
    for ev in r["Body"]:
        pass
    check(False, "a model dying mid-stream ends the stream with an error")
except botocore.exceptions.EventStreamError as e:
    check(e.response["Error"]["Code"] == "ModelStreamError", f"mid-stream ModelStreamError: {e.response['Error']}")
sm.delete_endpoint(EndpointName="py-endpoint")
sm.get_waiter("endpoint_deleted").wait(EndpointName="py-endpoint", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
print("boto3 smoke test passed")
