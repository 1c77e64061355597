import sys

data = sys.stdin.read().split()
n = int(data[0])
a = sorted(int(x) for x in data[1:1 + n])
print(max(a[0] * a[1], a[-1] * a[-2]))
