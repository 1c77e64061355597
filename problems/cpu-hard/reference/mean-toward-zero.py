import sys

data = sys.stdin.read().split()
n = int(data[0])
total = sum(int(x) for x in data[1:1 + n])
q = abs(total) // n  # exact integers: truncate toward zero, not floor
print(q if total >= 0 else -q)
