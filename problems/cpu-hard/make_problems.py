"""Regenerate the cpu-hard problem files in this folder from readable Python data.

    python3 problems/cpu-hard/make_problems.py

writes <id>.json (the problem.json format, like problems/sum-two.json) for each of the 34 problems below (four rounds
of screening, each with its recorded pass rate).

Each problem is an easy task with one twist that a small model often misses. Only the statements and
test inputs are written here. Every expected output is computed by running the problem's reference
solution, reference/<id>.py, with the current python3; the statement's example is the first public
test, with its computed output. Random inputs use fixed seeds, so the output is byte-for-byte
reproducible.

As a self-check, each problem also holds one or two `naive` solutions: the code a small model writes
when it misses the twist. The script stops unless every naive solution fails at least one public test
(so feedback can teach the twist) and at least one hidden test (so it cannot pass by luck).
Standard library only.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_code(path_or_code: Path | str, inp: str, timeout: float = 20) -> tuple[int, str]:
    cmd = [sys.executable, str(path_or_code)] if isinstance(path_or_code, Path) else [sys.executable, "-c", path_or_code]
    try:
        p = subprocess.run(cmd, input=inp, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, ""
    return p.returncode, p.stdout


def same(got: str, expected: str) -> bool:
    """Strict version of the grader's comparison (lines and tokens stripped; no decimal equality)."""
    g = [ln.split() for ln in got.strip().split("\n")]
    e = [ln.split() for ln in expected.strip().split("\n")]
    return g == e


def ints(r: random.Random, n: int, lo: int, hi: int) -> str:
    return " ".join(str(r.randint(lo, hi)) for _ in range(n))


WORDS = ("ant bee cat dog eel fox gnu hen ibis jay kiwi lark mole newt owl puma quail rat seal toad "
         "urial vole wasp yak zebra apple mango peach plum grape lemon lime kiwi melon berry").split()


# ------------------------------------------------------------------------------------------------
# The problems (readable data). statement: the text before "Example"; the example is added from
# the first public test.

PROBLEMS: list[dict] = []

# 1 ----------------------------------------------------------------------------------------------
_r = random.Random(1201)
_big = [_r.randint(-10**9, 10**6) for _ in range(1000)]
if sum(_big) % 1000 == 0:
    _big[0] -= 1
PROBLEMS.append({
    "id": "mean-toward-zero",
    "title": "Mean rounded toward zero",
    "twist": "Rounds toward zero, not down: sum // n floors negative means (-7/2 must give -3, not -4).",
    "statement": """You are given n integers. Print their mean (their sum divided by n) rounded toward zero to an
integer, that is, with the fractional part dropped: 7/2 gives 3, and -7/2 gives -3 (not -4).

Input
The first line contains n. The second line contains n integers a_1 ... a_n separated by spaces.

Output
One integer: the mean rounded toward zero.

Constraints
1 <= n <= 10^5
-10^9 <= a_i <= 10^9
""",
    "public": ["4\n1 2 3 5\n", "3\n-1 -2 -4\n", "1\n-5\n", "5\n0 0 0 0 -1\n",
               "2\n1000000000 999999999\n", "6\n-3 3 -3 3 -3 3\n"],
    "hidden": ["4\n-10 -10 -10 -11\n", f"1000\n{' '.join(map(str, _big))}\n"],
    "naive": ["import sys\nd=sys.stdin.read().split()\nn=int(d[0])\nprint(sum(map(int,d[1:1+n]))//n)\n"],
})

# 2 ----------------------------------------------------------------------------------------------
_r = random.Random(1202)
_rows = [(_r.randint(0, m), m) for m in (_r.randint(1, 10**6) for _ in range(40))]
_rows += [(1, 40), (9, 40), (1, 200), (5, 8), (7, 8), (0, 1), (1, 1), (3, 8), (1, 16), (999999, 1000000)]
_r.shuffle(_rows)
PROBLEMS.append({
    "id": "percent-round",
    "title": "Rounded percentages",
    "twist": "Halves round up: Python's round() rounds halves to even (round(12.5) == 12, but 13 is expected).",
    "statement": """Each of n students scored s_i points out of m_i. For every student print the percentage
100 * s_i / m_i rounded to the nearest integer. When the percentage lies exactly halfway between two
integers, round up: 12.5 becomes 13, and 37.5 becomes 38.

Input
The first line contains n. Each of the next n lines contains two integers s_i and m_i.

Output
n lines: the rounded percentage of each student, in input order.

Constraints
1 <= n <= 1000
1 <= m_i <= 10^6
0 <= s_i <= m_i
""",
    "public": ["3\n1 2\n3 8\n2 3\n", "2\n1 8\n5 8\n", "1\n0 7\n", "1\n7 7\n", "4\n1 200\n1 400\n3 400\n1 3\n",
               "2\n999999 1000000\n1 1000000\n"],
    "hidden": ["3\n9 16\n5 40\n1 16\n", f"{len(_rows)}\n" + "".join(f"{s} {m}\n" for s, m in _rows)],
    "naive": ["n=int(input())\nfor _ in range(n):\n    s,m=map(int,input().split())\n    print(round(100*s/m))\n"],
})

# 3 ----------------------------------------------------------------------------------------------
_r = random.Random(1203)
_long = [_r.choice(WORDS) for _ in range(200)]
_long[_r.randint(20, 120)] = "urial"
PROBLEMS.append({
    "id": "longest-word-last",
    "title": "Longest word, last one wins",
    "twist": "Ties go to the LAST longest word; max(words, key=len) returns the first.",
    "statement": """You are given a line of words. Print the longest word. If several words share the maximum
length, print the one that appears last in the line.

Input
One line of words made of lowercase English letters, separated by single spaces. There is at least one
word.

Output
The longest word (the last one among the longest).

Constraints
At most 1000 words, each of 1 to 20 letters.
""",
    "public": ["a tiny elephant sat\n", "cat dog\n", "hello\n", "aa bbb cc ddd e\n", "abcde abc abcd\n", "x y z\n"],
    "hidden": ["one three seven eight four\n", " ".join(_long) + "\n"],
    "naive": ["print(max(input().split(), key=len))\n"],
})

# 4 ----------------------------------------------------------------------------------------------
_r = random.Random(1204)
_names = sorted({"".join(_r.choice("abcdefghij") for _ in range(_r.randint(2, 6))) for _ in range(150)})[:100]
_r.shuffle(_names)
PROBLEMS.append({
    "id": "leaderboard",
    "title": "Leaderboard",
    "twist": "Equal scores are ordered by name A-Z; a stable sort by score keeps input order, reverse=True puts names Z-A.",
    "statement": """You are given the scores of n players. Print the leaderboard: the players ordered by score from
highest to lowest. Players with equal scores are ordered by name in alphabetical order.

Input
The first line contains n. Each of the next n lines contains a player's name and score, separated by a
space. Names are distinct and made of lowercase English letters.

Output
n lines, each with a name and its score separated by a space, in leaderboard order.

Constraints
1 <= n <= 1000
0 <= score <= 1000
""",
    "public": ["3\nann 5\nbob 9\ncid 7\n", "3\nzed 4\namy 4\nkim 4\n", "1\nsolo 0\n", "4\nd 10\nc 20\nb 10\na 20\n",
               "2\nmax 1000\nmin 0\n", "3\nbb 2\nb 2\nbba 2\n"],
    "hidden": ["5\neve 3\ndan 3\nbea 8\ncal 3\nabe 1\n",
               f"{len(_names)}\n" + "".join(f"{nm} {_r.randint(0, 15)}\n" for nm in _names)],
    "naive": [
        "n=int(input())\nr=[input().split() for _ in range(n)]\nr.sort(key=lambda x:-int(x[1]))\n"
        "for a,b in r: print(a,b)\n",
        "n=int(input())\nr=[(int(s),m) for m,s in (input().split() for _ in range(n))]\nr.sort(reverse=True)\n"
        "for s,m in r: print(m,s)\n",
    ],
})

