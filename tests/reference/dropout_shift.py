# Does PyTorch show mtlc's train/eval shift with the DualTaskModel's funnel dropout? A PyTorch copy of
# the reduced-width model of docs/results.md (variant A: every dropout as in the book; FUNNEL_P 0 is
# A without the funnel's dropout), trained on FD001 windows of 30 (17 features z-scored on the
# training engines, 80/20 split by engine, RUL capped at 125), batch 64, AdamW 1e-3 / 1e-4,
# 0.5 MSE + 0.5 CE, clipping at 1.0, no schedule or weight average. Prints per epoch the
# training-mode RMSE (mean over the epoch's batches), the evaluation-mode RMSE on 4,000 training
# windows and on the validation engines. Not part of the test suite (it needs python3-torch and
# the data); its output is quoted in docs/results.md.
import sys, torch, numpy as np
# usage: python3 dropout_shift.py FUNNEL_P EPOCHS SEED TRAIN_FD001.txt (needs python3-torch)
seed = int(sys.argv[3]); torch.manual_seed(seed); np.random.seed(0); torch.set_num_threads(1)
funnel_p = float(sys.argv[1]); epochs = int(sys.argv[2])
rows = np.loadtxt(sys.argv[4])
cols = [2, 3, 4, 6, 7, 8, 11, 12, 13, 15, 16, 17, 18, 19, 21, 24, 25]  # settings + 14 sensors
eng = rows[:, 0].astype(int); cyc = rows[:, 1]
maxc = {e: cyc[eng == e].max() for e in np.unique(eng)}
rul = np.minimum(125, np.array([maxc[e] for e in eng]) - cyc)
health = np.where(rul > 80, 0, np.where(rul > 30, 1, 2))
engines = np.unique(eng); perm = np.random.permutation(engines); val_e = set(perm[:20])
X = rows[:, cols]
tr_mask = np.array([e not in val_e for e in eng])
mu, sd = X[tr_mask].mean(0), X[tr_mask].std(0); sd[sd == 0] = 1
X = (X - mu) / sd
def windows(sel):
    xs, ys, hs = [], [], []
    for e in engines:
        if (e in val_e) != sel: continue
        idx = np.where(eng == e)[0]
        for end in range(30, len(idx) + 1):
            w = idx[end - 30:end]; xs.append(X[w]); ys.append(rul[w[-1]]); hs.append(health[w[-1]])
    return torch.tensor(np.array(xs), dtype=torch.float32), torch.tensor(ys, dtype=torch.float32), torch.tensor(hs)
Xtr, ytr, htr = windows(False); Xva, yva, hva = windows(True)
class M(torch.nn.Module):
    def __init__(s):
        super().__init__()
        c = []
        for i, o in [(17, 16), (16, 32), (32, 16)]:
            c += [torch.nn.Conv1d(i, o, 3, padding=1, bias=False), torch.nn.BatchNorm1d(o), torch.nn.ReLU(), torch.nn.Dropout(0.15)]
        s.cnn = torch.nn.Sequential(*c)
        s.lstm = torch.nn.LSTM(16, 32, 2, batch_first=True, bidirectional=True, dropout=0.3)
        s.att = torch.nn.MultiheadAttention(64, 8, dropout=0.1, batch_first=True)
        s.ln = torch.nn.LayerNorm(64)
        f = []
        for i, o in [(64, 64), (64, 32), (32, 16)]:
            f += [torch.nn.Linear(i, o), torch.nn.ReLU()] + ([torch.nn.Dropout(funnel_p)] if funnel_p > 0 else [])
        s.funnel = torch.nn.Sequential(*f)
        s.rul = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                    torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1), torch.nn.ReLU())
        s.health = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    def forward(s, x):
        h = s.cnn(x.transpose(1, 2)).transpose(1, 2)
        h, _ = s.lstm(h)
        a, _ = s.att(h, h, h, need_weights=False)
        h = s.ln(h + a)[:, -1]
        z = s.funnel(h)
        return s.rul(z).squeeze(1), s.health(z)
m = M(); opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-4)
for ep in range(1, epochs + 1):
    m.train(); p = torch.randperm(len(Xtr)); se = 0.0; nb = 0
    for i in range(0, len(Xtr), 64):
        b = p[i:i + 64]; r, hl = m(Xtr[b])
        mse = torch.nn.functional.mse_loss(r, ytr[b]); loss = 0.5 * mse + 0.5 * torch.nn.functional.cross_entropy(hl, htr[b])
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
        se += mse.item(); nb += 1
    m.eval()
    with torch.no_grad():
        r, _ = m(Xva); vr = torch.sqrt(((r - yva) ** 2).mean()).item()
        rt, _ = m(Xtr[:4000]); er = torch.sqrt(((rt - ytr[:4000]) ** 2).mean()).item()
    print(f"funnel dropout {funnel_p}: epoch {ep}: train RMSE (training mode) {np.sqrt(se / nb):.1f}, "
          f"eval-mode RMSE on 4000 training windows {er:.1f}, validation RMSE {vr:.2f}", flush=True)
