import sys

data = sys.stdin.read().split()
s, k = data[0], int(data[1])
k %= len(s)
print(s[k:] + s[:k])