# 5 ----------------------------------------------------------------------------------------------
_r = random.Random(1205)
_ks = [_r.randint(2**54, 10**18) for _ in range(3)]
_sq_hidden = [k * k for k in _ks] + [_ks[0] ** 2 - 1, _ks[1] ** 2 + 1, 10**36]
_mix = []
for _ in range(300):
    k = _r.choice([_r.randint(0, 1000), _r.randint(10**8, 10**9), _r.randint(2**53, 10**18)])
    _mix.append(k * k + _r.choice([0, 0, 1, -1, 2]) if k > 1 else k)
_sq_mix = [max(0, x) for x in _mix]
PROBLEMS.append({
    "id": "square-check",
    "title": "Perfect squares",
    "twist": "N goes up to 10^36: a float square root (math.sqrt, n**0.5) is not exact there; needs math.isqrt or integer search.",
    "statement": """For each of T integers N, decide whether N is a perfect square, that is, N = k * k for some
integer k. Note that N can be as large as 10^36.

Input
The first line contains T. Each of the next T lines contains one integer N.

Output
T lines: YES if N is a perfect square, otherwise NO.

Constraints
1 <= T <= 1000
0 <= N <= 10^36
""",
    "public": ["4\n16\n15\n0\n1\n",
               f"3\n{(10**18 - 1) ** 2}\n{(10**18 - 1) ** 2 + 1}\n2\n",
               "5\n2\n3\n4\n99\n100\n",
               f"2\n{(10**9 + 7) ** 2}\n{(10**9 + 7) ** 2 - 1}\n",
               f"2\n{10**36}\n{123456789123456789 ** 2}\n",
               f"3\n{(2**59 + 1) ** 2}\n{(2**59 + 1) ** 2 - 1}\n{10**36 - 1}\n"],
    "hidden": [f"{len(_sq_hidden)}\n" + "".join(f"{x}\n" for x in _sq_hidden),
               f"{len(_sq_mix)}\n" + "".join(f"{x}\n" for x in _sq_mix)],
    "naive": [
        "import math\nfor _ in range(int(input())):\n    n=int(input())\n    r=int(math.sqrt(n))\n"
        "    print('YES' if r*r==n else 'NO')\n",
        "for _ in range(int(input())):\n    n=int(input())\n    r=round(n**0.5)\n    print('YES' if r*r==n else 'NO')\n",
    ],
})

# 6 ----------------------------------------------------------------------------------------------
_r = random.Random(1206)
PROBLEMS.append({
    "id": "rotate-right",
    "title": "Rotate right",
    "twist": "k can exceed n (up to 10^18): needs k % n; a[-k:] + a[:-k] without it returns the list unchanged, a step loop is too slow.",
    "statement": """Rotate a list of n integers to the right by k steps. One step moves the last element to the
front. Note that k can be much larger than n.

Input
The first line contains n and k. The second line contains the n integers.

Output
One line: the rotated list, separated by single spaces.

Constraints
1 <= n <= 10^5
0 <= k <= 10^18
-10^9 <= a_i <= 10^9
""",
    "public": ["5 2\n1 2 3 4 5\n", "3 4\n7 8 9\n", "4 0\n1 2 3 4\n", "1 1000000000000000000\n42\n",
               "4 1000000000000000001\n-1 -2 -3 -4\n", "6 6\n6 5 4 3 2 1\n"],
    "hidden": ["7 23\n10 20 30 40 50 60 70\n", f"1000 {10**18 - 7}\n{ints(_r, 1000, -10**9, 10**9)}\n"],
    "naive": ["n,k=map(int,input().split())\na=input().split()\nprint(' '.join(a[-k:]+a[:-k]))\n"],
})

# 7 ----------------------------------------------------------------------------------------------
_r = random.Random(1207)
PROBLEMS.append({
    "id": "record-days",
    "title": "Record days",
    "twist": "Temperatures can be negative and day 1 always counts: starting the running best at 0 misses records below 0.",
    "statement": """The temperature was measured on n consecutive days. A day is a record day if its temperature is
strictly higher than on every earlier day; the first day is always a record day. Temperatures can be
negative. Count the record days.

Input
The first line contains n. The second line contains the n temperatures t_1 ... t_n.

Output
One integer: the number of record days.

Constraints
1 <= n <= 10^5
-10^9 <= t_i <= 10^9
""",
    "public": ["6\n3 1 4 1 5 9\n", "3\n-5 -3 -4\n", "4\n2 2 2 2\n", "1\n-7\n", "5\n1 2 3 4 5\n", "5\n0 -1 0 1 1\n"],
    "hidden": ["5\n-10 -20 -5 -5 -1\n", f"1000\n{ints(_r, 1000, -10**9, -1)}\n"],
    "naive": ["n=int(input())\nb=0\nc=0\nfor x in map(int,input().split()):\n    if x>b:\n        c+=1\n        b=x\nprint(c)\n"],
})

# 8 ----------------------------------------------------------------------------------------------
_r = random.Random(1208)
PROBLEMS.append({
    "id": "find-positions",
    "title": "Find all positions",
    "twist": "Positions are 1-based (enumerate gives 0-based), and NONE when x does not occur.",
    "statement": """You are given a list of n integers and an integer x. Print every position at which x occurs in
the list, in increasing order. Positions are numbered from 1 (the first element is at position 1). If x
does not occur, print NONE.

Input
The first line contains n. The second line contains the n integers. The third line contains x.

Output
One line: the positions separated by single spaces, or the word NONE.

Constraints
1 <= n <= 10^5
-10^9 <= a_i, x <= 10^9
""",
    "public": ["5\n4 2 4 3 4\n3\n", "3\n1 2 3\n7\n", "1\n-5\n-5\n", "4\n0 0 0 0\n0\n", "6\n-1 1 -1 1 -1 1\n1\n",
               "2\n1000000000 -1000000000\n-1000000000\n"],
    "hidden": ["7\n5 3 5 3 5 3 5\n3\n", f"2000\n{ints(_r, 2000, 0, 9)}\n7\n"],
    "naive": ["n=int(input())\na=input().split()\nx=input().strip()\np=[str(i) for i,v in enumerate(a) if v==x]\n"
              "print(' '.join(p) if p else 'NONE')\n"],
})

# 9 ----------------------------------------------------------------------------------------------
_r = random.Random(1209)
PROBLEMS.append({
    "id": "lower-median",
    "title": "Lower median",
    "twist": "For even n the answer is the LOWER middle value, sorted(a)[(n-1)//2]: sorted(a)[n//2] and averaging are wrong.",
    "statement": """You are given n integers. Print their median: the middle value once they are sorted. When n is
even there are two middle values; print the smaller of the two (do not average them).

Input
The first line contains n. The second line contains the n integers, in no particular order.

Output
One integer: the median as defined above.

Constraints
1 <= n <= 10^5
-10^9 <= a_i <= 10^9
""",
    "public": ["5\n7 1 3 9 5\n", "4\n4 1 3 2\n", "1\n-8\n", "2\n10 -10\n", "6\n5 5 5 6 6 6\n", "3\n-1 -1 -2\n"],
    "hidden": [f"8\n{ints(_r, 8, -100, 100)}\n", f"10000\n{ints(_r, 10000, -10**9, 10**9)}\n"],
    "naive": ["n=int(input())\na=sorted(map(int,input().split()))\nprint(a[n//2])\n"],
})

