import sys

data = sys.stdin.read().split()
n = int(data[0])
a = data[1:1 + n]
x = int(data[1 + n])
# positions counted from the end: the last element is position 1
pos = [str(n - i) for i in range(n - 1, -1, -1) if int(a[i]) == x]
print(" ".join(pos) if pos else "NONE")
