#!/usr/bin/env bash
# End-to-end cost of online explanations: boto3 InvokeEndpoint on two
# endpoints of the same XGBoost model (100 trees, 10 features) on the
# built-in server, one plain and one with a ClarifyExplainerConfig, through
# a real sagehost process. Prints p50/p99 latency per case.
#
#   bash bench/explain/run.sh [calls per case, default 50]
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'kill -TERM "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/sagehost" ./cmd/sagehost
mkdir "$work/model"
zcat modelserver/xgboost/testdata/golden/trees100.json.gz >"$work/model/xgboost-model"
tar czf "$work/model.tar.gz" -C "$work/model" xgboost-model
zcat modelserver/xgboost/testdata/golden/trees100.cases.json.gz >"$work/cases.json"

cat >"$work/credentials" <<CREDS
[bench]
aws_access_key_id = AKIDBENCH
aws_secret_access_key = bench-secret
aws_account_id = 123456789012
CREDS
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$work/sagehost" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --credentials "$work/credentials" >"$work/sagehost.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

SAGEHOST_URL="http://127.0.0.1:$port" MODEL_TGZ="$work/model.tar.gz" CASES="$work/cases.json" CALLS="${1:-50}" \
	AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1 \
	python3 bench/explain/bench.py
