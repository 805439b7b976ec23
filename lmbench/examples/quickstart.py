"""Example run of the engine: LM on scikit-learn's bundled wine data, seed-style API.

Writes the seed's pickle and the four-panel training report under ``outputs/quickstart``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader

import lmbench


def main(out_dir: str = "outputs/quickstart") -> None:
    torch.manual_seed(0)
    x, labels = load_wine(return_X_y=True)
    y = np.eye(3)[labels]
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.3, random_state=0,
                                              stratify=labels)
    scaler = StandardScaler().fit(x_tr)
    x_tr, x_va = scaler.transform(x_tr), scaler.transform(x_va)
    model = nn.Sequential(nn.Linear(13, 8), nn.Tanh(), nn.Linear(8, 3), nn.Softmax(dim=1))
    val_loader = DataLoader(lmbench.TableLoader(x_va, y_va), batch_size=1000)
    loss, val, mu, times = lmbench.train_levenberg(
        model, torch.tensor(x_tr, dtype=torch.float32), torch.tensor(y_tr, dtype=torch.float32),
        nn.MSELoss(), val_loader=val_loader, min_error=1e-3, max_epochs=50,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "history.pkl").open("wb") as fh:
        pickle.dump({"loss": loss, "val": val, "mu": mu, "time": times}, fh)
    lmbench.plot_train_report(out / "history.pkl", out=out / "report.png")
    with torch.no_grad():
        pred = model(torch.tensor(x_va, dtype=torch.float32)).argmax(1).numpy()
    accuracy = float((pred == y_va.argmax(1)).mean())
    print(f"weights={lmbench.get_weights_count(model)} epochs={len(loss) - 1} "
          f"train_mse={loss[-1]:.4g} val_mse={val[-1]:.4g} val_accuracy={accuracy:.3f} "
          f"time={sum(times):.2f}s -> {out}/report.png")


if __name__ == "__main__":
    main()
