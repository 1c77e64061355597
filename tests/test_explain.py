"""The credit-assignment view: token_credit against a direct forward pass, the sign convention on a
teacher that knows the answer, token texts, the renderers, and `sdpo-discover explain` end to end
(tiny in-process models only)."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from rich.console import Console
from transformers import LlamaForCausalLM
from typer.testing import CliRunner

from sdpo_discover.cli import app
from sdpo_discover.explain import (
    Credit,
    TokenCredit,
    explain_attempt,
    fmt_p,
    ratio_rgb,
    render_html,
    render_terminal,
    response_token_ids,
    token_credit,
    token_texts,
)
from sdpo_discover.models import save_tiny_model, tiny_model, tiny_tokenizer
from sdpo_discover.prompts import SYSTEM_MESSAGE, chat_prompt_ids, question_prompt, teacher_message
from sdpo_discover.problems import problem_from_dict
from sdpo_discover.sdpo import SDPOConfig, Teacher, attach_lora

FULL_VOCAB = 101  # 4 specials + the tiny tokenizer's whole 97-character alphabet: no <unk> in code
PROBLEM = {"id": "sum", "title": "Sum", "statement": "Read a and b; print a + b.", "test_type": "stdin",
           "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "4 5\n", "output": "9\n", "hidden": True}]}
RESPONSE = 'Here:\n```python\na, b = map(int, input().split())\nif a < b and b & 1: print("x")\nprint(a * b)\n```\n'


def direct_logp(model: torch.nn.Module, ctx: list[int], resp: list[int], temperature: float = 1.0) -> torch.Tensor:
    """log p(y_t | ctx, y_<t) from one plain forward over the whole sequence.  -> (R, V)"""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ctx + resp])).logits[0, len(ctx) - 1 : -1]  # (R, V)
    return torch.log_softmax(logits.double() / temperature, -1)  # (R, V)


@pytest.mark.parametrize(("temperature", "chunk"), [(1.0, 256), (0.7, 2)])
def test_token_credit_equals_a_direct_forward(temperature: float, chunk: int) -> None:
    model, tok = tiny_model(vocab_size=FULL_VOCAB)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(4, FULL_VOCAB, (9,), generator=g).tolist()
    c = x + torch.randint(4, FULL_VOCAB, (6,), generator=g).tolist()
    y = torch.randint(4, FULL_VOCAB, (7,), generator=g).tolist()
    model.train()  # token_credit must switch to eval and back
    credit = token_credit(model, tok, x, c, y, temperature=temperature, top=3, chunk=chunk)
    assert model.training
    model.eval()
    s, t = direct_logp(model, x, y, temperature), direct_logp(model, c, y, temperature)  # (R, V) x2
    assert [tc.id for tc in credit.tokens] == y
    assert (credit.student_prompt_tokens, credit.teacher_prompt_tokens) == (len(x), len(c))
    for j, tc in enumerate(credit.tokens):
        assert tc.student_logp == pytest.approx(s[j, y[j]].item(), abs=1e-5)
        assert tc.teacher_logp == pytest.approx(t[j, y[j]].item(), abs=1e-5)
        assert tc.log_ratio == pytest.approx((t[j, y[j]] - s[j, y[j]]).item(), abs=1e-5)
        top_p, top_i = t[j].exp().topk(3)  # the teacher's, not the student's, alternatives
        assert [a for a, _ in tc.alternatives] == [tok.decode([i]) for i in top_i.tolist()]
        assert [p for _, p in tc.alternatives] == pytest.approx(top_p.tolist(), abs=1e-5)
    assert credit.total_log_ratio == pytest.approx(sum(tc.log_ratio for tc in credit.tokens))
    # hand check of one token: log p = logit_y / T - log sum_v exp(logit_v / T)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([c + y[:1]])).logits[0, len(c) - 1].double() / temperature  # (V,)
    assert credit.tokens[0].teacher_logp == pytest.approx(
        (logits[y[0]] - math.log(logits.exp().sum().item())).item(), abs=1e-5)


def test_teacher_weights_apply_to_the_teacher_only() -> None:
    model, tok = tiny_model(vocab_size=FULL_VOCAB)
    model = attach_lora(model, SDPOConfig())
    teacher = Teacher(model, "frozen")  # the initial adapter: B = 0, so the base model
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)  # the student has moved away from the teacher
    x, c, y = [5, 6, 7, 8], [5, 6, 7, 8, 40, 41], [9, 10, 11]
    after = {n: p.detach().clone() for n, p in model.named_parameters()}
    credit = token_credit(model, tok, x, c, y, teacher_weights=teacher.weights())
    assert all(torch.equal(p, after[n]) for n, p in model.named_parameters())  # the student's weights are back
    student = direct_logp(model, x, y)
    with model.disable_adapter():
        base = direct_logp(model, c, y)
    moved = direct_logp(model, c, y)
    for j, tc in enumerate(credit.tokens):
        assert tc.student_logp == pytest.approx(student[j, y[j]].item(), abs=1e-5)
        assert tc.teacher_logp == pytest.approx(base[j, y[j]].item(), abs=1e-5)
    assert not torch.allclose(base, moved, atol=1e-3)  # otherwise the check above proves nothing


# A teacher that knows the answer (as in test_sdpo_learner): trained to continue C with ANSWER, X with WRONG.
X = [4, 5, 6, 7]
C = [4, 5, 6, 7, 30, 31]
ANSWER = [10, 11, 12, 13]
WRONG = [14, 15, 16, 17]


def knowing_teacher_model() -> LlamaForCausalLM:
    """test_sdpo_learner's teacher that knows the answer, on this file's token ids (clear of the specials)."""
    from test_sdpo_learner import knowing_teacher_model as train

    return train(X, C, ANSWER, WRONG)


def test_sign_convention_a_knowing_teacher_reinforces_the_answer_and_rejects_the_wrong_one() -> None:
    model, tok = knowing_teacher_model(), tiny_tokenizer(32)
    right = token_credit(model, tok, X, C, ANSWER)
    wrong = token_credit(model, tok, X, C, WRONG)
    # The first token decides: after it both contexts continue the same way, so the credit sits there.
    assert right.tokens[0].log_ratio > 3.0 and wrong.tokens[0].log_ratio < -3.0, (right.tokens[0], wrong.tokens[0])
    assert right.strongest(1)[0][0] == 0 and wrong.strongest(1)[0][0] == 0
    # where it rejects WRONG, the teacher's first alternative is the answer's token
    assert wrong.tokens[0].alternatives[0][0] == tok.decode([ANSWER[0]]) != tok.decode([WRONG[0]])
    # colours: blue for reinforced, red for rejected
    r, _, b = ratio_rgb(right.tokens[0].log_ratio)
    assert b > r
    r, _, b = ratio_rgb(wrong.tokens[0].log_ratio)
    assert r > b
    # and the terminal view puts those colours on the tokens
    view = render_terminal(wrong, strongest=2)
    text = view.renderables[0]
    assert [(s.start, s.end, str(s.style)) for s in text.spans] == [(0, 1, "white on #c81e1e")]  # only the first


def test_explain_attempt_builds_the_learners_prompts() -> None:
    model, tok = tiny_model(vocab_size=FULL_VOCAB)
    prob = problem_from_dict(PROBLEM)
    credit = explain_attempt(model, tok, prob, RESPONSE, "Wrong Answer", restate_format=False)  # the paper's
    x = chat_prompt_ids(tok, question_prompt(prob), SYSTEM_MESSAGE)
    c = chat_prompt_ids(tok, teacher_message(question_prompt(prob), "Wrong Answer", None), SYSTEM_MESSAGE)
    y = response_token_ids(tok, RESPONSE)
    assert len(y) == len(RESPONSE) and tok.eos_token_id not in y  # one token per character, nothing added
    ref = token_credit(model, tok, x, c, y)
    assert [t.teacher_logp for t in credit.tokens] == pytest.approx([t.teacher_logp for t in ref.tokens], abs=1e-6)
    assert [t.student_logp for t in credit.tokens] == pytest.approx([t.student_logp for t in ref.tokens], abs=1e-6)
    assert "".join(t.text for t in credit.tokens) == RESPONSE
    # restate_format (the default, as the learner's): the answer-format line said again at the end
    c2 = chat_prompt_ids(tok, teacher_message(question_prompt(prob), "Wrong Answer", None, restate_format=True), SYSTEM_MESSAGE)
    assert c2 != c
    ref2 = token_credit(model, tok, x, c2, y)
    credit2 = explain_attempt(model, tok, prob, RESPONSE, "Wrong Answer")
    assert [t.teacher_logp for t in credit2.tokens] == pytest.approx([t.teacher_logp for t in ref2.tokens], abs=1e-6)
    with pytest.raises(ValueError, match="no feedback and no correct solution"):
        explain_attempt(model, tok, prob, RESPONSE, None)
    with pytest.raises(ValueError, match="no tokens"):
        explain_attempt(model, tok, prob, "", "Wrong Answer")


def test_token_texts_keep_multibyte_characters_whole() -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # A byte-level tokenizer without merges: "é" is 2 tokens, "→" 3; each alone decodes to U+FFFD.
    byte_vocab = {c: i for i, c in enumerate(pre_tokenizers.ByteLevel.alphabet())}
    tk = Tokenizer(models.BPE(byte_vocab, []))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk)
    text = "x = 'é' → 3\nok"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text.encode())
    assert any("\ufffd" in tok.decode([i]) for i in ids)  # otherwise this test proves nothing
    texts = token_texts(tok, ids)
    assert "".join(texts) == text and "\ufffd" not in "".join(texts)
    assert texts.count("") == 3  # é: 1 token waits, →: 2 tokens wait


class _Spans(HTMLParser):
    """The text of every <span class="t ..."> and its title, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.titles: list[str] = []
        self.inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "span" and (a.get("class") or "").split()[:1] == ["t"]:
            self.inside = True
            self.texts.append("")
            self.titles.append(a.get("title") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.texts[-1] += data


def test_html_is_self_contained_escaped_and_holds_every_token() -> None:
    model, tok = tiny_model(vocab_size=FULL_VOCAB)
    credit = explain_attempt(model, tok, problem_from_dict(PROBLEM), RESPONSE, "Wrong Answer <b> & co")
    page = render_html(credit, "sum <1>", {"feedback": "Wrong Answer <b> & co\nline 2"})
    low = page.lower()
    assert "http://" not in low and "https://" not in low and "<script" not in low and "src=" not in low
    assert "<link" not in low and "@import" not in low and "url(" not in low
    assert "<b>" not in page and "&lt;b&gt; &amp; co" in page and "<title>sum &lt;1&gt;</title>" in page
    assert "if a &lt;" not in page  # per character tokens: '<' is alone in its span
    assert '">&lt;</span>' in page and '">&amp;</span>' in page
    spans = _Spans()
    spans.feed(page)
    assert spans.texts == [t.text for t in credit.tokens]  # every token, in order, unescaped by the parser
    assert "".join(spans.texts) == RESPONSE  # newlines and spaces kept
    assert "white-space: pre-wrap" in page
    first = credit.tokens[0]
    assert f"{first.log_ratio:+.2f}" in spans.titles[0] and f"{math.exp(first.teacher_logp):.3f}" in spans.titles[0]


def test_render_html_colours_and_table() -> None:
    toks = [TokenCredit(1, "a", math.log(0.5), math.log(0.5) - 4.0, [("b", 0.9)]),
            TokenCredit(2, "\n", math.log(0.5), math.log(0.5) + 1.5, [("\n", 0.8)]),
            TokenCredit(3, "c", math.log(0.5), math.log(0.5), [])]
    page = render_html(Credit(toks), "t")
    assert 'class="t" style="background:#c81e1e;color:#fff"' in page  # clipped at the scale: full red
    assert 'class="t nl" style="background:#8ea8e8"' in page  # half way to blue; a coloured newline is marked
    assert 'class="t" style="background:#ffffff"' in page  # zero: white
    table = page.split("strongest tokens</h2>")[1]
    assert table.index("&#x27;a&#x27;") < table.index("&#x27;\\n&#x27;") < table.index("&#x27;c&#x27;")
    assert "-4.00" in table and "+1.50" in table and "&#x27;b&#x27; 0.90" in table


def test_render_terminal_lists_the_strongest_tokens() -> None:
    toks = [TokenCredit(i, ch, math.log(0.5), math.log(0.5) + d, [("z", 0.7)])
            for i, (ch, d) in enumerate([("p", 0.05), ("q", -2.5), ("r", 1.25), ("s", 0.0)])]
    console = Console(record=True, width=120, color_system=None)
    console.print(render_terminal(Credit(toks), strongest=2))
    shown = console.export_text()
    assert "pqrs" in shown and "the 2 strongest tokens" in shown
    rows = [line for line in shown.splitlines() if "'z' 0.70" in line]
    assert len(rows) == 2 and "'q'" in rows[0] and "-2.50" in rows[0] and "'r'" in rows[1] and "+1.25" in rows[1]
    assert "0.500" in rows[0] and f"{0.5 * math.exp(-2.5):.3f}" in rows[0]
    assert "red: the teacher" in shown and "3 nats" in " ".join(shown.split())
    assert (fmt_p(math.log(0.0123)), fmt_p(math.log(2e-4)), fmt_p(-math.inf)) == ("0.012", "2.0e-04", "0.000")


# ---------------------------------------------------------------------------------------------
# the CLI

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", vocab_size=FULL_VOCAB)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "p.json").write_text(json.dumps(PROBLEM))
    (tmp_path / "ok.py").write_text("a, b = map(int, input().split())\nprint(a + b)\n")
    (tmp_path / "wrong.py").write_text("a, b = map(int, input().split())\nprint(a * b)\n")
    (tmp_path / "response.md").write_text(RESPONSE)
    (tmp_path / "fb.txt").write_text("Test Case 1: Wrong Answer\nInput\n1 2\nOutput\n2\nExpected\n3\n")
    return tmp_path


def _explain(files: Path, model_dir: Path, *args: str) -> tuple[int, str]:
    """Exit code and stdout with whitespace runs collapsed (rich wraps at the terminal width)."""
    r = runner.invoke(app, ["explain", str(files / "p.json"), *args, "--model", str(model_dir),
                            "--device", "cpu", "--sandbox", "local"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, " ".join(r.stdout.split())


def test_cli_explain_with_feedback_file_writes_the_html(files: Path, model_dir: Path) -> None:
    out_html = files / "credit.html"
    code, shown = _explain(files, model_dir, str(files / "response.md"), "--feedback", str(files / "fb.txt"),
                           "--html", str(out_html), "--top", "4")
    assert code == 0, shown
    assert "the teacher was shown feedback" in shown and "the 4 strongest tokens" in shown
    assert "Expected" in shown and f"Wrote {out_html}" in shown
    page = out_html.read_text()
    spans = _Spans()
    spans.feed(page)
    assert "".join(spans.texts) == RESPONSE
    assert "Test Case 1: Wrong Answer" in page and "https://" not in page


def test_cli_explain_grades_the_attempt_when_no_feedback_is_given(files: Path, model_dir: Path) -> None:
    code, shown = _explain(files, model_dir, str(files / "wrong.py"))
    assert code == 0, shown
    assert "Graded in the local sandbox: failed (0/2 tests passed)" in shown
    assert "Test Case 1: Wrong Answer" in shown and "4 5" not in shown  # hidden input never shown
    assert "strongest tokens" in shown
    assert "```python" in shown  # a .py attempt is explained as the response block a model would write


def test_cli_explain_a_passing_attempt_has_nothing_to_explain(files: Path, model_dir: Path) -> None:
    code, shown = _explain(files, model_dir, str(files / "ok.py"))
    assert code == 0, shown
    assert "passes every test" in shown and "strongest tokens" not in shown
    code, shown = _explain(files, model_dir, str(files / "ok.py"), "--solution", str(files / "ok.py"))
    assert code == 0, shown
    assert "the teacher was shown a correct solution" in shown and "strongest tokens" in shown


def test_cli_explain_with_an_adapter(files: Path, model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    peft_model = attach_lora(AutoModelForCausalLM.from_pretrained(model_dir), SDPOConfig())
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)  # an adapter that changes the model's numbers
    peft_model.save_pretrained(tmp_path / "adapter")
    pages = []
    for extra in ([], ["--adapter", str(tmp_path / "adapter")]):
        out_html = tmp_path / f"page{len(pages)}.html"
        code, shown = _explain(files, model_dir, str(files / "response.md"), "--feedback", str(files / "fb.txt"),
                               "--html", str(out_html), *extra)
        assert code == 0, shown
        spans = _Spans()
        spans.feed(out_html.read_text())
        pages.append(spans.titles)
    assert f"+ adapter {tmp_path / 'adapter'}" in shown
    assert len(pages[0]) == len(pages[1]) and pages[0] != pages[1]  # the adapter changed the scores


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.md"], "Error: {d}/missing.md: no such file. Pass a .py file or a text file holding a model response."),
        (["response.md", "--feedback", "{d}/nofb.txt"], "Error: {d}/nofb.txt: no such file. Pass a text file holding the feedback."),
        (["response.md", "--feedback", "{d}/empty.txt"], "Error: {d}/empty.txt: the feedback file is empty"),
        (["response.md", "--feedback", "{d}/fb.txt", "--model", "{d}/nomodel"], "Error: {d}/nomodel: no such file or folder"),
        (["response.md", "--feedback", "{d}/fb.txt", "--model", "{d}"], "Error: {d}: folder has no config.json"),
        (["response.md", "--feedback", "{d}/fb.txt", "--adapter", "{d}"], "Error: {d}: not a LoRA adapter folder"),
    ],
)
def test_cli_explain_bad_input_exits_2(files: Path, model_dir: Path, args: list[str], message: str) -> None:
    (files / "empty.txt").write_text("  \n")
    argv = [a.format(d=files) if "{d}" in a else str(files / a) if not a.startswith("-") else a for a in args]
    # the last --model wins, so a bad model given in args overrides the tiny one
    r = runner.invoke(app, ["explain", str(files / "p.json"), "--model", str(model_dir), "--device", "cpu",
                            "--sandbox", "local", *argv])
    assert r.exit_code == 2, r.output
    assert message.format(d=files) in " ".join(r.stderr.split()), r.stderr
    assert "Traceback" not in r.output


def test_cli_explain_help_has_an_example() -> None:
    r = runner.invoke(app, ["explain", "--help"])
    assert r.exit_code == 0 and "Example:" in r.output and "--feedback" in r.output and "--html" in r.output
