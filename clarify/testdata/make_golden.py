#!/usr/bin/python3
"""Regenerate the golden data of the clarify package's tests.

Run by hand (not by CI), from the repository root, with Debian's XGBoost and
NumPy:

    apt-get install -y python3-xgboost
    /usr/bin/python3 clarify/testdata/make_golden.py

It writes, under clarify/testdata/:

  xgb_MODEL.json.gz   small XGBoost models (JSON, gzipped) trained here:
                      a regression, a binary classifier and a 3-class
                      multi:softprob classifier;
  xgb_golden.json     for each model: the SHAP baseline rows, the records to
                      explain, XGBoost's predictions for them, and their exact
                      Shapley values computed by brute force over every
                      coalition: v(S) = link(mean over baseline rows b of
                      f(record on S, b elsewhere)), phi_i = sum over S not
                      holding i of |S|!(M-|S|-1)!/M! (v(S+i) - v(S)), with
                      link the identity and, for the classifiers, the logit
                      (UseLogit);
  numpy_random.json.gz  NumPy's legacy generator's draws after np.random.seed
                      (random_sample, choice with p, permutation) and np.sum
                      of float64 arrays, which the Go reimplementation must
                      reproduce bit for bit (it samples coalitions as shap's
                      KernelExplainer does after np.random.seed(Seed)); and
                      the coalitions and kernel weights that KernelExplainer's
                      enumerate-then-sample procedure yields with NumPy's own
                      arithmetic and draws, restated in coalitions() below
                      (shap is not packaged in Debian).

shap itself is not packaged in Debian; the exact Shapley values are what
Kernel SHAP must return when every coalition is enumerated, which the Go
tests arrange. Feature values are multiples of 1/64, so that their decimal
text, float32 and float64 are all the same number in Go and in XGBoost.
"""
import gzip
import itertools
import json
import math
import os
import tempfile

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))


def gz_write(path, data):
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
            g.write(data)


def model_json(bst):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "model.json")
        bst.save_model(p)
        with open(p, "rb") as f:
            return f.read()


def q(a):
    """Round to multiples of 1/64 (exact in float32 and in short decimals)."""
    return np.round(np.asarray(a, dtype=np.float64) * 64) / 64


def signal(X):
    return 0.8 * X[:, 0] - 1.5 * X[:, 1] + np.sin(2 * X[:, 2]) + 0.7 * X[:, 1] * X[:, 3]


def predict(bst, rows):
    out = bst.predict(xgb.DMatrix(np.asarray(rows, dtype=np.float32)))
    out = np.asarray(out, dtype=np.float64)
    return out.reshape(len(rows), -1)


def logit(p):
    return np.log(p / (1 - p))


def exact_shapley(bst, x, base, link):
    """Shapley values of v(S) = link(mean_b f(x on S, b elsewhere))."""
    m, nb = len(x), len(base)
    rows = []
    for s in range(2 ** m):
        for b in base:
            z = np.array(b, dtype=np.float64)
            for i in range(m):
                if s >> i & 1:
                    z[i] = x[i]
            rows.append(z)
    y = predict(bst, rows)
    d = y.shape[1]
    w = 1.0 / nb
    v = np.zeros((2 ** m, d))
    for s in range(2 ** m):
        acc = np.zeros(d)
        for j in range(nb):
            acc += y[s * nb + j] * w
        v[s] = link(acc)
    phi = np.zeros((m, d))
    fact = math.factorial
    for i in range(m):
        for s in range(2 ** m):
            if s >> i & 1:
                continue
            k = bin(s).count("1")
            wt = fact(k) * fact(m - k - 1) / fact(m)
            phi[i] += wt * (v[s | 1 << i] - v[s])
    # Efficiency, as a check of this script.
    assert np.allclose(phi.sum(0), v[-1] - v[0], atol=1e-12), (phi.sum(0), v[-1] - v[0])
    return phi, v[-1], v[0]


def build_models():
    rng = np.random.default_rng(11)
    n = 500
    cases = []

    X = q(rng.normal(size=(n, 5)))
    y = signal(X) + rng.normal(scale=0.2, size=n)
    bst = xgb.train({"objective": "reg:squarederror", "max_depth": 3, "eta": 0.3, "seed": 1},
                    xgb.DMatrix(X.astype(np.float32), label=y), 25)
    cases.append(("regression", bst, 5, [False]))

    X = q(rng.normal(size=(n, 5)))
    y = (signal(X) + rng.normal(scale=0.5, size=n) > 0).astype(np.float32)
    bst = xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": 1},
                    xgb.DMatrix(X.astype(np.float32), label=y), 25)
    cases.append(("binary", bst, 5, [False, True]))

    X = q(rng.normal(size=(n, 4)))
    s = signal(np.hstack([X, np.zeros((n, 1))]))
    y = np.digitize(s + rng.normal(scale=0.3, size=n), [-0.7, 0.7]).astype(np.float32)
    bst = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "eta": 0.3, "seed": 1},
                    xgb.DMatrix(X.astype(np.float32), label=y), 15)
    cases.append(("multiclass", bst, 4, [False, True]))
    return rng, cases