# 10 ---------------------------------------------------------------------------------------------
_r = random.Random(1210)
_durs = [f"{_r.randint(0, 30)}:{_r.randint(0, 59):02d}:{_r.randint(0, 59):02d}" for _ in range(300)]
PROBLEMS.append({
    "id": "duration-total",
    "title": "Total duration",
    "twist": "The total can reach 24 hours or more and must stay in hours (25:00:05): str(timedelta) prints '1 day, 1:00:05'.",
    "statement": """You are given n durations in the form H:MM:SS (hours, minutes, seconds). Print their total in the
same form: the total number of hours, a colon, two-digit minutes, a colon, two-digit seconds. The hours
are not padded and are never converted to days: a total of 25 hours is printed as 25:00:00.

Input
The first line contains n. Each of the next n lines contains one duration H:MM:SS.

Output
One line: the total duration as H:MM:SS.

Constraints
1 <= n <= 1000
0 <= H <= 1000, 0 <= MM, SS <= 59 (MM and SS always have two digits)
""",
    "public": ["2\n1:30:00\n0:45:30\n", "3\n20:00:00\n3:59:59\n0:00:01\n", "1\n0:00:00\n", "2\n0:00:59\n0:00:01\n",
               "2\n100:00:00\n0:59:59\n", "3\n5:05:05\n6:06:06\n7:07:07\n"],
    "hidden": ["3\n12:30:00\n12:30:00\n0:00:05\n", f"{len(_durs)}\n" + "".join(d + "\n" for d in _durs)],
    "naive": ["import datetime\nn=int(input())\nt=0\nfor _ in range(n):\n    h,m,s=map(int,input().split(':'))\n"
              "    t+=h*3600+m*60+s\nprint(datetime.timedelta(seconds=t))\n"],
})

# 11 ---------------------------------------------------------------------------------------------
_r = random.Random(1211)
_cases = []
for _ in range(50):
    n = _r.choice([0, 0, 1, _r.randint(2, 50)])
    _cases.append(f"{n}\n{ints(_r, n, -10**9, 10**9)}\n")
PROBLEMS.append({
    "id": "spread-cases",
    "title": "Spread of each case",
    "twist": "A case can have n = 0 (its second line is empty) and must print 0: max() of an empty list raises.",
    "statement": """The input holds T test cases. For each test case print the spread of its numbers: the largest
minus the smallest. A test case can have no numbers at all (n = 0); its spread is 0.

Input
The first line contains T. Each test case is two lines: the first contains n, the second the n integers
separated by spaces (this line is empty when n = 0).

Output
T lines: the spread of each test case, in input order.

Constraints
1 <= T <= 100
0 <= n <= 1000
-10^9 <= a_i <= 10^9
""",
    "public": ["2\n3\n1 5 3\n1\n7\n", "3\n0\n\n2\n-5 5\n0\n\n", "1\n4\n-1000000000 1000000000 0 0\n", "1\n0\n\n",
               "2\n2\n3 3\n3\n-1 -2 -3\n", "2\n1\n-3\n0\n\n"],
    "hidden": ["4\n1\n5\n0\n\n3\n9 1 5\n0\n\n", f"{len(_cases)}\n" + "".join(_cases)],
    "naive": ["t=int(input())\nfor _ in range(t):\n    n=int(input())\n    a=list(map(int,input().split()))\n"
              "    print(max(a)-min(a))\n"],
})

# 12 ---------------------------------------------------------------------------------------------
_r = random.Random(1212)
_q = []
for _ in range(10):
    k = _r.randint(1, 10**6)
    a = k * _r.randint(1, 10**5) if _r.random() < 0.6 else _r.randint(1, 10**11)
    _q.append((a, _r.randint(a, 10**12), k))
PROBLEMS.append({
    "id": "divisible-count",
    "title": "Multiples in a range",
    "twist": "Both ends are included: B//K - A//K misses A when A is a multiple of K (needs (A-1)//K); ranges up to 10^12 rule out a loop.",
    "statement": """Answer T queries. Each query gives three integers A, B and K: print how many integers x with
A <= x <= B (both ends included) are divisible by K.

Input
The first line contains T. Each of the next T lines contains A, B and K separated by spaces.

Output
T lines: the answer to each query.

Constraints
1 <= T <= 10
1 <= A <= B <= 10^12
1 <= K <= 10^12
""",
    "public": ["2\n1 10 3\n5 9 4\n", "2\n6 12 3\n7 7 7\n", "1\n1 1000000000000 1\n",
               "1\n999999999999 1000000000000 1000000000000\n", "3\n2 3 5\n10 10 3\n1 1 2\n", "1\n100 200 1000000000000\n"],
    "hidden": ["3\n20 40 10\n13 13 13\n1 999999999999 7\n", f"{len(_q)}\n" + "".join(f"{a} {b} {k}\n" for a, b, k in _q)],
    "naive": ["for _ in range(int(input())):\n    a,b,k=map(int,input().split())\n    print(b//k-a//k)\n"],
})

# ------------------------------------------------------------------------------------------------
# Second round (not yet screened): 3 harder variants of problems that passed above the band
# (find-positions, leaderboard, square-check: one more twist each) and 4 easier variants of problems
# that passed 0/64 (the same twist, with a hint in the statement or an example that shows it).

# 13 ---------------------------------------------------------------------------------------------
_r = random.Random(1213)
PROBLEMS.append({
    "id": "find-positions-from-end",
    "title": "Find all positions, counted from the end",
    "twist": "Positions are counted from the END (the last element is 1) and printed in increasing order; "
             "enumerate's i+1 counts from the front, n-i in index order comes out decreasing; NONE when x does not occur.",
    "statement": """You are given a list of n integers and an integer x. Positions are counted from the END of the
list: the last element is at position 1, the one before it at position 2, and so on (the first element
is at position n). Print every position at which x occurs, in increasing order. If x does not occur,
print NONE.

Input
The first line contains n. The second line contains the n integers. The third line contains x.

Output
One line: the positions (counted from the end) separated by single spaces, in increasing order, or the
word NONE.

Constraints
1 <= n <= 10^5
-10^9 <= a_i, x <= 10^9
""",
    "public": ["5\n4 2 4 3 3\n3\n", "3\n1 2 3\n7\n", "1\n-5\n-5\n", "6\n1 1 2 2 2 9\n2\n", "6\n-1 1 -1 1 -1 1\n1\n",
               "2\n1000000000 -1000000000\n1000000000\n"],
    "hidden": ["7\n5 3 3 8 5 0 5\n3\n", f"2000\n{ints(_r, 2000, 0, 9)}\n7\n"],
    "naive": [
        "n=int(input())\na=input().split()\nx=input().strip()\np=[str(i+1) for i,v in enumerate(a) if v==x]\n"
        "print(' '.join(p) if p else 'NONE')\n",
        "n=int(input())\na=input().split()\nx=input().strip()\np=[str(n-i) for i,v in enumerate(a) if v==x]\n"
        "print(' '.join(p) if p else 'NONE')\n",
    ],
})

