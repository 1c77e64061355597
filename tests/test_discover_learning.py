"""The learning signal flows through the whole loop: sample -> judge -> feedback -> teacher -> SDPO update.

A synthetic problem ("print the secret number": two digits) and a tiny model pretrained in-process to be
a capable self-teacher: given the judge's wrong-answer feedback (Output: .., Expected: ..) in its
context, it answers the expected number; given only the question, it guesses uniformly (1 in 100). The
judge is the real feedback renderer over a synthetic verdict (the response text is the program's
output). Independent sampling needs ~100 attempts in expectation; SDPO, whose teacher reads the
feedback of the first failed batch, should need far fewer.
The learning rate (3e-2) is this tiny model's, not the default for real models (bench/lr_sweep.py). Everything else (sampler, prompts, learner,
run directory) is the production code path.
"""

from __future__ import annotations

import copy
import random
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch

from sdpo_discover.config import SolveConfig, merge_settings
from sdpo_discover.discover import Solver
from sdpo_discover.feedback import render_feedback
from sdpo_discover.models import CHATML_TEMPLATE
from sdpo_discover.prompts import SYSTEM_MESSAGE, chat_prompt_ids, question_prompt, teacher_message
from sdpo_discover.problems import Problem, TestCase
from sdpo_discover.sandbox.verdicts import AttemptResult, AttemptStatus, TestVerdict, Verdict

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")]
SEEDS = tuple(range(8))
# The paper's template, not the default restated one: there the student's and the teacher's contexts end
# alike, and this 2-layer model needs ~3x the pretraining to tell them apart (after 1600 steps it gives the
# answer 0.10 with the feedback). The template is only text; this test is about the loop's signal.
RESTATE = False
BUDGET, BATCH = 96, 8
_PIECES = r"\d|\n|[^\n\d]+"  # a digit, a newline, or a run of anything else: each fixed phrase is one token


def teacher_text(question: str, feedback: str | None, solution: str | None) -> str | None:
    """The reprompt as the learner builds it with sdpo.restate_format = RESTATE (Solver._teacher_prompt)."""
    return teacher_message(question, feedback, solution, RESTATE)


def secret_problem(target: str) -> Problem:
    return Problem(id="secret", title="Secret", statement="Print the secret number.", test_type="stdin",
                   tests=(TestCase("go\n", f"{target}\n"),))


class SecretJudge:
    """The response text is the program's output; the verdict and the feedback are the real ones."""

    name = "synthetic"

    def grade(self, problem: Problem, response: str, truncated: bool) -> AttemptResult:
        ok = response.strip() == problem.tests[0].output.strip()
        v = TestVerdict(index=0, verdict=Verdict.PASSED if ok else Verdict.WRONG_ANSWER, stdout=response)
        return AttemptResult(AttemptStatus.PASSED if ok else AttemptStatus.FAILED, tests=[v], code=response)

    def feedback(self, problem: Problem, result: AttemptResult) -> str | None:
        return render_feedback(problem, result)

    def close(self) -> None:
        pass


def word_tokenizer() -> Any:
    """A tokenizer over the prompts' own phrases: every run of text between newlines and digits is one
    token, each digit is one. Prompts become ~40 tokens, which keeps pretraining cheap on a CPU."""
    import re

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    p = secret_problem("00")
    fb = render_feedback(p, SecretJudge().grade(p, "11", False))
    text = "\n".join([SYSTEM_MESSAGE, question_prompt(p), teacher_text(question_prompt(p), fb, "x"),
                      "system", "user", "assistant"])
    words = sorted(set(re.findall(_PIECES, text)) | set("0123456789"))
    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    vocab = {w: i for i, w in enumerate(specials + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(_PIECES), behavior="isolated")
    tk.decoder = decoders.Fuse()
    tk.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", eos_token="<|im_end|>",
                                   bos_token="<|im_start|>", padding_side="left", chat_template=CHATML_TEMPLATE)


