#!/usr/bin/python3
"""Time XGBoost's own prediction on the model and rows BenchmarkPredict100Trees uses.

Run by hand from the repository root, with Debian's XGBoost
(apt-get install -y python3-xgboost):

    /usr/bin/python3 modelserver/xgboost/testdata/bench_xgboost.py

It loads testdata/golden/trees100.json.gz (100 trees, depth 6, 10 features,
binary:logistic) and the 1000 rows of trees100.cases.json.gz, checks that
XGBoost reproduces the golden predictions, and prints rows/s for:

  inplace_predict     Booster.inplace_predict on a float32 NumPy array
  DMatrix + predict   building the DMatrix from the array, then predict (what
                      SageMaker's container does per request, after parsing)

(Booster.predict on one prebuilt DMatrix is not timed: the Booster caches
that DMatrix's predictions, so repeats measure the cache.)

each with nthread=1 and with XGBoost's default thread count (all cores).
Every figure is the best of several repeats of a timed loop.
"""
import gzip
import json
import os
import platform
import timeit

import numpy as np
import xgboost as xgb

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


def main():
    with gzip.open(os.path.join(GOLDEN, "trees100.json.gz")) as f:
        model = bytearray(f.read())
    with gzip.open(os.path.join(GOLDEN, "trees100.cases.json.gz")) as f:
        case = json.load(f)
    X = np.array([[np.nan if v is None else v for v in r] for r in case["rows"]], dtype=np.float32)
    want = np.array(case["pred"], dtype=np.float32)
    rows = X.shape[0]
    print(f"xgboost {xgb.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {rows} rows x {X.shape[1]} features")
    for nthread, label in ((1, "nthread=1"), (0, "nthread=default")):
        bst = xgb.Booster(params={"nthread": nthread} if nthread else None)
        bst.load_model(model)
        assert bst.num_boosted_rounds() == 100
        d = xgb.DMatrix(X, nthread=nthread)
        assert np.array_equal(bst.predict(d), want)
        assert np.array_equal(bst.inplace_predict(X), want)
        for name, fn in (
            ("inplace_predict", lambda: bst.inplace_predict(X)),
            ("DMatrix + predict", lambda: bst.predict(xgb.DMatrix(X, nthread=nthread))),
        ):
            fn()  # warm up
            number = 200
            best = min(timeit.repeat(fn, number=number, repeat=5)) / number
            print(f"{name:18s} {label:16s} {best * 1e3:8.3f} ms/batch  {rows / best:12,.0f} rows/s")


if __name__ == "__main__":
    main()