# 14 ---------------------------------------------------------------------------------------------
_r = random.Random(1214)
_pl = sorted({"".join(_r.choice("abcdef") for _ in range(_r.randint(2, 4))) for _ in range(80)})[:60]
_lt = [(_r.choice(_pl), _r.randint(0, 20)) for _ in range(400)]
PROBLEMS.append({
    "id": "leaderboard-total",
    "title": "Leaderboard of totals",
    "twist": "A player can appear on several lines and is ranked by the SUM of their points, listed once; "
             "equal totals by name A-Z (sorting the raw lines repeats players).",
    "statement": """You are given n lines of points scored in a tournament. Each line holds a player's name and
the points they scored in one game. A player can appear on several lines: their total is the sum of
all their points. Print the leaderboard: every player exactly once with their total, ordered by total
from highest to lowest. Players with equal totals are ordered by name in alphabetical order.

Input
The first line contains n. Each of the next n lines contains a name and a number of points, separated
by a space. Names are made of lowercase English letters.

Output
One line per player, each with a name and its total separated by a space, in leaderboard order.

Constraints
1 <= n <= 1000
0 <= points <= 1000
""",
    "public": ["4\nann 5\nbob 9\nann 7\ncid 7\n", "3\nzed 4\namy 4\nkim 4\n", "1\nsolo 0\n",
               "5\nd 10\nc 20\nd 10\nb 5\nb 15\n", "3\nmax 1000\nmax 1000\nmin 0\n", "4\nbb 2\nb 1\nbba 2\nb 1\n"],
    "hidden": ["6\neve 3\ndan 1\nbea 8\ndan 2\ncal 3\nabe 1\n",
               f"{len(_lt)}\n" + "".join(f"{nm} {p}\n" for nm, p in _lt)],
    "naive": [
        "n=int(input())\nr=[input().split() for _ in range(n)]\nr.sort(key=lambda x:(-int(x[1]),x[0]))\n"
        "for a,b in r: print(a,b)\n",
        "n=int(input())\nt={}\nfor _ in range(n):\n    a,b=input().split()\n    t[a]=t.get(a,0)+int(b)\n"
        "for a,b in sorted(t.items(),key=lambda x:-x[1]): print(a,b)\n",
    ],
})

# 15 ---------------------------------------------------------------------------------------------
_r = random.Random(1215)
_sn = []
for _ in range(300):
    k = _r.choice([_r.randint(0, 1000), _r.randint(10**8, 10**9), _r.randint(2**53, 10**18)])
    v = k * k + _r.choice([0, 0, 1, -1, 2]) if k > 1 else k
    _sn.append(-v if _r.random() < 0.3 else max(0, v))
PROBLEMS.append({
    "id": "square-check-negative",
    "title": "Perfect squares, negatives included",
    "twist": "N ranges from -10^36 to 10^36: a float square root is not exact for big N, and math.isqrt raises "
             "ValueError on a negative N (which must print NO).",
    "statement": """For each of T integers N, decide whether N is a perfect square, that is, N = k * k for some
integer k. Note that N can be as large as 10^36, and that N can be negative (a negative number is never
a perfect square).

Input
The first line contains T. Each of the next T lines contains one integer N.

Output
T lines: YES if N is a perfect square, otherwise NO.

Constraints
1 <= T <= 1000
-10^36 <= N <= 10^36
""",
    "public": ["5\n16\n-16\n15\n0\n1\n",
               f"3\n{(10**18 - 1) ** 2}\n{(10**18 - 1) ** 2 + 1}\n-4\n",
               "5\n-1\n3\n4\n99\n100\n",
               f"2\n{(10**9 + 7) ** 2}\n{(10**9 + 7) ** 2 - 1}\n",
               f"3\n{10**36}\n{-10**36}\n{123456789123456789 ** 2}\n",
               f"3\n{(2**59 + 1) ** 2}\n{(2**59 + 1) ** 2 - 1}\n{10**36 - 1}\n"],
    "hidden": [f"6\n{(10**18 - 11) ** 2}\n-9\n{(10**18 - 11) ** 2 - 1}\n0\n-{(10**18 - 11) ** 2}\n{10**36 - 1}\n",
               f"{len(_sn)}\n" + "".join(f"{x}\n" for x in _sn)],
    "naive": [
        "import math\nfor _ in range(int(input())):\n    n=int(input())\n    r=math.isqrt(n)\n"
        "    print('YES' if r*r==n else 'NO')\n",
        "import math\nfor _ in range(int(input())):\n    n=int(input())\n    if n<0:\n        print('NO')\n        continue\n"
        "    r=int(math.sqrt(n))\n    print('YES' if r*r==n else 'NO')\n",
    ],
})

# 16 ---------------------------------------------------------------------------------------------
_r = random.Random(1216)
PROBLEMS.append({
    "id": "lower-median-example",
    "title": "Lower median, shown on an even example",
    "twist": "As lower-median (for even n print the LOWER middle value, sorted(a)[(n-1)//2], never the average), "
             "but the statement's example has even n and the statement spells out that the answer is one of the inputs.",
    "statement": """You are given n integers. Print their median: the middle value once they are sorted. When n is
even there are two middle values; print the smaller of the two. Do not average them: the answer is
always one of the given integers, printed as an integer. For example, for 4 1 3 2 the sorted list is
1 2 3 4, the two middle values are 2 and 3, and the answer is 2.

Input
The first line contains n. The second line contains the n integers, in no particular order.

Output
One integer: the median as defined above.

Constraints
1 <= n <= 10^5
-10^9 <= a_i <= 10^9
""",
    "public": ["4\n4 1 3 2\n", "5\n7 1 3 9 5\n", "1\n-8\n", "2\n10 -10\n", "6\n5 5 5 6 6 6\n", "3\n-1 -1 -2\n"],
    "hidden": [f"8\n{ints(_r, 8, -100, 100)}\n", f"10000\n{ints(_r, 10000, -10**9, 10**9)}\n"],
    "naive": [
        "n=int(input())\na=sorted(map(int,input().split()))\nprint(a[n//2])\n",
        "n=int(input())\na=sorted(map(int,input().split()))\nprint(a[n//2] if n%2 else (a[n//2-1]+a[n//2])/2)\n",
    ],
})

# 17 ---------------------------------------------------------------------------------------------
_r = random.Random(1217)
_rows2 = [(_r.randint(0, m), m) for m in (_r.randint(1, 10**6) for _ in range(40))]
_rows2 += [(1, 40), (9, 40), (1, 200), (5, 8), (7, 8), (0, 1), (1, 1), (3, 8), (1, 16), (999999, 1000000)]
_r.shuffle(_rows2)
PROBLEMS.append({
    "id": "percent-round-hint",
    "title": "Rounded percentages, with a warning about round()",
    "twist": "As percent-round (halves round up, round() rounds them to even), but the statement warns against "
             "Python's round() and the example shows 12.5 -> 13.",
    "statement": """Each of n students scored s_i points out of m_i. For every student print the percentage
100 * s_i / m_i rounded to the nearest integer. When the percentage lies exactly halfway between two
integers, round up: 12.5 becomes 13, and 37.5 becomes 38. Careful: Python's built-in round() does not
do this, it rounds halves to the nearest EVEN integer (round(12.5) gives 12), so do not use it here.
Print each answer as an integer (13, not 13.0).

Input
The first line contains n. Each of the next n lines contains two integers s_i and m_i.

Output
n lines: the rounded percentage of each student, in input order.

Constraints
1 <= n <= 1000
1 <= m_i <= 10^6
0 <= s_i <= m_i
""",
    "public": ["3\n1 8\n3 8\n2 3\n", "2\n1 2\n5 8\n", "1\n0 7\n", "1\n7 7\n", "4\n1 200\n1 400\n3 400\n1 3\n",
               "2\n999999 1000000\n1 1000000\n"],
    "hidden": ["3\n9 16\n5 40\n1 16\n", f"{len(_rows2)}\n" + "".join(f"{s} {m}\n" for s, m in _rows2)],
    "naive": ["n=int(input())\nfor _ in range(n):\n    s,m=map(int,input().split())\n    print(round(100*s/m))\n"],
})

