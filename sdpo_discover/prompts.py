"""Every prompt the tool shows a model, built and tokenised here and nowhere else.

    question_prompt     the question x: LiveCodeBench's generation template (docs/reference/SDPO.md section 8)
    teacher_message     the self-teacher's reprompt c = reprompt(x, f, s) (docs/reference/SDPO.md section 3)
    multi_turn_message  the multi-turn baseline's prompt: the question plus a chain's earlier feedback (section 5)
    chat_ids            messages -> token ids through the model's chat template (thinking off by default)
    Prompts             one problem's prompts for one tokenizer, tokenised once and cached
    answer_end          where a response's answer ends: the close of its first fenced Python block with code

Chat templates with a thinking switch (Qwen3, the paper's model) read `enable_thinking`; every prompt
here passes it (default False, as in the paper). Templates without the switch ignore it.

Imports only the standard library and problems.py (no torch): a tokenizer is anything with
`apply_chat_template` and `__call__`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .problems import Problem

SYSTEM_MESSAGE = ("You are an expert Python programmer. You will be given a question (problem specification) and "
                  "will generate a correct Python program that matches the specification and passes all tests.")
_WITH_STARTER = ("You will use the following starter code to write the solution to the problem and enclose your code "
                 "within delimiters.")
_STDIN = ("Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the "
          "sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, "
          "it reads the inputs, runs the algorithm and writes output to STDOUT.")
ANSWER_LINE = "### Answer: (use the provided format with backticks)"  # the question's last line
SOLVE_AGAIN = "Correctly solve the original question."

# A fence line of a model's answer: ``` and an optional language tag, alone on its line (the grader's rule).
FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+.-]*)[ \t]*$", re.MULTILINE)
PY_TAGS = frozenset({"", "python", "py", "python3", "py3"})
# What a fence that closes a block looks like mid-stream: vLLM's stop string for stop_at_answer (the sampler
# then checks answer_end, and continues a sample whose block held no code).
CLOSING_FENCE = "\n```\n"


def _has_code(body: str) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in body.splitlines())


def answer_end(text: str) -> int | None:
    """Where the answer in a response ends: just past the line that closes its first fenced Python block holding
    code, a line that is neither blank nor a comment. None while no such block has closed on a complete line.

    The setting stop_at_answer ends a sample there: what follows (explanations, a second version) is never
    graded or trained on. Blocks are paired as the grader pairs them (sandbox/grading.extract_code); a block of
    comments only is passed over because small models often echo LiveCodeBench's `# YOUR CODE HERE` stub in a
    block of its own before writing their code (measured: bench/README.md, "Stop at the answer")."""
    complete = text[: text.rfind("\n") + 1]  # a fence line counts once its line has ended
    fences = list(FENCE.finditer(complete))
    for opener, closer in zip(fences[0::2], fences[1::2]):
        if opener.group(1).lower() in PY_TAGS and _has_code(complete[opener.end() + 1 : closer.start()]):
            return closer.end() + 1
    return None


def question_prompt(problem: Problem) -> str:
    """The question x as the model sees it: LiveCodeBench's generation template (docs/reference/SDPO.md section 8).

    The statement, then either the starter code to complete or the stdin/stdout instruction, and a
    request for one fenced ```python block (the grader runs the last one). A functional problem
    without starter code is told the function to write.
    """
    text = f"### Question:\n{problem.statement.strip()}\n\n"
    if problem.starter_code:
        text += f"### Format: {_WITH_STARTER}\n```python\n{problem.starter_code.rstrip()}\n```\n\n"
    elif problem.test_type == "functional":
        text += (f"### Format: Write a function `{problem.function_name}` (or a class `Solution` with that method) "
                 "and enclose your code within delimiters.\n```python\n# YOUR CODE HERE\n```\n\n")
    else:
        text += f"### Format: {_STDIN}\n```python\n# YOUR CODE HERE\n```\n\n"
    return text + ANSWER_LINE + "\n\n"


def teacher_message(question: str, feedback: str | None, solution: str | None,
                    restate_format: bool = False) -> str | None:
    """The reprompt c = reprompt(x, f, s) of docs/reference/SDPO.md section 3; None when there is nothing to teach.

    The attempt itself is never shown (showing it did worse in the paper's ablation); `solution` is a
    successful *sibling* attempt, never the attempt being graded. `restate_format` (not in the
    paper; the learner's option of that name, on by default there): the question's answer-format line
    (ANSWER_LINE) said again at the very end, so that "Correctly solve the original question." is not
    the teacher's last instruction.
    """
    if not feedback and not solution:
        return None
    text = question
    if solution:
        text += f"\nCorrect solution:\n\n{solution}\n\n"
    if feedback:
        text += f"\nThe following is feedback from your unsuccessful earlier attempt:\n\n{feedback}\n\n"
    text += f"\n{SOLVE_AGAIN}\n"
    return text + (f"\n{ANSWER_LINE}\n" if restate_format else "")


