"""scikit-learn's default LogisticRegression() on the matrices examples/fraud/logistic-baseline.ts
exported with --export DIR (the pipeline's scaled inputs, time-ordered split): test AUPRC per seed.

    python3 examples/fraud/sklearn_baseline.py DIR        # needs python3-sklearn (Debian) or scikit-learn
"""
import glob
import json
import os
import sys
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

out = []
for train_file in sorted(glob.glob(os.path.join(sys.argv[1], "seed*-train.csv"))):
    seed = int(os.path.basename(train_file)[4:].split("-")[0])
    train = np.loadtxt(train_file, delimiter=",", dtype=np.float64)
    test = np.loadtxt(train_file.replace("-train", "-test"), delimiter=",", dtype=np.float64)
    row = {"seed": seed}
    for key, model in (("default", LogisticRegression()), ("converged", LogisticRegression(max_iter=10000, tol=1e-10))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(train[:, :-1], train[:, -1])
        p = model.predict_proba(test[:, :-1])[:, 1]
        row[key] = {
            "auprc": float(average_precision_score(test[:, -1], p)),
            "iterations": int(model.n_iter_[0]),
            "convergenceWarning": any(issubclass(w.category, ConvergenceWarning) for w in caught),
        }
    out.append(row)
    print(json.dumps(row), file=sys.stderr)
print(json.dumps({"sklearn": __import__("sklearn").__version__, "seeds": out,
                  "meanAuprc": {k: float(np.mean([r[k]["auprc"] for r in out])) for k in ("default", "converged")}}, indent=1))
