"""Spike for issue 20: which int8 path and which runtime make a trained mlpipe network smaller and
faster per row on this CPU. Trains cnn, rnn, transformer on digits (a few epochs), then measures
fp32 eager, torch.ao dynamic int8, torchao int8 (eager), ONNX fp32 in onnxruntime, and ONNX int8
(onnxruntime's dynamic quantization): accuracy on the test rows, size, p50/p95 at batch 1, rows/s at 256."""
import io, json, os, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, torch
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/main")
os.environ.setdefault("MLPIPE_ROOT", "/tmp/exp/spike/project")
from tasks.data.loading import load
from tasks.data.splitting import split
from tasks.infra.settings import Settings
from tasks.training.network import train
from tasks.types import TrainConfig
from models.preprocessing import model_inputs
from tasks.infra.params import load_params

torch.set_num_threads(1)
root = Path(os.environ["MLPIPE_ROOT"]); root.mkdir(parents=True, exist_ok=True)
data = load("digits", Settings(root=root))
parts = split(data.frame["label"].to_numpy(), 0.2, 0.1, split_seed=0, seed=1)
test = data.frame.iloc[parts.test]
labels = test["label"].to_numpy()

def latency(fn, x1, xb):
    for _ in range(20): fn(x1)
    times = []
    for i in range(300):
        t = time.perf_counter(); fn(x1[i % len(x1):i % len(x1) + 1] if False else x1); times.append(time.perf_counter() - t)
    t = time.perf_counter(); n = 0
    while time.perf_counter() - t < 2: fn(xb); n += len(xb)
    return np.percentile(times, 50) * 1e3, np.percentile(times, 95) * 1e3, n / (time.perf_counter() - t)

def size_of(module):
    buffer = io.BytesIO(); torch.save(module.state_dict(), buffer); return buffer.tell()

results = []
project = load_params(Settings(root=root))
for family in sys.argv[1:] or ["cnn", "rnn", "transformer"]:
    from tasks.training.config import train_config  # noqa
    config = train_config(project, data, family, seed=1, max_epochs=6) if False else None
    cfg = TrainConfig(family=family, max_epochs=6, batch_size=64, patience=3, seed=1, optimiser={"learning_rate": 0.003})
    model = train(data, parts, cfg, root / "outputs" / family)
    net = model.network.eval()
    x = model_inputs(test, model.preprocessing).astype(np.float32)
    x1, xb = x[:1], np.concatenate([x] * (256 // len(x) + 1))[:256]
    variants = {}
    def torch_fn(m):
        return lambda a: m(torch.as_tensor(a)).detach()
    variants["fp32 eager"] = (torch_fn(net), size_of(net))
    from torch.ao.quantization import quantize_dynamic
    q = quantize_dynamic(net, {torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU}, dtype=torch.qint8)
    variants["torch.ao dynamic int8"] = (torch_fn(q), size_of(q))
    try:
        import copy
        from torchao.quantization import quantize_, Int8DynamicActivationInt8WeightConfig
        t = copy.deepcopy(net); quantize_(t, Int8DynamicActivationInt8WeightConfig())
        variants["torchao int8 dyn (eager)"] = (torch_fn(t), size_of(t))
    except Exception as e:
        print(family, "torchao failed:", type(e).__name__, str(e)[:200])
    import onnxruntime as ort
    path = Path(tempfile.mkdtemp()) / f"{family}.onnx"
    try:
        torch.onnx.export(net, (torch.as_tensor(x1),), str(path), input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    except Exception as e:
        print(family, "onnx export failed:", type(e).__name__, str(e)[:300]); path = None
    if path:
        opts = ort.SessionOptions(); opts.intra_op_num_threads = 1
        s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        variants["onnx fp32 (ort)"] = (lambda a, s=s: s.run(None, {"x": a})[0], path.stat().st_size)
        from onnxruntime.quantization import quantize_dynamic as ort_quant, QuantType
        qpath = path.with_name(f"{family}-int8.onnx")
        try:
            ort_quant(str(path), str(qpath), weight_type=QuantType.QInt8)
            s8 = ort.InferenceSession(str(qpath), opts, providers=["CPUExecutionProvider"])
            variants["onnx int8 (ort dynamic)"] = (lambda a, s=s8: s.run(None, {"x": a})[0], qpath.stat().st_size)
        except Exception as e:
            print(family, "ort quant failed:", type(e).__name__, str(e)[:300])
    base_pred = None
    for name, (fn, size) in variants.items():
        try:
            pred = np.asarray(fn(x)).argmax(1)
        except Exception as e:
            print(family, name, "failed to run:", type(e).__name__, str(e)[:200]); continue
        if base_pred is None: base_pred = pred
        acc = float((pred == labels).mean()); agree = float((pred == base_pred).mean())
        p50, p95, tput = latency(fn, x1, xb)
        row = dict(family=family, variant=name, accuracy=round(acc, 4), agree=round(agree, 4), kb=round(size/1024, 1), p50_ms=round(p50, 3), p95_ms=round(p95, 3), rows_s=round(tput))
        print(json.dumps(row)); results.append(row)
Path(f"/tmp/exp/spike/results-{'-'.join(sys.argv[1:]) or 'all'}.json").write_text(json.dumps(results, indent=1))