# 18 ---------------------------------------------------------------------------------------------
_r = random.Random(1218)
_q2 = []
for _ in range(10):
    k = _r.randint(1, 10**6)
    a = k * _r.randint(1, 10**5) if _r.random() < 0.6 else _r.randint(1, 10**11)
    _q2.append((a, _r.randint(a, 10**12), k))
PROBLEMS.append({
    "id": "divisible-count-hint",
    "title": "Multiples in a range, with a hint",
    "twist": "As divisible-count (both ends included: B//K - A//K misses A when A is a multiple of K), but the "
             "statement gives N // K for 1..N, and the example has A a multiple of K.",
    "statement": """Answer T queries. Each query gives three integers A, B and K: print how many integers x with
A <= x <= B (both ends included) are divisible by K.

The numbers are too large for a loop over the range. Hint: among 1, 2, ..., N there are exactly N // K
multiples of K (integer division). Be careful that A itself is included in the range: for A = 6, B = 12,
K = 3 the multiples are 6, 9 and 12, so the answer is 3.

Input
The first line contains T. Each of the next T lines contains A, B and K separated by spaces.

Output
T lines: the answer to each query.

Constraints
1 <= T <= 10
1 <= A <= B <= 10^12
1 <= K <= 10^12
""",
    "public": ["2\n6 12 3\n5 9 4\n", "2\n1 10 3\n7 7 7\n", "1\n1 1000000000000 1\n",
               "1\n999999999999 1000000000000 1000000000000\n", "3\n2 3 5\n10 10 3\n1 1 2\n", "1\n100 200 1000000000000\n"],
    "hidden": ["3\n20 40 10\n13 13 13\n1 999999999999 7\n", f"{len(_q2)}\n" + "".join(f"{a} {b} {k}\n" for a, b, k in _q2)],
    "naive": ["for _ in range(int(input())):\n    a,b,k=map(int,input().split())\n    print(b//k-a//k)\n"],
})

# 19 ---------------------------------------------------------------------------------------------
_r = random.Random(1219)
PROBLEMS.append({
    "id": "record-days-hint",
    "title": "Record days, with a hint",
    "twist": "As record-days (negative temperatures; day 1 always counts, so the running best must not start at 0), "
             "but the statement says how: keep the highest so far, start from day 1, compare with it, not with the day before.",
    "statement": """The temperature was measured on n consecutive days. A day is a record day if its temperature is
strictly higher than on every earlier day; the first day is always a record day. Temperatures can be
negative. Count the record days.

Hint: keep the highest temperature seen so far. Start it at the first day's temperature (not at 0,
since all temperatures can be below 0) and count the first day. Then compare each later day with that
highest temperature, not just with the day before it.

Input
The first line contains n. The second line contains the n temperatures t_1 ... t_n.

Output
One integer: the number of record days.

Constraints
1 <= n <= 10^5
-10^9 <= t_i <= 10^9
""",
    "public": ["5\n-2 -6 -4 -1 -3\n", "6\n3 1 4 1 5 9\n", "4\n2 2 2 2\n", "1\n-7\n", "5\n1 2 3 4 5\n", "5\n0 -1 0 1 1\n"],
    "hidden": ["6\n-10 -20 -5 -5 -8 -1\n", f"1000\n{ints(_r, 1000, -10**9, -1)}\n"],
    "naive": [
        "n=int(input())\nb=0\nc=0\nfor x in map(int,input().split()):\n    if x>b:\n        c+=1\n        b=x\nprint(c)\n",
        "n=int(input())\nt=list(map(int,input().split()))\nc=1\nfor i in range(1,n):\n    if t[i]>t[i-1]:\n        c+=1\nprint(c)\n",
    ],
})


# ------------------------------------------------------------------------------------------------
# Third round (not yet screened): 3 milder harder variants of the problems above the band (round 2's
# bigger twists took find-positions and leaderboard to 0/64) and 2 new easy problems like the ones in
# the band (one twist each).

# 20 ---------------------------------------------------------------------------------------------
_r = random.Random(1220)
PROBLEMS.append({
    "id": "find-positions-count",
    "title": "Count and find all positions",
    "twist": "As find-positions (1-based positions, NONE when x does not occur), but the count comes first on its own "
             "line, and 0 then NONE when x does not occur.",
    "statement": """You are given a list of n integers and an integer x. On the first line print how many times x
occurs in the list. On the second line print every position at which x occurs, in increasing order.
Positions are numbered from 1 (the first element is at position 1). If x does not occur, the first line
is 0 and the second line is the word NONE.

Input
The first line contains n. The second line contains the n integers. The third line contains x.

Output
Two lines: the number of occurrences, then the positions separated by single spaces (or the word NONE).

Constraints
1 <= n <= 10^5
-10^9 <= a_i, x <= 10^9
""",
    "public": ["5\n4 2 4 3 4\n4\n", "3\n1 2 3\n7\n", "1\n-5\n-5\n", "4\n0 0 0 0\n0\n", "6\n-1 1 -1 1 -1 1\n1\n",
               "2\n1000000000 -1000000000\n-1000000000\n"],
    "hidden": ["7\n5 3 5 3 5 3 5\n4\n", f"2000\n{ints(_r, 2000, 0, 9)}\n7\n"],
    "naive": [
        "n=int(input())\na=input().split()\nx=input().strip()\np=[str(i+1) for i,v in enumerate(a) if v==x]\n"
        "print(' '.join(p) if p else 'NONE')\n",
        "n=int(input())\na=input().split()\nx=input().strip()\np=[str(i) for i,v in enumerate(a) if v==x]\n"
        "print(len(p))\nprint(' '.join(p) if p else 'NONE')\n",
        "n=int(input())\na=input().split()\nx=input().strip()\np=[str(i+1) for i,v in enumerate(a) if v==x]\n"
        "print(len(p))\nif p: print(' '.join(p))\n",
    ],
})

# 21 ---------------------------------------------------------------------------------------------
_r = random.Random(1221)
_names3 = sorted({"".join(_r.choice("abcdefghij") for _ in range(_r.randint(2, 6))) for _ in range(150)})[:100]
_r.shuffle(_names3)
PROBLEMS.append({
    "id": "leaderboard-ties-desc",
    "title": "Leaderboard, ties in reverse alphabetical order",
    "twist": "As leaderboard, but equal scores are ordered by name Z-A (reverse alphabetical): the usual key "
             "(-score, name) puts them A-Z, a stable sort by score keeps input order.",
    "statement": """You are given the scores of n players. Print the leaderboard: the players ordered by score from
highest to lowest. Players with equal scores are ordered by name in REVERSE alphabetical order (from Z to
A): for equal scores, zed comes before kim, and kim before amy.

Input
The first line contains n. Each of the next n lines contains a player's name and score, separated by a
space. Names are distinct and made of lowercase English letters.

Output
n lines, each with a name and its score separated by a space, in leaderboard order.

Constraints
1 <= n <= 1000
0 <= score <= 1000
""",
    "public": ["3\nann 5\nbob 9\ncid 7\n", "3\namy 4\nzed 4\nkim 4\n", "1\nsolo 0\n", "4\nd 10\nc 20\nb 10\na 20\n",
               "2\nmax 1000\nmin 0\n", "3\nbb 2\nb 2\nbba 2\n"],
    "hidden": ["5\nabe 3\ndan 3\nbea 8\ncal 3\neve 1\n",
               f"{len(_names3)}\n" + "".join(f"{nm} {_r.randint(0, 15)}\n" for nm in _names3)],
    "naive": [
        "n=int(input())\nr=[input().split() for _ in range(n)]\nr.sort(key=lambda x:(-int(x[1]),x[0]))\n"
        "for a,b in r: print(a,b)\n",
        "n=int(input())\nr=[input().split() for _ in range(n)]\nr.sort(key=lambda x:-int(x[1]))\n"
        "for a,b in r: print(a,b)\n",
    ],
})

