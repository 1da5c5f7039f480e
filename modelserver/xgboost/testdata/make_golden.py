#!/usr/bin/python3
"""Regenerate the golden XGBoost models and predictions for modelserver/xgboost.

Run by hand (not by CI), from the repository root, with Debian's XGBoost:

    apt-get install -y python3-xgboost
    /usr/bin/python3 modelserver/xgboost/testdata/make_golden.py

For every case it trains a small model on synthetic data, saves it as JSON,
UBJSON and (where XGBoost can) the legacy binary format, loads the saved JSON
back as SageMaker's XGBoost container does (xgb.Booster().load_model), and
records the prediction rows (with NaNs) and XGBoost's own predictions:
output_margin=True and the transformed output, both with
ntree_limit=best_ntree_limit as the container predicts, and with all trees.

Everything is written gzipped under testdata/golden/ (models as
NAME.json.gz, NAME.ubj.gz, NAME.bin.gz; predictions as NAME.cases.json.gz),
plus testdata/golden/manifest.json. Floats are written as the float64 repr of
the float32 values, so they round-trip exactly; NaN is null.

It also writes the quickstart example model, example/model.tar.gz (holding
xgboost-model as UBJSON) and example/sample.csv.
"""
import gzip
import io
import json
import math
import os
import tarfile
import tempfile

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
EXAMPLE = os.path.join(os.path.dirname(HERE), "example")


def f32list(a):
    """Floats as exact float64 reprs of float32 values, NaN as None."""
    out = []
    for v in np.asarray(a, dtype=np.float32).ravel().tolist():
        out.append(None if math.isnan(v) else v)
    return out


def gz_write(path, data):
    # mtime=0 keeps the files byte-identical across regenerations.
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
            g.write(data)


def save_model_bytes(bst, suffix):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "model" + suffix)
        bst.save_model(p)
        with open(p, "rb") as f:
            return f.read()


def features(rng, n, k, nan_rate=0.0):
    X = rng.normal(size=(n, k)).astype(np.float32)
    X[:, 0] = rng.uniform(0, 10, size=n)  # a positive, wide feature
    if nan_rate > 0:
        X[rng.uniform(size=X.shape) < nan_rate] = np.nan
    return X


def prediction_rows(rng, k, n=120, cat_cols=()):
    X = features(rng, n, k)
    X[rng.uniform(size=X.shape) < 0.07] = np.nan  # missing values at inference
    X[0, :] = np.nan  # a row with every feature missing
    X[1, :] = 0.0
    X[2, :] = 1e6  # far out on every feature
    X[3, :] = -1e6
    for c in cat_cols:
        X[:, c] = rng.integers(0, 6, size=n)
        X[4:10, c] = [-1, 7, 2.5, 1e8, 0, 5]  # invalid, unseen, fractional categories
    return X


def signal(X):
    Z = np.nan_to_num(X, nan=0.0)
    return 0.8 * Z[:, 0] - 1.5 * Z[:, 1] + np.sin(Z[:, 2]) + 0.5 * Z[:, 1] * Z[:, 3]


CASES = []


def case(name, **kw):
    CASES.append(dict(name=name, **kw))


