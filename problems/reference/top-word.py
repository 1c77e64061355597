import sys
from collections import Counter

data = sys.stdin.read().split()
n = int(data[0])
counts = Counter(data[1:1 + n])
best = max(counts.values())
word = min(w for w, c in counts.items() if c == best)
print(word, best)