# 22 ---------------------------------------------------------------------------------------------
_r = random.Random(1222)
_ks3 = [_r.randint(2**54, 10**18) for _ in range(3)]
_ns_hidden = [k * k for k in _ks3] + [_ks3[0] ** 2 - 1, _ks3[1] ** 2 + 1, 10**36, 17]
_ns_mix = []
for _ in range(300):
    k = _r.choice([_r.randint(0, 1000), _r.randint(10**8, 10**9), _r.randint(2**53, 10**18)])
    _ns_mix.append(max(0, k * k + _r.choice([0, 0, 1, -1, 2])) if k > 1 else k)
PROBLEMS.append({
    "id": "next-square",
    "title": "Next perfect square",
    "twist": "As square-check (N up to 10^36, so float square roots are inexact; needs math.isqrt), but print the "
             "smallest perfect square >= N: N itself when N is a square, else (isqrt(N) + 1)^2.",
    "statement": """For each of T integers N, print the smallest perfect square that is greater than or equal to N
(a perfect square is k * k for some integer k >= 0). If N is itself a perfect square, print N. Note that
N can be as large as 10^36.

Input
The first line contains T. Each of the next T lines contains one integer N.

Output
T lines: the smallest perfect square >= N, for each N in input order.

Constraints
1 <= T <= 1000
0 <= N <= 10^36
""",
    "public": ["5\n16\n15\n0\n2\n1\n",
               f"3\n{(10**18 - 1) ** 2}\n{(10**18 - 1) ** 2 + 1}\n{10**36}\n",
               "5\n3\n4\n5\n99\n100\n",
               f"2\n{(10**9 + 7) ** 2}\n{(10**9 + 7) ** 2 - 1}\n",
               f"2\n{10**36 - 1}\n{123456789123456789 ** 2}\n",
               f"3\n{(2**59 + 1) ** 2}\n{(2**59 + 1) ** 2 + 1}\n{(2**59 + 1) ** 2 - 1}\n"],
    "hidden": [f"{len(_ns_hidden)}\n" + "".join(f"{x}\n" for x in _ns_hidden),
               f"{len(_ns_mix)}\n" + "".join(f"{x}\n" for x in _ns_mix)],
    "naive": [
        "import math\nfor _ in range(int(input())):\n    n=int(input())\n    r=math.ceil(math.sqrt(n))\n    print(r*r)\n",
        "import math\nfor _ in range(int(input())):\n    n=int(input())\n    print((math.isqrt(n)+1)**2)\n",
        "import math\nfor _ in range(int(input())):\n    n=int(input())\n    print(math.isqrt(n)**2)\n",
    ],
})

# 23 ---------------------------------------------------------------------------------------------
_r = random.Random(1223)
_fr = _r.sample(WORDS[:34], 30)
_fr_big = _fr + [_fr[17], _fr[3], _fr[9]]
PROBLEMS.append({
    "id": "first-repeat",
    "title": "First repeated word",
    "twist": "The answer is the word whose SECOND occurrence comes first (scan with a set of words seen so far); "
             "the first word that occurs twice anywhere is wrong for a b b a (b, not a).",
    "statement": """You are given a line of words. Read the words from left to right and print the first word that
you have already seen before, that is, the word whose second occurrence comes earliest in the line. For
a b b a the answer is b (its second occurrence is the 3rd word, before the second a). If no word occurs
twice, print NONE.

Input
One line of words made of lowercase English letters, separated by single spaces. There is at least one
word.

Output
The first repeated word as defined above, or the word NONE.

Constraints
At most 1000 words, each of 1 to 20 letters.
""",
    "public": ["red blue green blue red\n", "cat dog cat\n", "one two three\n", "x\n", "a b b a\n", "z z\n"],
    "hidden": ["sun moon star moon sun star\n", " ".join(_fr_big) + "\n"],
    "naive": [
        "w=input().split()\nprint(next((x for x in w if w.count(x)>1),'NONE'))\n",
        "w=input().split()\nfor i in range(1,len(w)):\n    if w[i]==w[i-1]:\n        print(w[i])\n        break\n"
        "else:\n    print('NONE')\n",
    ],
})

# 24 ---------------------------------------------------------------------------------------------
_r = random.Random(1224)
_oc = "".join(_r.choice("ab") for _ in range(5000))
PROBLEMS.append({
    "id": "overlap-count",
    "title": "Count occurrences, overlaps included",
    "twist": "Overlapping occurrences count (aaaa holds aa 3 times): str.count counts non-overlapping ones only.",
    "statement": """You are given a text and a pattern. Print how many times the pattern occurs in the text.
Occurrences may overlap, and every one of them counts: in aaaa the pattern aa occurs 3 times (starting
at the 1st, 2nd and 3rd letter).

Input
The first line contains the text. The second line contains the pattern. Both are made of lowercase
English letters.

Output
One integer: the number of occurrences of the pattern in the text.

Constraints
1 <= length of the text <= 10^4
1 <= length of the pattern <= 10
""",
    "public": ["abababa\naba\n", "hello\nxyz\n", "aaaa\naa\n", "abc\nabc\n", "abcabc\nc\n", "ab\nabc\n"],
    "hidden": ["banana\nana\n", f"{_oc}\nabab\n"],
    "naive": ["t=input().strip()\np=input().strip()\nprint(t.count(p))\n"],
})


# ------------------------------------------------------------------------------------------------
# Fourth round (not yet screened): 6 close analogs of the problems in the band (the same kind of twist
# on a different task) and 4 milder or harder variants between a problem at 0/64 or above the band and
# its neighbour (first-repeat and overlap-count without the worked example, record-days with a short note).

# 25 ---------------------------------------------------------------------------------------------
_r = random.Random(1225)
_short = [_r.choice(WORDS) for _ in range(200)]
_short[_r.randint(10, 80)] = "ox"
_short[_r.randint(100, 190)] = "ax"
PROBLEMS.append({
    "id": "shortest-word-last",
    "title": "Shortest word, last one wins",
    "twist": "Ties go to the LAST shortest word; min(words, key=len) returns the first.",
    "statement": """You are given a line of words. Print the shortest word. If several words share the minimum
length, print the one that appears last in the line.

Input
One line of words made of lowercase English letters, separated by single spaces. There is at least one
word.

Output
The shortest word (the last one among the shortest).

Constraints
At most 1000 words, each of 1 to 20 letters.
""",
    "public": ["elephants sat in a row\n", "cat dog\n", "hello\n", "aa bbb cc ddd eeee\n", "abcde abc abcd xyz\n",
               "x y z\n"],
    "hidden": ["three one seven two eight\n", " ".join(_short) + "\n"],
    "naive": ["print(min(input().split(), key=len))\n"],
})