def pretrained_self_teacher(steps: int = 800, seed: int = 0) -> tuple[Any, Any]:
    """A 2-layer Llama that copies the Expected value out of the feedback, and guesses without it."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tok = word_tokenizer()
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      pad_token_id=tok.pad_token_id, eos_token_id=eos, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id)
    question = question_prompt(secret_problem("00"))
    student = chat_prompt_ids(tok, question, SYSTEM_MESSAGE)

    def num() -> str:
        return f"{rng.randrange(100):02d}"

    def example(with_feedback: bool) -> tuple[list[int], list[int], int]:
        """(context, answer, how many leading answer tokens carry no loss)."""
        target = num()
        answer = tok(target, add_special_tokens=False)["input_ids"] + [eos]
        if not with_feedback:
            return student, answer, 0
        p = secret_problem(target)
        fb = render_feedback(p, SecretJudge().grade(p, num(), False))
        ctx = chat_prompt_ids(tok, teacher_text(question, fb, None), SYSTEM_MESSAGE)
        if rng.random() < 0.5:  # after a wrong first digit the teacher still knows the rest: second digit, then stop
            return ctx, tok(str(rng.randrange(10)), add_special_tokens=False)["input_ids"] + answer[1:], 1
        return ctx, answer, 0

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only add overhead
    for _ in range(steps):
        batch = [example(True) for _ in range(12)] + [example(False) for _ in range(4)]
        width = max(len(c) + len(r) for c, r, _ in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id)  # (B, T), right-padded
        labels = torch.full((len(batch), width), -100)  # (B, T): loss on the answer only
        att = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
        for i, (c, r, skip) in enumerate(batch):
            ids[i, : len(c) + len(r)] = torch.tensor(c + r)
            labels[i, len(c) + skip : len(c) + len(r)] = torch.tensor(r[skip:])
            att[i, : len(c) + len(r)] = 1
        loss = model(input_ids=ids, attention_mask=att, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    return model.eval(), tok


@pytest.fixture(scope="module")
def self_teacher() -> tuple[Any, Any]:
    return pretrained_self_teacher()


def first_success(model: Any, tok: Any, tmp: Path, seed: int, learn: bool) -> int:
    """Attempts until the first pass (BUDGET + 1 when none passed)."""
    target = f"{random.Random(1000 + seed).randrange(100):02d}"
    learner = {"sdpo.lr": 3e-2, "sdpo.restate_format": RESTATE, "sdpo.lora_r": 8,
               "sdpo.lora_targets": ["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"]}
    cfg = SolveConfig.from_dict(merge_settings(
        dict(problem="secret", model="in-process", budget=BUDGET, batch_size=BATCH, seed=seed,
             method="sdpo" if learn else "best-of-k", max_new_tokens=4, gen_batch_size=BATCH, temperature=1.0,
             top_p=1.0), learner if learn else {}))
    run = tmp / f"{'sdpo' if learn else 'sample'}-{seed}"
    s = Solver(cfg, run, problem=secret_problem(target), judge=SecretJudge(), model=copy.deepcopy(model),
               tokenizer=tok).run()
    return s.first_success_index if s.solved else BUDGET + 1


def test_the_self_teacher_reads_the_feedback(self_teacher: tuple[Any, Any]) -> None:
    """The premise: with feedback the model knows the answer, without it it does not."""
    model, tok = self_teacher
    q = question_prompt(secret_problem("00"))
    p = secret_problem("47")
    fb = render_feedback(p, SecretJudge().grade(p, "13", False))
    answer = tok("47", add_special_tokens=False)["input_ids"]

    def logp(ctx: list[int]) -> float:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ctx + answer])).logits[0, len(ctx) - 1 : -1]  # (2, V)
            return torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(answer)[:, None]).sum().item()

    with_fb = logp(chat_prompt_ids(tok, teacher_text(q, fb, None), SYSTEM_MESSAGE))
    without = logp(chat_prompt_ids(tok, q, SYSTEM_MESSAGE))
    assert with_fb > -1.0, with_fb  # p(answer | feedback) > 0.37
    assert without < -3.5, without  # p(answer | question) < 0.03: a guess


def test_sdpo_discovers_in_fewer_attempts_than_independent_sampling(self_teacher: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = self_teacher
    sdpo = [first_success(model, tok, tmp_path, s, learn=True) for s in SEEDS]
    sample = [first_success(model, tok, tmp_path, s, learn=False) for s in SEEDS]
    print(f"\nattempts to first success (budget {BUDGET}, {BUDGET + 1} = not found): SDPO {sdpo}, sampling {sample}")
    # Measured here (8 seeds): SDPO [17, 23, 43, 23, 26, 33, 17, 6] (mean 23.5), sampling [19, 36, 97, 30, 47, 83, 54, 6]
    # (mean 46.5). A seed whose first batch already holds the answer ties by construction (same seed, same batch).
    assert all(t <= BUDGET for t in sdpo), sdpo  # SDPO found it on every seed
    assert all(a <= b for a, b in zip(sdpo, sample)), (sdpo, sample)  # and never later than sampling
    assert statistics.mean(sdpo) * 1.6 <= statistics.mean(sample), (sdpo, sample)
    k = BUDGET // 2  # discovery@48: the fraction of seeds solved within 48 attempts
    assert sum(t <= k for t in sdpo) == len(SEEDS) and sum(t <= k for t in sample) <= len(SEEDS) - 2, (sdpo, sample)
