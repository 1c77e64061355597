"""The credit-assignment view: one attempt's tokens coloured by the teacher/student log-ratio.

SDPO's gradient is a policy gradient whose per-token advantage is log q(y_t|c, y_<t) - log pi(y_t|x, y_<t)
(docs/reference/SDPO.md section 2; the paper's per-token heat map): the student pi sees the question x, the
self-teacher q the same model re-prompted with the feedback c = reprompt(x, f, s). Where the ratio is
negative the teacher, having read the feedback, disagrees with the token (the update pushes it down);
where positive it reinforces it. This module computes those numbers for one attempt and renders them
for a terminal (rich) and as one self-contained HTML page.

    token_credit     ids in, Credit out: per token log pi, log q, log q - log pi, the teacher's top ids
    explain_attempt  problem + response text + feedback -> Credit, with the learner's own prompts
    render_terminal  Credit -> a rich renderable (coloured text, legend, table of the strongest tokens)
    render_html      Credit -> one HTML page (inline CSS, no script, no external resource)

The ratio shown is the raw one: the learner additionally clamps the advantage at adv_clip (5.0) from
above, and uses the student's top-K support for the KL; neither changes a token's sign.
"""

from __future__ import annotations

import contextlib
import html
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ContextManager

import torch
import torch.nn.functional as F

from .config import SDPOConfig
from .problems import Problem
from .prompts import Prompts
from .sdpo import _trunk_and_head, _upcast, response_hidden

SCALE = 3.0  # |log q - log pi| at which a token gets full colour: a 20x probability ratio (e^3 ~ 20)
_FAINT = 0.1  # below SCALE * _FAINT (0.3 nats, a 1.35x ratio) the terminal leaves a token uncoloured
RED, BLUE = (200, 30, 30), (30, 80, 210)  # teacher disagrees / reinforces


@dataclass
class TokenCredit:
    """One response token y_t and what student and teacher think of it."""

    id: int
    text: str  # its share of the decoded response ('' for a token that only starts a multi-byte character)
    student_logp: float  # log pi(y_t | x, y_<t)
    teacher_logp: float  # log q(y_t | c, y_<t)
    alternatives: list[tuple[str, float]] = field(default_factory=list)  # the teacher's top tokens here: (text, q)

    @property
    def log_ratio(self) -> float:
        """log q - log pi: < 0 the teacher disagrees, > 0 it reinforces (the SDPO advantage, unclipped)."""
        return self.teacher_logp - self.student_logp


@dataclass
class Credit:
    """Per-token credit of one attempt (token_credit's result)."""

    tokens: list[TokenCredit]
    temperature: float = 1.0
    student_prompt_tokens: int = 0
    teacher_prompt_tokens: int = 0

    @property
    def total_log_ratio(self) -> float:
        """sum_t (log q - log pi) = log q(y|c) - log pi(y|x): how much likelier the teacher finds the whole attempt."""
        return sum(t.log_ratio for t in self.tokens)

    def strongest(self, n: int) -> list[tuple[int, TokenCredit]]:
        """The n tokens with the largest |log q - log pi|, strongest first, with their positions."""
        return sorted(enumerate(self.tokens), key=lambda it: -abs(it[1].log_ratio))[: max(n, 0)]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for t, tc in zip(d["tokens"], self.tokens):
            t["log_ratio"] = tc.log_ratio
            t["alternatives"] = [list(a) for a in tc.alternatives]
        return d


# ---------------------------------------------------------------------------------------------
# The computation