# 26 ---------------------------------------------------------------------------------------------
_r = random.Random(1226)
PROBLEMS.append({
    "id": "rotate-left-string",
    "title": "Rotate a string left",
    "twist": "k can exceed the length n (up to 10^18): needs k % n; s[k:] + s[:k] without it returns s unchanged, "
             "a step loop is too slow.",
    "statement": """Rotate a string s of lowercase English letters to the left by k steps. One step moves the first
letter to the end. Note that k can be much larger than the length of s.

Input
The first line contains s. The second line contains k.

Output
One line: the rotated string.

Constraints
1 <= length of s <= 10^5
0 <= k <= 10^18
""",
    "public": ["abcde\n2\n", "abc\n4\n", "abcd\n0\n", "z\n1000000000000000000\n", "abcd\n1000000000000000001\n",
               "fedcba\n6\n"],
    "hidden": ["abcdefg\n23\n", f"{''.join(_r.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(1000))}\n{10**18 - 7}\n"],
    "naive": ["s=input().strip()\nk=int(input())\nprint(s[k:]+s[:k])\n"],
})

# 27 ---------------------------------------------------------------------------------------------
_r = random.Random(1227)
_mcases = []
for _ in range(50):
    n = _r.choice([0, 0, 1, _r.randint(2, 50)])
    _mcases.append(f"{n}\n{ints(_r, n, -10**9, 10**9)}\n")
PROBLEMS.append({
    "id": "min-cases",
    "title": "Smallest number of each case",
    "twist": "A case can have n = 0 (its second line is empty) and must print EMPTY: min() of an empty list raises.",
    "statement": """The input holds T test cases. For each test case print the smallest of its numbers. A test case
can have no numbers at all (n = 0); for it, print the word EMPTY.

Input
The first line contains T. Each test case is two lines: the first contains n, the second the n integers
separated by spaces (this line is empty when n = 0).

Output
T lines: the smallest number of each test case (or EMPTY), in input order.

Constraints
1 <= T <= 100
0 <= n <= 1000
-10^9 <= a_i <= 10^9
""",
    "public": ["2\n3\n1 5 3\n1\n7\n", "3\n0\n\n2\n-5 5\n0\n\n", "1\n4\n-1000000000 1000000000 0 0\n", "1\n0\n\n",
               "2\n2\n3 3\n3\n-1 -2 -3\n", "2\n1\n-3\n0\n\n"],
    "hidden": ["4\n1\n5\n0\n\n3\n9 1 5\n0\n\n", f"{len(_mcases)}\n" + "".join(_mcases)],
    "naive": ["t=int(input())\nfor _ in range(t):\n    n=int(input())\n    a=list(map(int,input().split()))\n"
              "    print(min(a))\n"],
})

# 28 ---------------------------------------------------------------------------------------------
_r = random.Random(1228)
_dq = []
for _ in range(1000):
    a = _r.choice([_r.randint(-100, 100), _r.randint(-10**18, 10**18)])
    b = _r.choice([_r.randint(1, 10), _r.randint(1, 10**9), _r.randint(1, 10**18)]) * _r.choice([1, -1])
    _dq.append((a, b))
PROBLEMS.append({
    "id": "divide-toward-zero",
    "title": "Integer division toward zero",
    "twist": "Rounds toward zero, not down: a // b floors negative quotients (-7/2 must give -3, not -4); "
             "int(a / b) goes through a float and is wrong for values near 10^18.",
    "statement": """Answer T queries. Each query gives two integers a and b (b is not 0). Print a divided by b
rounded toward zero to an integer, that is, with the fractional part dropped: 7/2 gives 3, and -7/2
gives -3 (not -4). Note that a and b can be negative, and as large as 10^18 in absolute value.

Input
The first line contains T. Each of the next T lines contains a and b separated by a space.

Output
T lines: the answer to each query.

Constraints
1 <= T <= 1000
-10^18 <= a, b <= 10^18, b != 0
""",
    "public": ["2\n7 2\n20 6\n", "3\n-7 2\n7 -2\n-7 -2\n", "1\n0 -5\n",
               "2\n999999999999999999 1\n-1000000000000000000 3\n", "2\n5 -1\n-1 1000000000000000000\n",
               "2\n123456789012345678 7\n-123456789012345678 -7\n"],
    "hidden": ["4\n-10 3\n10 -3\n-9 3\n1000000000000000000 -7\n", f"{len(_dq)}\n" + "".join(f"{a} {b}\n" for a, b in _dq)],
    "naive": [
        "for _ in range(int(input())):\n    a,b=map(int,input().split())\n    print(a//b)\n",
        "for _ in range(int(input())):\n    a,b=map(int,input().split())\n    print(int(a/b))\n",
    ],
})

# 29 ---------------------------------------------------------------------------------------------
_r = random.Random(1229)
PROBLEMS.append({
    "id": "max-subarray-nonempty",
    "title": "Largest sum of a non-empty subarray",
    "twist": "The subarray must be NON-EMPTY and all numbers can be negative: Kadane started from best = 0 prints 0 "
             "instead of the largest element.",
    "statement": """You are given n integers. Print the largest sum of a non-empty contiguous subarray (one or more
consecutive numbers). Note that all the numbers can be negative; the subarray must still contain at
least one number, so then the answer is the largest single number.

Input
The first line contains n. The second line contains the n integers a_1 ... a_n.

Output
One integer: the largest sum.

Constraints
1 <= n <= 10^5
-10^9 <= a_i <= 10^9
""",
    "public": ["9\n-2 1 -3 4 -1 2 1 -5 4\n", "3\n-3 -1 -2\n", "1\n-5\n", "4\n1 2 3 4\n", "5\n0 -1 0 -1 0\n",
               "2\n-1000000000 -999999999\n"],
    "hidden": ["4\n-8 -3 -6 -2\n", f"1000\n{ints(_r, 1000, -10**9, -1)}\n"],
    "naive": [
        "n=int(input())\nbest=cur=0\nfor x in map(int,input().split()):\n    cur=max(0,cur+x)\n    best=max(best,cur)\n"
        "print(best)\n",
        "n=int(input())\nbest=cur=0\nfor x in map(int,input().split()):\n    cur=max(x,cur+x)\n    best=max(best,cur)\n"
        "print(best)\n",
    ],
})

# 30 ---------------------------------------------------------------------------------------------
_r = random.Random(1230)
_mp = [_r.randint(-10**9, 10**9) for _ in range(1000)]
_mp[_r.randint(0, 499)] = -10**9
_mp[_r.randint(500, 999)] = -10**9 + 1
PROBLEMS.append({
    "id": "max-pair-product",
    "title": "Largest product of two numbers",
    "twist": "Numbers can be negative: the two most negative numbers can give the largest product, so the product "
             "of the two largest values is not enough (compare it with the product of the two smallest).",
    "statement": """You are given n integers. Choose two of them at different positions so that their product is as
large as possible, and print that product. Note that the numbers can be negative, and the product of
two negative numbers is positive.

Input
The first line contains n. The second line contains the n integers a_1 ... a_n.

Output
One integer: the largest product a_i * a_j with i != j.

Constraints
2 <= n <= 10^5
-10^9 <= a_i <= 10^9
""",
    "public": ["4\n3 1 4 2\n", "4\n-10 -9 1 2\n", "2\n-5 3\n", "3\n-1000000000 -1000000000 5\n", "5\n0 0 -1 -2 3\n",
               "3\n-3 -2 -1\n"],
    "hidden": ["6\n-7 5 -8 6 1 0\n", f"1000\n{' '.join(map(str, _mp))}\n"],
    "naive": ["n=int(input())\na=sorted(map(int,input().split()))\nprint(a[-1]*a[-2])\n"],
})

