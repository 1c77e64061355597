"""Regenerate the LiveCodeBench-format fixtures in this folder from readable Python data.

    python3 problems/livecodebench/make_records.py

writes
    lcb-stdin.json   one AtCoder-style stdin record; private tests as base64(zlib(pickle(json string)))
    lcb-batch.jsonl  three records, one per line:
                       - a LeetCode-style functional record (metadata func_name, starter_code),
                         private tests encoded as above;
                       - a Codeforces-style stdin record whose private tests are plain JSON text;
                       - a LeetCode-style functional record returning a list, private tests plain JSON.

The records follow LiveCodeBench's code_generation_lite layout (SDPO.md section 8): public_test_cases is
a JSON string of a list of {"input", "output", "testtype"}, metadata is a JSON string. The problems are
original (written for sdpo-discover); they only borrow the platforms' formats.

Only the inputs are written here. Every expected output is computed by running the record's reference
solution, reference/<question_id>.py, with the current python3, so the files can be regenerated after a
change. Random inputs use fixed seeds, so the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import base64
import json
import pickle
import random
import subprocess
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Runs a functional reference: exec the file, call Solution().<func>(*args), print the JSON result.
_FUNC_HARNESS = r"""
import json, sys
path, func = sys.argv[1], sys.argv[2]
ns = {"__name__": "__main__"}
exec(compile(open(path, encoding="utf-8").read(), path, "exec"), ns)
args = [json.loads(line) for line in sys.stdin.read().strip().split("\n") if line.strip()]
sys.stdout.write(json.dumps(getattr(ns["Solution"](), func)(*args)))
"""


def run_reference(qid: str, testtype: str, inp: str, func: str | None) -> str:
    path = HERE / "reference" / f"{qid}.py"
    if testtype == "stdin":
        cmd = [sys.executable, str(path)]
    else:
        cmd = [sys.executable, "-c", _FUNC_HARNESS, str(path), func or ""]
    p = subprocess.run(cmd, input=inp, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise SystemExit(f"reference {path.name} failed on input {inp[:80]!r}:\n{p.stderr}")
    return p.stdout


def encode_private(tests: list[dict]) -> str:
    """LiveCodeBench's packing: base64(zlib(pickle(json string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests), protocol=4))).decode("ascii")


def fargs(*args) -> str:
    """A functional test's input: one JSON literal per line, one line per argument."""
    return "\n".join(json.dumps(a) for a in args)


# ------------------------------------------------------------------------------------------------
# The problems (readable data)

_r = random.Random(2025)

WINDOW = {
    "question_title": "Best Stretch",
    "question_content": """Takahashi recorded the change of his savings on each of N consecutive days: A_1, A_2, ..., A_N yen (a negative value means he spent money).

Find the maximum total change over K consecutive days, that is, the maximum of A_i + A_{i+1} + ... + A_{i+K-1} over 1 \\leq i \\leq N-K+1.

Constraints

- 1 \\leq K \\leq N \\leq 2 \\times 10^5
- -10^9 \\leq A_i \\leq 10^9
- All input values are integers.

Input

The input is given from Standard Input in the following format:
N K
A_1 A_2 \\ldots A_N

Output

Print the answer.

Sample Input 1

5 2
3 -1 4 -1 5

Sample Output 1

4

The sums over two consecutive days are 2, 3, 3 and 4; the largest is 4 (days 4 and 5).

Sample Input 2

3 3
-2 -3 -4

Sample Output 2

-9
""",
    "platform": "atcoder",
    "question_id": "sdx001_c",
    "contest_id": "sdx001",
    "contest_date": "2025-01-11T00:00:00",
    "starter_code": "",
    "difficulty": "easy",
    "testtype": "stdin",
    "func_name": None,
    "public": ["5 2\n3 -1 4 -1 5\n", "3 3\n-2 -3 -4\n"],
    "private": [
        "1 1\n-1000000000\n",
        "4 1\n7 7 7 7\n",
        "6 3\n1000000000 1000000000 1000000000 -1000000000 1000000000 1000000000\n",
        "5 5\n1 2 3 4 5\n",
        "200 17\n" + " ".join(str(_r.randint(-10**9, 10**9)) for _ in range(200)) + "\n",
        "1000 400\n" + " ".join(str(_r.randint(-50, 50)) for _ in range(1000)) + "\n",
    ],
    "private_encoding": "pickle",
}

DIVISIBLE_PAIRS = {
    "question_title": "Pairs With Divisible Sum",
    "question_content": """You are given an integer array nums and a positive integer k.

Return the number of index pairs (i, j) with 0 <= i < j < nums.length such that nums[i] + nums[j] is divisible by k.

Example 1:

Input: nums = [1,2,3,4,5], k = 3
Output: 4
Explanation: The pairs are (0,1), (0,4), (1,3) and (3,4): 1+2, 1+5, 2+4 and 4+5 are all divisible by 3.

Example 2:

Input: nums = [6,6,6], k = 6
Output: 3

Constraints:

1 <= nums.length <= 10^5
1 <= nums[i] <= 10^9
1 <= k <= 10^9
""",
    "platform": "leetcode",
    "question_id": "90001",
    "contest_id": "weekly-contest-901",
    "contest_date": "2025-02-02T00:00:00",
    "starter_code": "class Solution:\n    def countDivisiblePairs(self, nums: List[int], k: int) -> int:\n        ",
    "difficulty": "medium",
    "testtype": "functional",
    "func_name": "countDivisiblePairs",
    "public": [fargs([1, 2, 3, 4, 5], 3), fargs([6, 6, 6], 6)],
    "private": [
        fargs([5], 5),
        fargs([1, 1, 1, 1], 1),
        fargs([2, 4, 6, 8], 2),
        fargs([1000000000, 1000000000], 1000000000),
        fargs([3, 7, 11, 5, 9], 4),
        fargs([_r.randint(1, 10**9) for _ in range(300)], 7),
        fargs([_r.randint(1, 100) for _ in range(2000)], 1000),
    ],
    "private_encoding": "pickle",
}