def token_texts(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each token's share of tokenizer.decode(ids), so that ''.join(result) == decode(ids) in practice.

    Decoding tokens one by one is wrong twice over: a byte-level BPE splits a multi-byte character
    over tokens (each alone decodes to U+FFFD), and SentencePiece decoders drop a leading space at
    the start of a sequence. So each token is decoded after a few earlier tokens as context, and a
    token that ends inside a character gets '' while its text goes to the token that completes it.
    Linear in len(ids) (decoding every prefix would be quadratic for 8k-token responses).
    """
    out: list[str] = []
    start = 0  # ids[start:] have not been given text yet
    for t in range(len(ids)):
        ctx = list(ids[max(0, start - 4) : start])
        prev = tokenizer.decode(ctx, skip_special_tokens=False) if ctx else ""
        full = tokenizer.decode(ctx + list(ids[start : t + 1]), skip_special_tokens=False)
        if full.endswith("\ufffd") and t + 1 < len(ids) and t + 1 - start < 4:
            out.append("")  # an incomplete character: wait for the token that completes it (at most 4 bytes)
            continue
        out.append(full[len(prev) :] if full.startswith(prev) else full)
        start = t + 1
    return out


def _token_logp_and_top(head: torch.nn.Module, h: torch.Tensor, ids: torch.Tensor, temperature: float,
                        top: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """log p(y_t) and the top-`top` (p, id) at every response position, lm_head applied chunk by chunk.

    h: (N, H) hidden states predicting ids: (N,). Returns (N,), (N, top), (N, top) on the CPU.
    A 151k vocabulary makes (N, V) logits the memory peak: only a (chunk, V) block exists at once.
    """
    logp, top_p, top_i = [], [], []
    for c in range(0, ids.numel(), chunk):
        lp = F.log_softmax(_upcast(head(h[c : c + chunk])) / temperature, dim=-1)  # (C, V)
        logp.append(lp.gather(-1, ids[c : c + chunk, None]).squeeze(-1).cpu())  # (C,)
        if top > 0:
            v, i = lp.topk(min(top, lp.shape[-1]), dim=-1)  # (C, top), (C, top)
            top_p.append(v.exp().cpu())
            top_i.append(i.cpu())
    n = ids.numel()
    if top <= 0 or n == 0:
        return torch.cat(logp) if logp else torch.zeros(0), torch.zeros(n, 0), torch.zeros(n, 0, dtype=torch.long)
    return torch.cat(logp), torch.cat(top_p), torch.cat(top_i)  # (N,), (N, top), (N, top)


def token_credit(
    model: torch.nn.Module,
    tokenizer: Any,
    student_prompt_ids: Sequence[int],
    teacher_prompt_ids: Sequence[int],
    response_ids: Sequence[int],
    *,
    temperature: float = 1.0,
    top: int = 3,
    teacher_weights: ContextManager[Any] | None = None,
    chunk: int = 256,
) -> Credit:
    """Per response token: log pi(y_t|x, y_<t), log q(y_t|c, y_<t), their difference, and the teacher's
    `top` most likely tokens at that position (docs/reference/SDPO.md section 2, step 4: the same response tokens
    under two contexts). Logits are divided by `temperature` before the softmax, as in the loss.

    student_prompt_ids: x; teacher_prompt_ids: c; both end where the answer starts (chat_prompt_ids).
    teacher_weights: a context manager entered for the teacher's forward only, e.g.
    `Teacher.weights()` (the EMA teacher's adapter) or `model.disable_adapter()`; None: the same
    weights as the student. Runs under no_grad in eval mode (no dropout); the mode is restored.
    """
    if not response_ids:
        raise ValueError("the response has no tokens: nothing to explain")
    if not student_prompt_ids or not teacher_prompt_ids:
        raise ValueError("the student prompt and the teacher context must each hold at least one token")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    x, c, y = [list(map(int, s)) for s in (student_prompt_ids, teacher_prompt_ids, response_ids)]
    _, head = _trunk_and_head(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            h_s = response_hidden(model, [x], [y])  # (R, H): batch of one, so no padding
            ids = torch.tensor(y, device=h_s.device)  # (R,)
            s_logp, _, _ = _token_logp_and_top(head, h_s, ids, temperature, 0, chunk)  # (R,)
            del h_s
            # The head is applied inside the teacher's weights too, in case a LoRA targets lm_head.
            with teacher_weights if teacher_weights is not None else contextlib.nullcontext():
                h_t = response_hidden(model, [c], [y])  # (R, H)
                t_logp, t_top_p, t_top_i = _token_logp_and_top(head, h_t, ids, temperature, top, chunk)  # (R,), (R, k) x2
    finally:
        model.train(was_training)
    texts = token_texts(tokenizer, y)
    cache: dict[int, str] = {}

    def piece(i: int) -> str:  # one id alone, for the alternatives (a partial character shows as U+FFFD)
        if i not in cache:
            cache[i] = tokenizer.decode([i], skip_special_tokens=False)
        return cache[i]

    tokens = [
        TokenCredit(id=tid, text=texts[t], student_logp=float(s_logp[t]), teacher_logp=float(t_logp[t]),
                    alternatives=[(piece(int(i)), float(p)) for p, i in zip(t_top_p[t], t_top_i[t])])
        for t, tid in enumerate(y)
    ]
    return Credit(tokens, temperature, len(x), len(c))


def response_token_ids(tokenizer: Any, response_text: str) -> list[int]:
    """The response as token ids, with no special tokens added (a sampled response's ids are better when known)."""
    return list(tokenizer(response_text, add_special_tokens=False)["input_ids"])


def explain_attempt(
    model: torch.nn.Module,
    tokenizer: Any,
    problem: Problem,
    response_text: str,
    feedback: str | None,
    *,
    solution: str | None = None,
    teacher_weights: ContextManager[Any] | None = None,
    response_ids: Sequence[int] | None = None,
    temperature: float = 1.0,
    top: int = 3,
    chunk: int = 256,
    restate_format: bool = SDPOConfig.restate_format,
    thinking: bool = False,
) -> Credit:
    """Credit for one attempt at `problem`, with the prompts the learner builds:

        x = chat(SYSTEM_MESSAGE, question_prompt(problem))          (prompts.Prompts: the learner's own)
        c = chat(SYSTEM_MESSAGE, teacher_message(question_prompt(problem), feedback, solution, restate_format))

    feedback: the judge's text for this attempt; solution: a successful sibling attempt shown to the
    teacher as "Correct solution" (never the attempt itself). response_ids: the sampled token ids when
    known (a run directory stores them); otherwise response_text is tokenised without special tokens.
    restate_format: the learner's option of that name and default (the answer-format line said again at
    the end); False gives the paper's template. thinking: the run's `thinking` setting (chat templates
    with a thinking switch).
    Raises ValueError when there is neither feedback nor a solution: the teacher would learn nothing.
    """
    prompts = Prompts(tokenizer, problem, thinking=thinking, restate_format=restate_format)
    c = prompts.teacher_ids(feedback, solution)
    if c is None:
        raise ValueError("no feedback and no correct solution: the teacher has nothing to add to the question, "
                         "so SDPO gives this attempt no credit at all")
    x = prompts.student_ids
    y = list(response_ids) if response_ids is not None else response_token_ids(tokenizer, response_text)
    return token_credit(model, tokenizer, x, c, y, temperature=temperature, top=top,
                        teacher_weights=teacher_weights, chunk=chunk)


# ---------------------------------------------------------------------------------------------
# Rendering


def intensity(log_ratio: float, scale: float = SCALE) -> float:
    """|log q - log pi| / scale, clipped to [0, 1] (NaN counts as 0)."""
    v = abs(log_ratio) / scale
    return 0.0 if math.isnan(v) else min(v, 1.0)


def ratio_rgb(log_ratio: float, scale: float = SCALE) -> tuple[int, int, int]:
    """White blended toward red (log q < log pi) or blue (log q > log pi) by intensity."""
    a = intensity(log_ratio, scale)
    full = RED if log_ratio < 0 else BLUE
    return tuple(round(255 + (f - 255) * a) for f in full)  # type: ignore[return-value]


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _show(text: str) -> str:
    """A token's text for a table cell: escapes visible, quoted."""
    return repr(text)


def fmt_p(logp: float) -> str:
    """A probability from its log: 3 decimals, or 2 significant digits below 0.001 (not a bare 0.000)."""
    p = math.exp(logp)
    return f"{p:.3f}" if p >= 0.001 or p == 0 else f"{p:.1e}"


def _alts(tok: TokenCredit) -> str:
    return ", ".join(f"{_show(s)} {p:.2f}" for s, p in tok.alternatives)


def _tooltip(pos: int, tok: TokenCredit) -> str:
    return (f"#{pos} {_show(tok.text)}  log q/\u03c0 = {tok.log_ratio:+.2f}\n"
            f"student \u03c0 = {fmt_p(tok.student_logp)}   teacher q = {fmt_p(tok.teacher_logp)}\n"
            f"teacher's top: {_alts(tok)}")


def legend(scale: float = SCALE) -> str:
    return (f"red: the teacher (the same model, shown the feedback) finds the token less likely than the student "
            f"did (log q/\u03c0 < 0, the update pushes it down); blue: more likely (reinforced). Full colour at "
            f"|log q/\u03c0| \u2265 {scale:g} nats (a {math.exp(scale):.0f}x probability ratio).")


def summary(credit: Credit) -> str:
    neg = sum(t.log_ratio < -_FAINT * SCALE for t in credit.tokens)
    pos = sum(t.log_ratio > _FAINT * SCALE for t in credit.tokens)
    return (f"{len(credit.tokens)} tokens: {neg} red, {pos} blue (|log q/\u03c0| > {_FAINT * SCALE:g}); "
            f"log q(y|c) - log \u03c0(y|x) = {credit.total_log_ratio:+.2f}"
            + (f"; temperature {credit.temperature:g}" if credit.temperature != 1.0 else ""))


def render_terminal(credit: Credit, strongest: int = 10) -> Any:
    """The attempt's text, each token on a background by log q - log pi; the legend; then a table of the
    `strongest` tokens by |log q - log pi| with student p, teacher p and the teacher's alternatives."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    text = Text()
    for tok in credit.tokens:
        a = intensity(tok.log_ratio)
        if a < _FAINT:  # near zero: the terminal's own colours, so the text stays readable on any theme
            text.append(tok.text)
            continue
        fg = "black" if a < 0.5 else "white"
        shown = tok.text.replace("\n", "\u21b5\n")  # a coloured newline would be invisible
        text.append(shown, style=f"{fg} on {_hex(ratio_rgb(tok.log_ratio))}")
    table = Table(title=f"the {min(strongest, len(credit.tokens))} strongest tokens", title_justify="left")
    for col, just in (("pos", "right"), ("token", "left"), ("log q/\u03c0", "right"), ("student \u03c0", "right"),
                      ("teacher q", "right"), ("teacher's top alternatives", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for pos, tok in credit.strongest(strongest):
        colour = "red" if tok.log_ratio < 0 else "blue"
        table.add_row(str(pos), Text(_show(tok.text)), Text(f"{tok.log_ratio:+.2f}", style=colour),
                      fmt_p(tok.student_logp), fmt_p(tok.teacher_logp), Text(_alts(tok)))
    return Group(text, Text(""), Text(legend(), style="dim"), Text(summary(credit), style="dim"), table)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 70em; }
pre.attempt { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap; line-height: 1.45;
  border: 1px solid #ccc; padding: 1em; }
pre.feedback { white-space: pre-wrap; background: #f6f6f6; padding: .8em; }
span.t { border-radius: 2px; }
span.nl::before { content: "\\21b5"; color: #777; }
table { border-collapse: collapse; margin-top: 1em; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.tok { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre; }
.scale span { display: inline-block; width: 2.2em; text-align: center; font-size: 80%; }
"""


def render_html(credit: Credit, title: str, meta: Mapping[str, str] | None = None, strongest: int = 20) -> str:
    """One self-contained HTML page of the heat map: inline CSS, no script, no external resource.

    Each token is a <span class="t"> with its background colour and a title= tooltip holding its
    numbers; the spans' text concatenated is the response, HTML-escaped, whitespace kept (pre-wrap).
    `meta` (e.g. problem, model, feedback) is shown above; a value with a newline as a <pre> block.
    """
    e = html.escape
    spans = []
    for pos, tok in enumerate(credit.tokens):
        nl = " nl" if "\n" in tok.text and intensity(tok.log_ratio) >= _FAINT else ""
        ink = ";color:#fff" if intensity(tok.log_ratio) >= 0.6 else ""  # dark text is unreadable on full colour
        spans.append(f'<span class="t{nl}" style="background:{_hex(ratio_rgb(tok.log_ratio))}{ink}" '
                     f'title="{e(_tooltip(pos, tok))}">{e(tok.text)}</span>')
    rows = []
    for pos, tok in credit.strongest(strongest):
        rows.append(f'<tr><td class="num">{pos}</td><td class="tok">{e(_show(tok.text))}</td>'
                    f'<td class="num" style="background:{_hex(ratio_rgb(tok.log_ratio))}">{tok.log_ratio:+.2f}</td>'
                    f'<td class="num">{fmt_p(tok.student_logp)}</td>'
                    f'<td class="num">{fmt_p(tok.teacher_logp)}</td><td class="tok">{e(_alts(tok))}</td></tr>')
    meta_rows = []
    for k, v in (meta or {}).items():
        v = str(v)
        cell = f'<pre class="feedback">{e(v)}</pre>' if "\n" in v else e(v)
        meta_rows.append(f"<tr><th>{e(str(k))}</th><td>{cell}</td></tr>")
    steps = [-SCALE, -SCALE / 2, -SCALE / 4, 0.0, SCALE / 4, SCALE / 2, SCALE]
    scale_bar = "".join(f'<span style="background:{_hex(ratio_rgb(s))}">{s:+g}</span>' for s in steps)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{e(title)}</h1>
<table class="meta">{''.join(meta_rows)}</table>
<p>{e(legend())}</p>
<p class="scale">log q/\u03c0: {scale_bar}</p>
<p>{e(summary(credit))}. Hover over a token for its numbers.</p>
<pre class="attempt">{''.join(spans)}</pre>
<h2>The {min(strongest, len(credit.tokens))} strongest tokens</h2>
<table>
<tr><th>pos</th><th>token</th><th>log q/\u03c0</th><th>student \u03c0</th><th>teacher q</th><th>teacher's top alternatives</th></tr>
{''.join(rows)}
</table>
</body>
</html>
"""


# ---------------------------------------------------------------------------------------------
# Attempts stored in a run directory (read by store.load_run_attempt, without torch)


@contextlib.contextmanager
def swapped_weights(model: torch.nn.Module, weights: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Within the block, the named parameters hold `weights` (e.g. the EMA teacher's adapter); restored after."""
    params = dict(model.named_parameters())
    missing = [n for n in weights if n not in params]
    if missing:
        raise ValueError(f"the teacher's weights do not fit the model: no parameter {missing[0]}")
    saved = {n: params[n].detach().clone() for n in weights}
    with torch.no_grad():
        for n, w in weights.items():
            params[n].copy_(w)
    try:
        yield
    finally:
        with torch.no_grad():
            for n, w in saved.items():
                params[n].copy_(w)