def multi_turn_message(question: str, feedbacks: Sequence[str]) -> str:
    """The multi-turn baseline's prompt (docs/reference/SDPO.md section 5, the authors' template):

        {question}\\n\\nThe following is feedback from your unsuccessful earlier attempts:\\n\\n{f_1}\\n\\n{f_2}...
        \\n\\nCorrectly solve the original question.

    With no feedback yet (a chain's first turn), the question alone.
    """
    if not feedbacks:
        return question
    body = "\n\n".join(f.strip() for f in feedbacks)
    return (f"{question.rstrip()}\n\nThe following is feedback from your unsuccessful earlier attempts:\n\n{body}"
            f"\n\n{SOLVE_AGAIN}")


def feedback_turn(feedback: str) -> str:
    """A user turn after an attempt, in the chat form of the multi-turn baseline (attempt_and_feedback)."""
    return f"The following is feedback from your unsuccessful earlier attempt:\n\n{feedback.strip()}\n\n{SOLVE_AGAIN}"


def chat_ids(tokenizer: Any, messages: list[dict[str, str]], thinking: bool = False) -> list[int]:
    """Messages through the model's chat template, ending where the assistant's answer starts."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                         enable_thinking=thinking)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def chat_prompt_ids(tokenizer: Any, user: str, system: str | None = SYSTEM_MESSAGE, thinking: bool = False) -> list[int]:
    """One user turn (after an optional system turn): the token ids of a student prompt x or a teacher context c."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return chat_ids(tokenizer, messages, thinking)


class Prompts:
    """One problem's prompts for one tokenizer: the student's, the teacher's and the multi-turn ones,
    each tokenised once (a batch's attempts often share a feedback text)."""

    def __init__(self, tokenizer: Any, problem: Problem, *, thinking: bool = False, restate_format: bool = True) -> None:
        self.tokenizer, self.thinking, self.restate_format = tokenizer, thinking, restate_format
        self.question = question_prompt(problem)
        self.student_ids = chat_prompt_ids(tokenizer, self.question, thinking=thinking)
        self._teacher: dict[str, list[int]] = {}
        self._lengths: dict[str, int] = {}

    def teacher_ids(self, feedback: str | None, solution: str | None = None) -> list[int] | None:
        """The teacher context c for an attempt with this feedback (and a successful sibling, if any)."""
        text = teacher_message(self.question, feedback, solution, self.restate_format)
        if text is None:
            return None
        if text not in self._teacher:
            self._teacher[text] = chat_prompt_ids(self.tokenizer, text, thinking=self.thinking)
        return self._teacher[text]

    def _messages(self, history: Sequence[tuple[str, str]], template: str) -> list[dict[str, str]]:
        system = [{"role": "system", "content": SYSTEM_MESSAGE}]
        if template == "feedback_only":
            return system + [{"role": "user", "content": multi_turn_message(self.question, [f for _, f in history])}]
        turns = system + [{"role": "user", "content": self.question}]
        for response, feedback in history:
            turns += [{"role": "assistant", "content": response}, {"role": "user", "content": feedback_turn(feedback)}]
        return turns

    def _length(self, text: str) -> int:
        if text not in self._lengths:
            self._lengths[text] = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self._lengths[text]

    def multi_turn_ids(self, history: Sequence[tuple[str, str]], template: str, cap: int) -> tuple[list[int], int]:
        """A chain's next prompt from its earlier (response, feedback) pairs, oldest first; the oldest items are
        dropped until it fits in `cap` tokens. Returns (ids, how many items were dropped).

        Each item's own token count (cached) picks a first guess of how many to keep; the full prompt is then
        tokenised and, while still over the cap, one more item is dropped (a chat template adds a few tokens
        per turn that the items' own counts do not see). Raises ValueError when the question alone does not fit.
        """
        def size(item: tuple[str, str]) -> int:
            return self._length(item[1]) + (self._length(item[0]) if template == "attempt_and_feedback" else 0)

        room = cap - len(self.student_ids)
        drop, total = len(history), 0
        for j in range(len(history) - 1, -1, -1):  # keep the newest items that fit by their own counts
            total += size(history[j])
            if total > room:
                break
            drop = j
        while True:
            ids = chat_ids(self.tokenizer, self._messages(history[drop:], template), self.thinking)
            if len(ids) <= cap:
                return ids, drop
            if drop >= len(history):
                raise ValueError(f"the question alone takes {len(ids)} tokens, more than the prompt cap of {cap} "
                                 "(multi_turn.context_tokens, or the model's context length minus max_new_tokens)")
            drop += 1
