// CI smoke test: the basic flow with the AWS SDK for JavaScript v3, an
// unchanged AWS client. Expects sagehost at $SAGEHOST_URL accepting the keys
// in $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY, and $MODEL_SERVER (the
// example model server binary).
import {
  SageMakerClient,
  CreateModelCommand,
  CreateEndpointConfigCommand,
  CreateEndpointCommand,
  DeleteEndpointCommand,
  DescribeEndpointCommand,
  waitUntilEndpointInService,
} from "@aws-sdk/client-sagemaker";
import {
  SageMakerRuntimeClient,
  InvokeEndpointCommand,
  InvokeEndpointWithResponseStreamCommand,
} from "@aws-sdk/client-sagemaker-runtime";

const url = process.env.SAGEHOST_URL;
const image = process.env.MODEL_SERVER;
const region = "ap-southeast-2";
const sm = new SageMakerClient({ endpoint: url, region });
const rt = new SageMakerRuntimeClient({ endpoint: url, region, maxAttempts: 1 });
const enc = new TextEncoder();
const dec = new TextDecoder();

function check(cond, what) {
  if (!cond) {
    console.error("FAIL:", what);
    process.exit(1);
  }
  console.log("ok:", what);
}

async function failure(p) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return null;
}

await sm.send(new CreateModelCommand({
  ModelName: "js-model",
  PrimaryContainer: { Image: image, Environment: { TESTMODEL_NAME: "js" } },
  ExecutionRoleArn: "arn:aws:iam::123456789012:role/SageMakerRole",
}));
await sm.send(new CreateEndpointConfigCommand({
  EndpointConfigName: "js-config",
  ProductionVariants: [{ VariantName: "AllTraffic", ModelName: "js-model", InitialInstanceCount: 1, InstanceType: "ml.m5.large" }],
}));
const created = await sm.send(new CreateEndpointCommand({ EndpointName: "js-endpoint", EndpointConfigName: "js-config" }));
check(created.EndpointArn === "arn:aws:sagemaker:ap-southeast-2:123456789012:endpoint/js-endpoint", `endpoint ARN ${created.EndpointArn}`);
await waitUntilEndpointInService({ client: sm, maxWaitTime: 120, minDelay: 1, maxDelay: 2 }, { EndpointName: "js-endpoint" });
const d = await sm.send(new DescribeEndpointCommand({ EndpointName: "js-endpoint" }));
check(d.EndpointStatus === "InService" && d.CreationTime instanceof Date, "endpoint InService, times parsed");

const r = await rt.send(new InvokeEndpointCommand({
  EndpointName: "js-endpoint",
  Body: enc.encode('{"x": 1}'),
  ContentType: "application/json",
  Accept: "application/json",
  CustomAttributes: "trace=js",
}));
const body = JSON.parse(dec.decode(r.Body));
check(body.name === "js" && body.body === '{"x": 1}', `InvokeEndpoint reached the container: ${body.body}`);
check(r.CustomAttributes === "echo:trace=js" && r.InvokedProductionVariant === "AllTraffic" && r.ContentType === "application/json",
  `InvokeEndpoint headers: ${r.CustomAttributes} ${r.InvokedProductionVariant} ${r.ContentType}`);

const s = await rt.send(new InvokeEndpointWithResponseStreamCommand({
  EndpointName: "js-endpoint",
  Body: enc.encode('{"testmodel": {"stream_chunks": 3}}'),
  ContentType: "application/json",
}));
let text = "";
for await (const ev of s.Body) {
  if (ev.PayloadPart) text += dec.decode(ev.PayloadPart.Bytes);
}
const lines = text.trim().split("\n").map((l) => JSON.parse(l));
check(lines.length === 3 && lines.every((l, i) => l.name === "js" && l.chunk === i), `response stream: ${text.trim().replaceAll("\n", " | ")}`);

let e = await failure(rt.send(new InvokeEndpointCommand({
  EndpointName: "js-endpoint",
  Body: enc.encode('{"testmodel": {"status": 500, "message": "js boom"}}'),
  ContentType: "application/json",
})));
check(e && e.name === "ModelError" && e.$metadata.httpStatusCode === 424 && e.OriginalStatusCode === 500 && e.OriginalMessage === "js boom" &&
  e.LogStreamArn.startsWith("arn:aws:logs:ap-southeast-2:123456789012:log-group:/aws/sagemaker/Endpoints/js-endpoint:log-stream:AllTraffic/"),
  `ModelError: ${e && e.name} ${e && e.message}`);
e = await failure(rt.send(new InvokeEndpointCommand({ EndpointName: "nope", Body: enc.encode("{}") })));
check(e && e.name === "ValidationError" && e.message === "Endpoint nope of account 123456789012 not found.", `unknown endpoint: ${e && e.name} ${e && e.message}`);
e = await failure(sm.send(new DescribeEndpointCommand({ EndpointName: "nope" })));
check(e && e.name === "ValidationException" && e.$metadata.httpStatusCode === 400, `control-plane error: ${e && e.name} ${e && e.message}`);

await sm.send(new DeleteEndpointCommand({ EndpointName: "js-endpoint" }));
console.log("JavaScript SDK v3 smoke test passed");
