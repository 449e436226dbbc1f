"""How far maru's token estimator is from the real tokenizer, on real Korean and English text.

    .venv/bin/python bench/token_estimator.py [--fit] [--quick] [--tiktoken-dir DIR] [--fetch]

The estimator (``maru.usage.estimate_tokens``) counts characters by class and weighs them; this
script measures its mean absolute percentage error (MAPE) per text against OpenAI's BPE
tokenizers, ``o200k_base`` (gpt-4o and later) and ``cl100k_base`` (gpt-4, gpt-3.5):

- Korean: the 964 paragraphs (and 5,774 questions) of KorQuAD 1.0 dev, ``../shared/data/korquad_v1_dev``
- English: the 240 paragraphs (and 1,190 questions) of XQuAD-en, ``../shared/data/xquad_en``
- Chinese / Japanese: the sample texts of CPython's ``test/cjkencodings`` (line by line), when the
  interpreter ships its test package.

The weights in ``maru/usage/tokens.py`` were fitted on the even-numbered texts; the figures are
reported on the odd-numbered (held-out) texts and on all. ``--fit`` refits and prints the weights.

The tokenizer files are not downloaded by maru. They are found like ``maru.usage`` finds them:
``MARU_TIKTOKEN_FILE``, or tiktoken's cache (``TIKTOKEN_CACHE_DIR``; ``--tiktoken-dir`` sets it).
``--fetch`` gets them once: it asks pip for the ``litellm`` wheel (which bundles OpenAI's files),
extracts ``o200k_base`` and ``cl100k_base``, checks their SHA-256 against the hashes tiktoken
expects, and stores them in tiktoken's cache. Without them the script says so and skips.
The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KORQUAD = DATA / "korquad_v1_dev" / "KorQuAD_v1.0_dev.json"
XQUAD = DATA / "xquad_en" / "xquad.en.json"
PROFILES = {"o200k": ("o200k_base", "gpt-4o"), "cl100k": ("cl100k_base", "gpt-4")}


def squad_texts(path: Path) -> tuple[list[str], list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs = [p["context"] for article in data for p in article["paragraphs"]]
    questions = [q["question"] for article in data for p in article["paragraphs"] for q in p["qas"]]
    return paragraphs, questions


def cjk_lines() -> list[str]:
    folder = Path(sysconfig.get_paths()["stdlib"]) / "test" / "cjkencodings"
    lines: list[str] = []
    for name in ("gb2312-utf8.txt", "big5-utf8.txt", "euc_jp-utf8.txt"):
        path = folder / name
        if path.is_file():
            lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines


def fetch_files() -> Path:
    """Put OpenAI's o200k_base and cl100k_base files (hash-checked) into tiktoken's cache dir."""
    from maru.usage import tokens

    cache = tokens._tiktoken_cache_dir() or Path(tempfile.gettempdir()) / "data-gym-cache"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print("fetch: pip download --no-deps litellm (it bundles OpenAI's tiktoken files) …")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "litellm", "-d", tmp], check=True
        )
        wheel = next(Path(tmp).glob("litellm-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            for encoding in ("o200k_base", "cl100k_base"):
                spec = tokens._ENCODINGS[encoding]
                key = hashlib.sha1(spec.url.encode()).hexdigest()
                member = next((n for n in names if n.endswith("/" + key)), None)
                if member is None:
                    raise SystemExit(f"fetch: {wheel.name} has no {encoding} file ({key})")
                data = zf.read(member)
                digest = hashlib.sha256(data).hexdigest()
                if digest != spec.sha256:
                    raise SystemExit(f"fetch: {encoding} from {wheel.name} has SHA-256 {digest}, expected {spec.sha256}")
                (cache / key).write_bytes(data)
                print(f"fetch: {encoding} -> {cache / key} (SHA-256 verified)")
    return cache


def mape(estimates: list[int], truths: list[int]) -> float:
    pairs = [(e, t) for e, t in zip(estimates, truths, strict=True) if t > 0]
    return 100.0 * statistics.fmean(abs(e - t) / t for e, t in pairs)


def fit(features: list[tuple[int, ...]], truths: list[int], fixed: dict[int, float]) -> list[float]:
    """Weighted least squares on relative error (weights 1/truth²); ``fixed`` weights are held."""
    n = len(features[0])
    free = [i for i in range(n) if i not in fixed]
    m = len(free)
    a = [[0.0] * m for _ in range(m)]
    b = [0.0] * m
    for f, y in zip(features, truths, strict=True):
        if y <= 0:
            continue
        w = 1.0 / (y * y)
        target = y - sum(v * f[i] for i, v in fixed.items())
        x = [f[i] for i in free]
        for r in range(m):
            b[r] += w * x[r] * target
            for c in range(m):
                a[r][c] += w * x[r] * x[c]
    for r in range(m):
        a[r][r] += 1e-9 * (a[r][r] or 1.0)
    # Gauss-Jordan elimination with partial pivoting
    rows = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(m):
        pivot = max(range(col, m), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        if abs(rows[col][col]) < 1e-15:
            continue
        for r in range(m):
            if r != col:
                factor = rows[r][col] / rows[col][col]
                for c in range(col, m + 1):
                    rows[r][c] -= factor * rows[col][c]
    solved = {free[r]: (rows[r][m] / rows[r][r] if abs(rows[r][r]) > 1e-15 else 0.0) for r in range(m)}
    return [fixed.get(i, solved.get(i, 0.0)) for i in range(n)]


def per_call_us(fn, items: list[str], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items) * 1e6


EMOJI = "😀😂🥲😍😊👍🙏🎉🔥❤🚀✅🤔😭💯👀✨🙌😅🤖📌⚠🌟💡📈"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", action="store_true", help="refit the weights and print them")
    parser.add_argument("--quick", action="store_true", help="fewer timing rounds")
    parser.add_argument("--tiktoken-dir", help="tiktoken cache folder holding the encoding files")
    parser.add_argument("--fetch", action="store_true", help="get the encoding files (see the docstring)")
    args = parser.parse_args()

    if args.tiktoken_dir:
        os.environ["TIKTOKEN_CACHE_DIR"] = args.tiktoken_dir
    if args.fetch:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(fetch_files())

    from maru.usage import tokens

    tokens.clear_tokenizer_cache()
    if not KORQUAD.is_file() or not XQUAD.is_file():
        print(f"token_estimator: the data is missing ({KORQUAD} / {XQUAD}); skipped")
        print(json.dumps({"skipped": "data not found"}))
        return

    ko_p, ko_q = squad_texts(KORQUAD)
    en_p, en_q = squad_texts(XQUAD)
    cjk = cjk_lines()
    sets = {"ko_paragraph": ko_p, "en_paragraph": en_p, "ko_question": ko_q, "en_question": en_q}
    if cjk:
        sets["zh_ja_line"] = cjk
    features = {name: [tokens._features(t) for t in texts] for name, texts in sets.items()}

    figures: dict[str, float | int | str] = {
        "ko_paragraphs": len(ko_p),
        "en_paragraphs": len(en_p),
    }
    found_any = False
    for profile, (encoding, model) in PROFILES.items():
        tokenizer = tokens.get_tokenizer(model)
        if not tokenizer.exact:
            print(f"{encoding}: no tokenizer file found (MARU_TIKTOKEN_FILE / TIKTOKEN_CACHE_DIR); skipped")
            continue
        found_any = True
        truths = {name: [tokenizer.count(t) for t in texts] for name, texts in sets.items()}

        weights = list(tokens._PROFILES[profile])
        if args.fit:
            train_f: list[tuple[int, ...]] = []
            train_y: list[int] = []
            for name in sets:
                f, y = features[name][0::2], truths[name][0::2]
                if name.endswith("question"):  # as many questions as paragraphs, not 5×
                    paragraphs = len(features[name.replace("question", "paragraph")]) // 2
                    step = max(1, len(f) // paragraphs)
                    f, y = f[::step], y[::step]
                if name == "zh_ja_line":  # a few lines: weigh them up
                    f, y = f * 4, y * 4
                train_f += f
                train_y += y
            emoji = statistics.fmean(tokenizer.count(ch) for ch in EMOJI)
            idx = {k: i for i, k in enumerate(tokens._FEATURES)}
            weights = fit(train_f, train_y, {idx["e"]: emoji, idx["n"]: 1.0, idx["o"]: 1.0})
            print(f"fitted {profile} weights {tokens._FEATURES}:")
            print("    (" + ", ".join(f"{w:.4f}" for w in weights) + "),")
        w = tuple(weights)

        print(f"\n== estimator ({profile} profile) vs tiktoken {encoding}: mean absolute % error per text")
        print(
            f"{'texts':<14} {'n':>6} {'held-out MAPE':>14} {'all MAPE':>9} {'sum est/real':>13} "
            f"{'chars/token':>12} {'len/4 MAPE':>11}"
        )
        for name, texts in sets.items():
            est = [tokens._estimate(t, w) for t in texts]
            real = truths[name]
            held = mape(est[1::2], real[1::2])
            whole = mape(est, real)
            ratio = sum(est) / sum(real)
            cpt = sum(map(len, texts)) / sum(real)
            naive = mape([max(1, round(len(t) / 4)) for t in texts], real)  # the "4 chars per token" rule
            print(
                f"{name:<14} {len(texts):>6} {held:>13.2f}% {whole:>8.2f}% {ratio:>13.3f} {cpt:>12.2f} {naive:>10.1f}%"
            )
            figures[f"{name}_len_div4_mape_pct_{profile}"] = round(naive, 1)
            figures[f"{name}_mape_pct_{profile}"] = round(held, 2)
            figures[f"{name}_mape_all_pct_{profile}"] = round(whole, 2)
            figures[f"{name}_sum_ratio_{profile}"] = round(ratio, 4)

        rounds = 3 if args.quick else 7
        sample = ko_p[:200] + en_p[:200]
        kchars = sum(map(len, sample)) / len(sample) / 1000
        est_us = per_call_us(lambda t, w=w: tokens._estimate(t, w), sample, rounds) / kchars
        real_us = per_call_us(tokenizer.count, sample, rounds) / kchars
        print(f"speed: estimator {est_us:.1f} µs per 1,000 chars, tiktoken {encoding} {real_us:.1f} µs "
              f"({real_us / est_us:.1f}× the estimator)")
        figures[f"estimate_us_per_kchar_{profile}"] = round(est_us, 2)
        figures[f"tiktoken_{encoding}_us_per_kchar"] = round(real_us, 2)

    if not found_any:
        print(
            "token_estimator: no real tokenizer to compare with. maru never downloads tokenizer files;\n"
            "  point MARU_TIKTOKEN_FILE or TIKTOKEN_CACHE_DIR at o200k_base / cl100k_base, or run with\n"
            "  --fetch (pip download of the litellm wheel, which bundles them; SHA-256 checked). Skipped."
        )
        figures["skipped"] = "no tiktoken encoding file"
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
