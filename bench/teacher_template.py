#!/usr/bin/env python3
"""What the self-teacher's reprompt does to the answer's format, before any update.

    python3 bench/teacher_template.py [--model qwen2.5-coder-0.5b] [--problems a.json,b.json] [--dtype auto]

For each problem with a plausible wrong solution in problems/wrong/ (default: all of them), the
solution is graded in the local sandbox and its judge's feedback rendered, exactly as in `solve`.
The attempt is that solution as a bare ```python block (the format the student prompt asks for and
the student mostly writes). Three contexts score it, all through the chat template with the system
message:

  student           question_prompt(problem)                         (what the student samples from)
  teacher (paper)   teacher_message(question, feedback, None)        (docs/reference/SDPO.md section 3, the default)
  teacher (restate) the same, then the question's answer-format line again (sdpo.restate_format)

Per context: P(```) for the first token, the most likely first token, and against the student the
log-ratio log q - log pi of the attempt's first token (the SDPO advantage there) and its mean over the
attempt's tokens. A teacher that favours prose-first answers where the student does not pushes every
attempt towards prose from the first update, whatever the feedback says; docs/learner.md, "The
teacher's template", reads this table. Prints markdown; exits 0.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="preset or folder (default qwen2.5-coder-0.5b)")
    ap.add_argument("--problems", default="", help="comma-separated problem files (default: those with a wrong solution)")
    ap.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float32"))
    args = ap.parse_args()

    import torch

    from sdpo_discover.feedback import render_feedback
    from sdpo_discover.models import load_model, resolve_model
    from sdpo_discover.prompts import SYSTEM_MESSAGE, chat_prompt_ids, question_prompt, teacher_message
    from sdpo_discover.problems import load_problem
    from sdpo_discover.sandbox import grade_code, make_executor

    files = ([Path(f) for f in args.problems.split(",") if f] if args.problems else
             sorted(ROOT / "problems" / f"{w.stem}.json" for w in (ROOT / "problems" / "wrong").glob("*.py")))
    model, tok = load_model(resolve_model(args.model), device="cpu", dtype=args.dtype)
    fence = tok("```", add_special_tokens=False)["input_ids"][0]
    ex = make_executor("local")
    rows, stats = [], {"paper": [], "restate": [], "student": []}
    try:
        for f in files:
            problem = load_problem(f)
            code = (ROOT / "problems" / "wrong" / f"{problem.id}.py").read_text()
            feedback = render_feedback(problem, grade_code(problem, code, ex))
            if not feedback:
                continue
            q = question_prompt(problem)
            y = tok(f"```python\n{code.rstrip()}\n```", add_special_tokens=False)["input_ids"]  # (R,)
            ctx = {"student": q, "paper": teacher_message(q, feedback, None),
                   "restate": teacher_message(q, feedback, None, restate_format=True)}
            out = {}
            with torch.no_grad():
                for k, text in ctx.items():
                    c = chat_prompt_ids(tok, text, SYSTEM_MESSAGE)
                    logits = model(input_ids=torch.tensor([c + y])).logits[0, len(c) - 1 : -1].float()  # (R, V)
                    logp = logits.log_softmax(-1)
                    out[k] = (logp[0], logp.gather(1, torch.tensor(y)[:, None])[:, 0])  # (V,), (R,)
            s_first, s_tok = out["student"]
            for k in ("student", "paper", "restate"):
                first, tok_lp = out[k]
                top = int(first.argmax())
                ratio0 = float(tok_lp[0] - s_tok[0])
                mean = float((tok_lp - s_tok).mean())
                stats[k].append((float(first[fence].exp()), ratio0, mean))
                rows.append(f"| {problem.id} | {k} | {float(first[fence].exp()):.2f} | {tok.decode([top])!r} "
                            f"({float(first[top].exp()):.2f}) | {ratio0:+.2f} | {mean:+.3f} |")
    finally:
        ex.close()
    print(f"\nTeacher template: {args.model}, {len(stats['student'])} problems, attempt = the wrong solution as a bare "
          f"```python block. {platform.node()}, torch {torch.__version__}\n")
    print("| problem | context | P(```) first | likeliest first token | log q - log pi, first token | mean over the attempt |")
    print("|---|---|---:|---|---:|---:|")
    print("\n".join(rows))
    print("\n| context | mean P(```) first | mean log-ratio, first token | mean log-ratio over the attempt |")
    print("|---|---:|---:|---:|")
    for k in ("student", "paper", "restate"):
        if stats[k]:
            a, b, c = (statistics.mean(v[i] for v in stats[k]) for i in range(3))
            print(f"| {k} | {a:.2f} | {b:+.2f} | {c:+.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