def golden_models():
    rng, cases = build_models()
    out = {}
    for name, bst, m, logits in cases:
        gz_write(os.path.join(HERE, "xgb_%s.json.gz" % name), model_json(bst))
        base = q(rng.normal(size=(3, m)))
        base[:, m - 1] = 0.25  # every baseline row agrees on the last feature
        records = q(rng.normal(size=(4, m)) * 1.3)
        records[0, m - 1] = 0.25  # so it does not vary for the first record
        case = {
            "features": m,
            "baseline": base.tolist(),
            "records": records.tolist(),
            "predictions": predict(bst, records).tolist(),
            "baseline_predictions": predict(bst, base).tolist(),
            "explanations": {},
        }
        for use_logit in logits:
            link = logit if use_logit else (lambda p: p)
            phis = []
            for x in records:
                phi, _, _ = exact_shapley(bst, x, base, link)
                phis.append(phi.tolist())
            case["explanations"]["logit" if use_logit else "identity"] = phis
        out[name] = case
    with open(os.path.join(HERE, "xgb_golden.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


def coalitions(m, nsamples, seed):
    """KernelExplainer's coalitions for m varying features (restated).

    Subset sizes 1..ceil((m-1)/2), each paired with its complement while
    s < m-s, weighted by the Shapley kernel; sizes whose subsets all fit the
    remaining budget are enumerated in itertools order, the rest of the
    budget is drawn after np.random.seed(seed): a size by weight (one
    np.random.choice call for 4x the budget), then a random subset of it
    (np.random.permutation), its complement next; a repeated draw adds 1
    to the weight of the first instead of a new row. The drawn weights are
    then scaled to the kernel weight left over.
    """
    from scipy.special import binom
    np.random.seed(seed)
    if nsamples is None:
        nsamples = 2 * m + 2 ** 11
    if m <= 30:
        nsamples = min(nsamples, 2 ** m - 2)
    sizes = int(np.ceil((m - 1) / 2.0))
    paired = int(np.floor((m - 1) / 2.0))
    wv = np.array([(m - 1.0) / (s * (m - s)) for s in range(1, sizes + 1)])
    wv[:paired] *= 2
    wv /= np.sum(wv)
    masks, weights = [], []
    full, left, rest = 0, nsamples, wv.copy()
    for s in range(1, sizes + 1):
        n = binom(m, s) * (2 if s <= paired else 1)
        if left * rest[s - 1] / n < 1.0 - 1e-8:
            break
        full += 1
        left -= n
        if rest[s - 1] < 1.0:
            rest /= (1 - rest[s - 1])
        w = wv[s - 1] / binom(m, s) / (2.0 if s <= paired else 1.0)
        for idx in itertools.combinations(range(m), s):
            mk = np.zeros(m)
            mk[list(idx)] = 1
            masks.append(mk)
            weights.append(w)
            if s <= paired:
                masks.append(1 - mk)
                weights.append(w)
    fixed = len(masks)
    todo = nsamples - fixed
    if full != sizes:
        p = wv.copy()
        p[:paired] /= 2
        p = p[full:]
        p /= np.sum(p)
        draws = np.random.choice(len(p), 4 * todo, p=p)
        first = {}
        for ind in draws:
            if todo <= 0:
                break
            s = ind + full + 1
            mk = np.zeros(m)
            mk[np.random.permutation(m)[:s]] = 1
            key = tuple(mk)
            new = key not in first
            if new:
                first[key] = len(masks)
                masks.append(mk)
                weights.append(1.0)
                todo -= 1
            else:
                weights[first[key]] += 1.0
            if todo > 0 and s <= paired:
                if new:
                    masks.append(1 - mk)
                    weights.append(1.0)
                    todo -= 1
                else:
                    weights[first[key] + 1] += 1.0
        weights = np.array(weights)
        weights[fixed:] *= np.sum(wv[full:]) / weights[fixed:].sum()
    return {"m": m, "nsamples": nsamples, "seed": seed,
            "masks": ["".join(str(int(v)) for v in mk) for mk in masks],
            "weights": [float(w) for w in weights]}


def golden_random():
    seeds = [0, 1, 42, 123456789, 2 ** 32 - 1]
    p = np.array([0.4, 0.25, 0.2, 0.1, 0.05])
    draws = []
    for s in seeds:
        np.random.seed(s)
        d = {"seed": s}
        d["random_sample"] = np.random.random_sample(7).tolist()
        d["choice"] = np.random.choice(len(p), 40, p=p).tolist()
        d["permutations"] = [np.random.permutation(k).tolist() for k in (1, 2, 3, 7, 16, 33, 100)]
        # shap's pattern: one choice, then a permutation per draw.
        d["choice2"] = np.random.choice(3, 12, p=[0.5, 0.3, 0.2]).tolist()
        d["permutations2"] = [np.random.permutation(9).tolist() for _ in range(5)]
        draws.append(d)
    rng = np.random.default_rng(5)
    sums = []
    for k in (1, 2, 7, 8, 9, 15, 16, 17, 100, 127, 128, 129, 130, 300, 517):
        a = rng.normal(size=k) * 10.0 ** rng.integers(-3, 4, size=k)
        sums.append({"values": a.tolist(), "sum": float(np.sum(a))})
    coal = [coalitions(m, n, seed) for m, n, seed in
            ((7, 50, 3), (10, 100, 0), (13, 500, 1), (20, None, 42), (6, 20, 2 ** 32 - 1))]
    gz_write(os.path.join(HERE, "numpy_random.json.gz"),
             json.dumps({"p": p.tolist(), "draws": draws, "sums": sums, "coalitions": coal}).encode() + b"\n")


if __name__ == "__main__":
    golden_models()
    golden_random()