def build_cases():
    rng = np.random.default_rng(7)
    n, k = 400, 6

    def reg():
        X = features(rng, n, k)
        return X, signal(X) + rng.normal(scale=0.3, size=n), {}

    def positive(kind):
        def f():
            X = features(rng, n, k)
            mu = np.exp(0.15 * signal(X))
            if kind == "poisson":
                y = rng.poisson(mu).astype(np.float32)
            elif kind == "gamma":
                y = rng.gamma(2.0, mu / 2.0)
            elif kind == "tweedie":
                y = rng.poisson(mu) * rng.gamma(2.0, 0.5, size=n)
            else:  # squaredlog: labels > -1
                y = mu * 3.0
            return X, y, {}
        return f

    def binary(X=None):
        def f():
            Xb = features(rng, n, k) if X is None else X
            p = 1 / (1 + np.exp(-0.7 * signal(Xb)))
            return Xb, (rng.uniform(size=n) < p).astype(np.float32), {}
        return f

    def prob():
        X = features(rng, n, k)
        return X, 1 / (1 + np.exp(-0.5 * signal(X))), {}

    def multi():
        X = features(rng, n, k)
        s = signal(X)
        return X, np.digitize(s, np.quantile(s, [0.33, 0.66])).astype(np.float32), {}

    def rank(binary_labels=False):
        def f():
            X = features(rng, n, k)
            s = signal(X) + rng.normal(scale=0.5, size=n)
            y = np.digitize(s, np.quantile(s, [0.5])) if binary_labels else \
                np.digitize(s, np.quantile(s, [0.4, 0.7, 0.9]))
            return X, y.astype(np.float32), {"group": [20] * (n // 20)}
        return f

    def cox():
        X = features(rng, n, k)
        t = rng.exponential(np.exp(-0.3 * signal(X)))
        censored = rng.uniform(size=n) < 0.3
        return X, np.where(censored, -t, t), {}

    def aft():
        X = features(rng, n, k)
        t = rng.exponential(np.exp(0.3 * signal(X))) + 0.01
        lower = t.copy()
        upper = np.where(rng.uniform(size=n) < 0.3, np.inf, t)
        return X, None, {"lower": lower, "upper": upper}

    base = {"max_depth": 3, "eta": 0.3, "seed": 1}
    case("reg_squarederror", data=reg, params={"objective": "reg:squarederror"})
    case("reg_squaredlogerror", data=positive("squaredlog"), params={"objective": "reg:squaredlogerror"})
    case("reg_pseudohubererror", data=reg, params={"objective": "reg:pseudohubererror", "huber_slope": 1.5})
    case("reg_absoluteerror", data=reg, params={"objective": "reg:absoluteerror"})
    case("reg_logistic", data=prob, params={"objective": "reg:logistic"})
    case("binary_logistic", data=binary(), params={"objective": "binary:logistic"})
    case("binary_logistic_base_score", data=binary(),
         params={"objective": "binary:logistic", "base_score": 0.3})
    case("binary_logitraw", data=binary(), params={"objective": "binary:logitraw"})
    case("binary_hinge", data=binary(), params={"objective": "binary:hinge"})
    case("multi_softprob", data=multi, params={"objective": "multi:softprob", "num_class": 3})
    case("multi_softmax", data=multi, params={"objective": "multi:softmax", "num_class": 3})
    case("count_poisson", data=positive("poisson"), params={"objective": "count:poisson"})
    case("reg_gamma", data=positive("gamma"), params={"objective": "reg:gamma", "base_score": 2.0})
    case("reg_tweedie", data=positive("tweedie"),
         params={"objective": "reg:tweedie", "tweedie_variance_power": 1.3})
    case("rank_pairwise", data=rank(), params={"objective": "rank:pairwise"})
    case("rank_ndcg", data=rank(), params={"objective": "rank:ndcg"})
    case("rank_map", data=rank(True), params={"objective": "rank:map"})
    case("survival_cox", data=cox, params={"objective": "survival:cox"})
    case("survival_aft", data=aft, params={"objective": "survival:aft",
                                           "aft_loss_distribution": "normal",
                                           "aft_loss_distribution_scale": 1.2})
    case("dart_binary", data=binary(), rounds=12,
         params={"booster": "dart", "objective": "binary:logistic", "rate_drop": 0.3,
                 "skip_drop": 0.0, "sample_type": "weighted", "normalize_type": "forest"})
    case("dart_regression", data=reg, rounds=12,
         params={"booster": "dart", "objective": "reg:squarederror", "rate_drop": 0.25,
                 "one_drop": 1})

    def missing():
        X = features(rng, n, k, nan_rate=0.25)
        return X, signal(X) + rng.normal(scale=0.3, size=n), {}

    case("missing_values", data=missing, params={"objective": "reg:squarederror"})

    def multi_rf():
        X, y, extra = multi()
        return X, y, extra

    case("multi_softprob_parallel_tree", data=multi_rf, rounds=3,
         params={"objective": "multi:softprob", "num_class": 3, "num_parallel_tree": 3,
                 "subsample": 0.8, "colsample_bynode": 0.8})

    def categorical():
        X = features(rng, n, k)
        X[:, 1] = rng.integers(0, 6, size=n)  # partition splits (6 > max_cat_to_onehot)
        X[:, 3] = rng.integers(0, 3, size=n)  # one-hot splits
        effect = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.0])
        y = effect[X[:, 1].astype(int)] + (X[:, 3] == 2) * 1.5 + 0.3 * X[:, 0] + rng.normal(scale=0.2, size=n)
        return X, y, {"feature_types": ["q", "c", "q", "c", "q", "q"], "cat_cols": (1, 3)}

    case("categorical", data=categorical,
         params={"objective": "reg:squarederror", "tree_method": "hist", "max_cat_to_onehot": 4})

    def early():
        X, y, extra = binary()()
        return X, y, dict(extra, early_stopping=True)

    case("early_stopping", data=early, rounds=60,
         params={"objective": "binary:logistic", "eta": 0.5, "max_depth": 4})

    def big():
        X = features(rng, 3000, 10)
        X[rng.uniform(size=X.shape) < 0.03] = np.nan
        s = signal(X) + 0.5 * np.nan_to_num(X[:, 5]) * np.nan_to_num(X[:, 7])
        return X, (rng.uniform(size=3000) < 1 / (1 + np.exp(-s))).astype(np.float32), {"pred_rows": 1000}

    case("trees100", data=big, rounds=100, params={"objective": "binary:logistic", "max_depth": 6,
                                                   "eta": 0.1, "subsample": 0.8})
    case("gblinear_regression", data=missing, rounds=10,
         params={"booster": "gblinear", "objective": "reg:squarederror", "eta": 0.5,
                 "updater": "coord_descent"})  # shotgun is not deterministic
    case("gblinear_multi_softprob", data=multi, rounds=10,
         params={"booster": "gblinear", "objective": "multi:softprob", "num_class": 3,
                 "updater": "coord_descent"})
    for c in CASES:
        c["params"] = dict(base, **c["params"])
        if c["params"].get("booster") == "gblinear":
            del c["params"]["max_depth"]


