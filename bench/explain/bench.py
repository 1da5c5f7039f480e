"""Times boto3 InvokeEndpoint with and without explanations (run.sh)."""
import json, os, statistics, time

import boto3

url, calls = os.environ["SAGEHOST_URL"], int(os.environ["CALLS"])
sm = boto3.client("sagemaker", endpoint_url=url)
rt = boto3.client("sagemaker-runtime", endpoint_url=url)
rows = [r for r in json.load(open(os.environ["CASES"]))["rows"]
        if all(v is not None and abs(v) < 1e5 for v in r)]
csv = lambda rs: "".join(",".join(repr(v) for v in r) + "\n" for r in rs)
# Baselines: 1 row (the column means), and 10 rows.
mean = [statistics.fmean(c) for c in zip(*rows)]

sm.create_model(ModelName="m", PrimaryContainer={
    "Image": "sagehost/xgboost", "ModelDataUrl": "file://" + os.environ["MODEL_TGZ"]})
variants = [{"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}]
configs = {
    "plain": None,
    "base1": csv([mean]),
    "base10": csv(rows[100:110]),
}
for name, baseline in configs.items():
    kw = {}
    if baseline is not None:
        kw["ExplainerConfig"] = {"ClarifyExplainerConfig": {
            "InferenceConfig": {"MaxRecordCount": 5000},
            "ShapConfig": {"ShapBaselineConfig": {"ShapBaseline": baseline}, "Seed": 1}}}
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants, **kw)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
for name in configs:
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})


def timed(endpoint, body):
    rt.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="text/csv", Accept="text/csv")  # warm-up
    ms = []
    for _ in range(calls):
        t = time.perf_counter()
        out = rt.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="text/csv", Accept="text/csv")
        out["Body"].read()
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    return ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.99))]


print(f"{calls} calls per case; latency of one boto3 invoke_endpoint, ms")
print(f"{'endpoint':<8} {'records':>7} {'synthetic rows':>14} {'p50':>8} {'p99':>8}")
for name in configs:
    for n in (1, 10):
        body = csv(rows[200:200 + n])
        synth = 0
        if name != "plain":
            b = 1 if name == "base1" else 10
            synth = b + n * b * 1022  # 10 varying features: 2^10-2 coalitions
        p50, p99 = timed(name, body)
        print(f"{name:<8} {n:>7} {synth:>14} {p50:>8.2f} {p99:>8.2f}")
