"""The yardstick of bench/pipeline_cost.py: what a person would write instead of `mlpipe run
--models cnn --max-epochs 1` on digits, as one plain PyTorch script. It reads the 8x8 digits,
holds out a stratified fifth for testing, trains a small CNN for one epoch (AdamW, batches of
64), scores the test rows and saves the weights: no validation, tracking, registry or checks."""

import sys
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

torch.manual_seed(0)
x, y = load_digits(return_X_y=True)
x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
y = torch.tensor(y)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
network = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1),
    nn.ReLU(),
    nn.Conv2d(32, 64, 3, padding=1),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Dropout(0.25),
    nn.Flatten(),
    nn.Linear(64 * 4 * 4, 128),
    nn.ReLU(),
    nn.Linear(128, 10),
)
optimiser = torch.optim.AdamW(network.parameters(), lr=0.005, weight_decay=0.0001)
network.train()
for batch in torch.randperm(len(x_train)).split(64):
    optimiser.zero_grad()
    nn.functional.cross_entropy(network(x_train[batch]), y_train[batch]).backward()
    optimiser.step()
network.eval()
with torch.no_grad():
    accuracy = (network(x_test).argmax(1) == y_test).float().mean().item()
out = Path(sys.argv[1] if len(sys.argv) > 1 else "plain-cnn.pt")
torch.save(network.state_dict(), out)
print(f"test accuracy {accuracy:.4f}; weights in {out}")