def train(c, rng):
    X, y, extra = c["data"]()
    ft = extra.get("feature_types")
    kw = dict(feature_types=ft, enable_categorical=True) if ft else {}
    if "lower" in extra:
        d = xgb.DMatrix(X, **kw)
        d.set_float_info("label_lower_bound", extra["lower"])
        d.set_float_info("label_upper_bound", extra["upper"])
    else:
        d = xgb.DMatrix(X, label=y, **kw)
    if "group" in extra:
        d.set_group(extra["group"])
    rounds = c.get("rounds", 8)
    if extra.get("early_stopping"):
        Xv, yv, _ = c["data"]()
        dv = xgb.DMatrix(Xv, label=yv)
        bst = xgb.train(c["params"], d, rounds, evals=[(dv, "validation")],
                        early_stopping_rounds=5, verbose_eval=False)
    else:
        bst = xgb.train(c["params"], d, rounds)
    n_pred = extra.get("pred_rows", 120)
    rows = prediction_rows(rng, X.shape[1], n_pred, extra.get("cat_cols", ()))
    return bst, rows


def write_case(c, rng, manifest):
    name = c["name"]
    bst, rows = train(c, rng)
    blobs = {"json": save_model_bytes(bst, ".json"), "ubj": save_model_bytes(bst, ".ubj")}
    try:
        blobs["bin"] = save_model_bytes(bst, ".bin")  # legacy binary format
    except xgb.core.XGBoostError:
        pass  # categorical splits cannot be saved in the legacy format
    # Predict as SageMaker's container does: a Booster loaded from the file,
    # a DMatrix with NaN as missing, ntree_limit=best_ntree_limit.
    loaded = xgb.Booster()
    loaded.load_model(bytearray(blobs["json"]))
    limit = getattr(loaded, "best_ntree_limit", 0)
    d = xgb.DMatrix(rows)
    out = {
        "name": name,
        "objective": c["params"]["objective"],
        "booster": c["params"].get("booster", "gbtree"),
        "best_ntree_limit": limit,
        "rows": [f32list(r) for r in rows],
        "margin": f32list(loaded.predict(d, output_margin=True, ntree_limit=limit)),
        "pred": f32list(loaded.predict(d, ntree_limit=limit)),
        "margin_all_trees": f32list(loaded.predict(d, output_margin=True)),
        "pred_all_trees": f32list(loaded.predict(d)),
    }
    for fmt, blob in blobs.items():
        gz_write(os.path.join(GOLDEN, f"{name}.{fmt}.gz"), blob)
        other = xgb.Booster()
        other.load_model(bytearray(blob))
        assert np.array_equal(other.predict(d, ntree_limit=limit), loaded.predict(d, ntree_limit=limit),
                              equal_nan=True), (name, fmt)
    gz_write(os.path.join(GOLDEN, f"{name}.cases.json.gz"), json.dumps(out).encode())
    manifest["cases"].append({"name": name, "formats": sorted(blobs), "objective": out["objective"],
                              "booster": out["booster"], "rows": len(rows),
                              "best_ntree_limit": limit})


