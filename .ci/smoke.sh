#!/usr/bin/env bash
# CI smoke test: sagehost driven by the AWS CLI and boto3 that the machine
# already has and the AWS SDK for JavaScript v3 (from the npm registry, as
# .ci/js/package-lock.json pins it), against real model processes and a
# MinIO; then the README's quickstart command and the AWS CLI command it
# prints.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

go build -o "$work/sagehost" ./cmd/sagehost
go build -o "$work/model-server" ./examples/model-server

cat >"$work/credentials" <<CREDS
[ci]
aws_access_key_id = AKIDSMOKETEST
aws_secret_access_key = smoke-secret
aws_account_id = 123456789012
CREDS
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A MinIO for InvokeEndpointAsync's inputs and outputs (required in CI).
s3_flags=()
minio_url=""
if command -v minio >/dev/null 2>&1; then
	mport=$(free_port)
	MINIO_ROOT_USER=AKIDSMOKETEST MINIO_ROOT_PASSWORD=smoke-secret MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=1 HOME="$work" \
		setsid minio server --quiet --address "127.0.0.1:$mport" "$work/minio" >"$work/minio.log" 2>&1 &
	pids+=($!)
	minio_url="http://127.0.0.1:$mport"
	for _ in $(seq 200); do curl -fs "$minio_url/minio/health/live" >/dev/null && break; sleep 0.1; done
	s3_flags=(--s3-endpoint-url "$minio_url")
elif [ "${SAGEHOST_REQUIRE_MINIO:-}" = 1 ]; then
	echo "minio is required (SAGEHOST_REQUIRE_MINIO=1)"; exit 1
fi

port=$(free_port)
AWS_ACCESS_KEY_ID=AKIDSMOKETEST AWS_SECRET_ACCESS_KEY=smoke-secret \
	setsid "$work/sagehost" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --credentials "$work/credentials" "${s3_flags[@]}" >"$work/sagehost.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

export AWS_ACCESS_KEY_ID=AKIDSMOKETEST AWS_SECRET_ACCESS_KEY=smoke-secret AWS_DEFAULT_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE
url="http://127.0.0.1:$port"

echo "== AWS CLI"
aws sagemaker create-model --endpoint-url "$url" --model-name cli-model \
	--primary-container "Image=$work/model-server,Environment={TESTMODEL_NAME=cli}" >/dev/null
aws sagemaker create-endpoint-config --endpoint-url "$url" --endpoint-config-name cli-config \
	--production-variants VariantName=AllTraffic,ModelName=cli-model,InitialInstanceCount=1,InstanceType=ml.m5.large >/dev/null
aws sagemaker create-endpoint --endpoint-url "$url" --endpoint-name cli-endpoint --endpoint-config-name cli-config >/dev/null
status=""
for _ in $(seq 300); do
	status=$(aws sagemaker describe-endpoint --endpoint-url "$url" --endpoint-name cli-endpoint --query EndpointStatus --output text)
	[ "$status" = InService ] && break
	sleep 0.2
done
[ "$status" = InService ] || { echo "cli-endpoint is $status"; cat "$work/sagehost.log"; exit 1; }
aws sagemaker-runtime invoke-endpoint --endpoint-url "$url" --endpoint-name cli-endpoint \
	--content-type text/csv --body '1,2,3' "$work/out.json" >"$work/meta.json"
grep -q '"name":"cli"' "$work/out.json" && grep -q '"body":"1,2,3"' "$work/out.json" || { echo "unexpected answer:"; cat "$work/out.json"; exit 1; }
grep -q '"InvokedProductionVariant": "AllTraffic"' "$work/meta.json" || { cat "$work/meta.json"; exit 1; }
if aws sagemaker describe-endpoint --endpoint-url "$url" --endpoint-name missing 2>"$work/err.txt"; then exit 1; fi
grep -q "ValidationException" "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
if AWS_SECRET_ACCESS_KEY=wrong aws sagemaker list-models --endpoint-url "$url" 2>"$work/err.txt"; then exit 1; fi
grep -q "InvalidSignatureException" "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
echo "AWS CLI smoke test passed"

echo "== boto3"
SAGEHOST_URL="$url" MODEL_SERVER="$work/model-server" MINIO_URL="$minio_url" python3 .ci/smoke.py

echo "== AWS SDK for JavaScript v3"
(cd .ci/js && npm ci --no-audit --no-fund --loglevel=error)
SAGEHOST_URL="$url" MODEL_SERVER="$work/model-server" node .ci/js/smoke.mjs

echo "== README quickstart"
# The README's first command, as given there, run from a clean data dir.
quickstart=$(grep -m1 -E '^go run .*--example$' README.md)
[ -n "$quickstart" ] || { echo "README has no quickstart command"; exit 1; }
echo "\$ $quickstart"
XDG_DATA_HOME="$work/xdg" setsid bash -c "exec $quickstart" >"$work/quickstart.out" 2>"$work/quickstart.err" &
pids+=($!)
invoke=""
for _ in $(seq 600); do
	invoke=$(sed -n 's/^  \(AWS_ACCESS_KEY_ID=.*aws sagemaker-runtime invoke-endpoint .*\)$/\1/p' "$work/quickstart.out")
	[ -n "$invoke" ] && break
	sleep 0.2
done
[ -n "$invoke" ] || { echo "quickstart printed no command"; cat "$work/quickstart.out" "$work/quickstart.err"; exit 1; }
echo "\$ $invoke"
(cd "$work" && bash -c "$invoke" | cat >"$work/qs-answer.txt")
# The example XGBoost model's own prediction for the sample row
# (modelserver/xgboost/example/expected.txt, made by XGBoost itself).
expected=$(cat modelserver/xgboost/example/expected.txt)
grep -qF "$expected" "$work/qs-answer.txt" && grep -qF '"InvokedProductionVariant": "AllTraffic"' "$work/qs-answer.txt" || { echo "want $expected in:"; cat "$work/qs-answer.txt"; exit 1; }
echo "quickstart smoke test passed"