# 31 ---------------------------------------------------------------------------------------------
_r = random.Random(1231)
_fr2 = _r.sample(WORDS[:34], 30)
_fr2_big = _fr2 + [_fr2[17], _fr2[3], _fr2[9]]
PROBLEMS.append({
    "id": "first-repeat-plain",
    "title": "First repeated word, without the worked example",
    "twist": "As first-repeat (the word whose SECOND occurrence comes first; the first word that occurs twice "
             "anywhere is wrong for a b b a), but the statement no longer works out the a b b a case.",
    "statement": """You are given a line of words. Read the words from left to right and print the first word that
you have already seen before, that is, the word whose second occurrence comes earliest in the line. If
no word occurs twice, print NONE.

Input
One line of words made of lowercase English letters, separated by single spaces. There is at least one
word.

Output
The first repeated word as defined above, or the word NONE.

Constraints
At most 1000 words, each of 1 to 20 letters.
""",
    "public": ["red blue green blue red\n", "cat dog cat\n", "one two three\n", "x\n", "a b b a\n", "z z\n"],
    "hidden": ["sun moon star moon sun star\n", " ".join(_fr2_big) + "\n"],
    "naive": [
        "w=input().split()\nprint(next((x for x in w if w.count(x)>1),'NONE'))\n",
        "w=input().split()\nfor i in range(1,len(w)):\n    if w[i]==w[i-1]:\n        print(w[i])\n        break\n"
        "else:\n    print('NONE')\n",
    ],
})

# 32 ---------------------------------------------------------------------------------------------
_r = random.Random(1232)
_oc2 = "".join(_r.choice("ab") for _ in range(5000))
PROBLEMS.append({
    "id": "overlap-count-plain",
    "title": "Count occurrences, overlaps included (no worked example)",
    "twist": "As overlap-count (overlapping occurrences count; str.count counts non-overlapping ones only), but the "
             "statement no longer works out the aaaa example.",
    "statement": """You are given a text and a pattern. Print how many times the pattern occurs in the text.
Occurrences may overlap, and every one of them counts.

Input
The first line contains the text. The second line contains the pattern. Both are made of lowercase
English letters.

Output
One integer: the number of occurrences of the pattern in the text.

Constraints
1 <= length of the text <= 10^4
1 <= length of the pattern <= 10
""",
    "public": ["abababa\naba\n", "hello\nxyz\n", "aaaa\naa\n", "abc\nabc\n", "abcabc\nc\n", "ab\nabc\n"],
    "hidden": ["banana\nana\n", f"{_oc2}\nabab\n"],
    "naive": ["t=input().strip()\np=input().strip()\nprint(t.count(p))\n"],
})

# 33 ---------------------------------------------------------------------------------------------
_r = random.Random(1233)
PROBLEMS.append({
    "id": "record-days-note",
    "title": "Record days, with a note",
    "twist": "As record-days (negative temperatures; day 1 always counts, so the running best must not start at 0), "
             "with one short note that all temperatures can be below 0, and an all-negative example.",
    "statement": """The temperature was measured on n consecutive days. A day is a record day if its temperature is
strictly higher than on every earlier day; the first day is always a record day. Temperatures can be
negative. Count the record days.

Note: all temperatures can be below 0; the first day is a record day even then.

Input
The first line contains n. The second line contains the n temperatures t_1 ... t_n.

Output
One integer: the number of record days.

Constraints
1 <= n <= 10^5
-10^9 <= t_i <= 10^9
""",
    "public": ["5\n-2 -6 -4 -1 -3\n", "6\n3 1 4 1 5 9\n", "4\n2 2 2 2\n", "1\n-7\n", "5\n1 2 3 4 5\n", "5\n0 -1 0 1 1\n"],
    "hidden": ["5\n-10 -20 -5 -5 -1\n", f"1000\n{ints(_r, 1000, -10**9, -1)}\n"],
    "naive": [
        "n=int(input())\nb=0\nc=0\nfor x in map(int,input().split()):\n    if x>b:\n        c+=1\n        b=x\nprint(c)\n",
        "n=int(input())\nt=list(map(int,input().split()))\nc=1\nfor i in range(1,n):\n    if t[i]>t[i-1]:\n        c+=1\nprint(c)\n",
    ],
})

# 34 ---------------------------------------------------------------------------------------------
_r = random.Random(1234)
_tw = []
for _ in range(300):
    w = "".join(_r.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'") for _ in range(_r.randint(1, 8)))
    _tw.append(w)
PROBLEMS.append({
    "id": "title-case-keep",
    "title": "Capitalize every word, keep the rest",
    "twist": "Only the first letter of each word changes: str.title() and str.capitalize() lowercase the rest "
             "(mcDonald -> Mcdonald), and title() also capitalizes after an apostrophe or digit (don't -> Don'T).",
    "statement": """You are given a line of words. Capitalize the first letter of every word and leave every other
character exactly as it is: mcDonald becomes McDonald (not Mcdonald), and don't becomes Don't (not
Don'T). A word that starts with a digit or an apostrophe stays unchanged.

Input
One line of words separated by single spaces. Words are made of English letters (lowercase or
uppercase), digits and apostrophes. There is at least one word.

Output
The line with the first letter of every word capitalized.

Constraints
At most 1000 words, each of 1 to 20 characters.
""",
    "public": ["hello world\n", "the mcDonald farm\n", "don't stop\n", "iPhone and iPad\n", "a\n", "HELLO World 42nd\n"],
    "hidden": ["o'neil's eBay shop\n", " ".join(_tw) + "\n"],
    "naive": [
        "print(input().title())\n",
        "print(' '.join(w.capitalize() for w in input().split()))\n",
    ],
})

# ------------------------------------------------------------------------------------------------


def build(spec: dict) -> dict:
    pid = spec["id"]
    ref = HERE / "reference" / f"{pid}.py"
    tests = []
    for hidden, inputs in ((False, spec["public"]), (True, spec["hidden"])):
        for inp in inputs:
            rc, out = run_code(ref, inp)
            if rc != 0:
                raise SystemExit(f"{pid}: reference failed on input {inp[:80]!r}")
            tests.append({"input": inp, "output": out, "hidden": hidden})
    for i, code in enumerate(spec["naive"]):
        failed = {h: False for h in (False, True)}
        for t in tests:
            rc, out = run_code(code, t["input"], timeout=5)
            if rc != 0 or not same(out, t["output"]):
                failed[t["hidden"]] = True
        if not all(failed.values()):
            raise SystemExit(f"{pid}: naive solution {i} passes every {'hidden' if not failed[True] else 'public'} test")
    ex = tests[0]
    statement = f"{spec['statement']}\nExample\nInput:\n{ex['input']}Output:\n{ex['output']}"
    return {
        "id": pid,
        "title": spec["title"],
        "statement": statement,
        "test_type": "stdin",
        "time_limit_s": 2.0,
        "memory_limit_mb": 256,
        "difficulty": "easy",
        "metadata": {"source": "original (sdpo-discover collection)", "suite": "cpu-hard", "twist": spec["twist"]},
        "tests": tests,
    }


def main() -> None:
    ids = [s["id"] for s in PROBLEMS]
    assert len(ids) == len(set(ids)) == 34, ids
    for spec in PROBLEMS:
        d = build(spec)
        path = HERE / f"{d['id']}.json"
        if path.is_file():  # a measured pass rate (record_pass_rates.py) is kept when the problems are regenerated
            old = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
            if "base_pass_rate" in old:
                d["metadata"]["base_pass_rate"] = old["base_pass_rate"]
        path.write_text(json.dumps(d, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {d['id']}.json ({len(d['tests'])} tests, {sum(t['hidden'] for t in d['tests'])} hidden)")


if __name__ == "__main__":
    main()