def write_example():
    """A tiny house-price regression: price in thousands of dollars from
    floor area (m^2), bedrooms, age (years) and distance to the centre (km)."""
    rng = np.random.default_rng(42)
    n = 2000
    area = rng.uniform(30, 250, n)
    bedrooms = np.clip(np.round(area / 40 + rng.normal(0, 0.7, n)), 1, 6)
    age = rng.uniform(0, 80, n)
    dist = rng.uniform(0.5, 40, n)
    price = 3.2 * area + 15 * bedrooms - 1.1 * age - 4.0 * dist + 120 + rng.normal(0, 20, n)
    X = np.column_stack([area, bedrooms, age, dist]).astype(np.float32)
    bst = xgb.train({"objective": "reg:squarederror", "max_depth": 4, "eta": 0.3, "seed": 1},
                    xgb.DMatrix(X, label=price), 30)
    blob = save_model_bytes(bst, ".ubj")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as g:
        with tarfile.open(fileobj=g, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo("xgboost-model")
            info.size, info.mode, info.mtime = len(blob), 0o644, 0
            tar.addfile(info, io.BytesIO(blob))
    with open(os.path.join(EXAMPLE, "model.tar.gz"), "wb") as f:
        f.write(buf.getvalue())
    sample = np.array([[120, 3, 15, 8.5]], dtype=np.float32)
    with open(os.path.join(EXAMPLE, "sample.csv"), "w") as f:
        f.write("120,3,15,8.5\n")
    pred = bst.predict(xgb.DMatrix(sample))[0]
    with open(os.path.join(EXAMPLE, "expected.txt"), "w") as f:
        f.write(repr(float(pred)) + "\n")
    print(f"example: sample 120,3,15,8.5 -> {float(pred)!r}")


def main():
    os.makedirs(GOLDEN, exist_ok=True)
    for f in os.listdir(GOLDEN):
        os.remove(os.path.join(GOLDEN, f))
    build_cases()
    rng = np.random.default_rng(11)
    manifest = {"xgboost_version": xgb.__version__, "numpy_version": np.__version__, "cases": []}
    for c in CASES:
        write_case(c, rng, manifest)
        print("wrote", c["name"])
    with open(os.path.join(GOLDEN, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    write_example()


if __name__ == "__main__":
    main()
