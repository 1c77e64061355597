import sys

data = sys.stdin.read().split()
n = int(data[0])
a = data[1:1 + n]
x = int(data[1 + n])
pos = [str(i + 1) for i, v in enumerate(a) if int(v) == x]
print(len(pos))
print(" ".join(pos) if pos else "NONE")
