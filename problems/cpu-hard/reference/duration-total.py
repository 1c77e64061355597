import sys

data = sys.stdin.read().split()
n = int(data[0])
total = 0
for d in data[1:1 + n]:
    h, m, s = (int(p) for p in d.split(":"))
    total += 3600 * h + 60 * m + s
h, rest = divmod(total, 3600)
m, s = divmod(rest, 60)
print(f"{h}:{m:02d}:{s:02d}")
