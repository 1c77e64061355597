import sys

lines = sys.stdin.read().split("\n")
n = int(lines[0])
total: dict[str, int] = {}
for line in lines[1:1 + n]:
    name, points = line.split()
    total[name] = total.get(name, 0) + int(points)
rows = sorted(total.items(), key=lambda r: (-r[1], r[0]))
print("\n".join(f"{name} {score}" for name, score in rows))