PARITY = {
    "question_title": "Same Parity",
    "question_content": """You are given an array a of n integers. You may delete any elements of the array. What is the minimum number of deletions needed so that all remaining elements have the same parity (all even or all odd)? Deleting every element is never necessary.

Input

The first line contains a single integer t (1 <= t <= 10^4) — the number of test cases.

The first line of each test case contains one integer n (1 <= n <= 2 * 10^5). The second line contains n integers a_1, a_2, ..., a_n (1 <= a_i <= 10^9).

The sum of n over all test cases does not exceed 2 * 10^5.

Output

For each test case, print one integer — the minimum number of deletions.

Example

Input

3
5
1 2 3 4 5
1
8
4
2 2 4 6

Output

2
0
0
""",
    "platform": "codeforces",
    "question_id": "9001A",
    "contest_id": "9001",
    "contest_date": "2025-03-15T00:00:00",
    "starter_code": "",
    "difficulty": "easy",
    "testtype": "stdin",
    "func_name": None,
    "public": ["3\n5\n1 2 3 4 5\n1\n8\n4\n2 2 4 6\n"],
    "private": [
        "1\n1\n1\n",
        "2\n2\n1 2\n6\n1 3 5 2 7 9\n",
        "1\n4\n1000000000 999999999 999999998 999999997\n",
        "5\n" + "".join(
            f"{n}\n{' '.join(str(_r.randint(1, 10**9)) for _ in range(n))}\n" for n in (1, 3, 10, 50, 200)
        ),
    ],
    "private_encoding": "json",
}

PREFIX_MAX = {
    "question_title": "Running Record",
    "question_content": """You are given an integer array nums. Return an array answer of the same length where answer[i] is the largest value among nums[0], nums[1], ..., nums[i].

Example 1:

Input: nums = [3,1,4,1,5]
Output: [3,3,4,4,5]

Example 2:

Input: nums = [-2,-5]
Output: [-2,-2]

Constraints:

1 <= nums.length <= 10^5
-10^9 <= nums[i] <= 10^9
""",
    "platform": "leetcode",
    "question_id": "90002",
    "contest_id": "biweekly-contest-451",
    "contest_date": "2025-02-09T00:00:00",
    "starter_code": "class Solution:\n    def prefixMaxima(self, nums: List[int]) -> List[int]:\n        ",
    "difficulty": "easy",
    "testtype": "functional",
    "func_name": "prefixMaxima",
    "public": [fargs([3, 1, 4, 1, 5]), fargs([-2, -5])],
    "private": [
        fargs([7]),
        fargs([5, 4, 3, 2, 1]),
        fargs([1, 2, 3, 4, 5]),
        fargs([-1000000000, 1000000000, 0]),
        fargs([_r.randint(-1000, 1000) for _ in range(100)]),
    ],
    "private_encoding": "json",
}


# ------------------------------------------------------------------------------------------------


def build_record(spec: dict) -> dict:
    qid, tt, func = spec["question_id"], spec["testtype"], spec["func_name"]

    def tests(inputs: list[str]) -> list[dict]:
        return [{"input": i, "output": run_reference(qid, tt, i, func), "testtype": tt} for i in inputs]

    public, private = tests(spec["public"]), tests(spec["private"])
    return {
        "question_title": spec["question_title"],
        "question_content": spec["question_content"],
        "platform": spec["platform"],
        "question_id": qid,
        "contest_id": spec["contest_id"],
        "contest_date": spec["contest_date"],
        "starter_code": spec["starter_code"],
        "difficulty": spec["difficulty"],
        "public_test_cases": json.dumps(public),
        "private_test_cases": encode_private(private) if spec["private_encoding"] == "pickle" else json.dumps(private),
        "metadata": json.dumps({"func_name": func}) if func else "{}",
    }


def main() -> None:
    single = build_record(WINDOW)
    (HERE / "lcb-stdin.json").write_text(json.dumps(single, indent=2) + "\n", encoding="utf-8")
    batch = [build_record(s) for s in (DIVISIBLE_PAIRS, PARITY, PREFIX_MAX)]
    (HERE / "lcb-batch.jsonl").write_text("".join(json.dumps(r) + "\n" for r in batch), encoding="utf-8")
    print(f"wrote {HERE / 'lcb-stdin.json'} (1 record) and {HERE / 'lcb-batch.jsonl'} ({len(batch)} records)")


if __name__ == "__main__":
    main()
